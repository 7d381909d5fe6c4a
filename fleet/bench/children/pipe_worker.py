"""The pickled-pipe baseline's worker, run by ``multiprocessing`` with the 'spawn' start method.

Not a script: 'spawn' starts a fresh interpreter that imports this module and calls
:func:`serve` with its end of the pipe, which unpickles each frame ``Connection.send`` pickled.
"""

from __future__ import annotations

from multiprocessing.connection import Connection

from fleet.bench.children.common import answer


def serve(conn: Connection) -> None:
    """Say ready, then unpickle, touch, answer, until ``None`` or the pipe closes."""
    conn.send({"ready": 1})
    try:
        while (message := conn.recv()) is not None:
            frame, verify = message
            conn.send(answer(frame, verify))
    except EOFError:
        pass

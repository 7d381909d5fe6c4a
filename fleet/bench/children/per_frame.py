"""The process-per-frame baseline's child: one frame on stdin, one JSON answer on stdout.

Stdin holds a :data:`HEADER` (height, width, channels, verify) and then the raw pixels. The
child reads its own memory figures, as it exits too soon for the parent to: ``VmRSS`` before
reading stdin, ``VmHWM`` after touching the frame.
"""

from __future__ import annotations

import json
import struct
import sys

import numpy as np

from fleet.bench.children.common import answer, status_kb

HEADER = "<IIIB"
"""struct format of the header before the pixels: height, width, channels, verify."""


def main() -> None:
    rss_kb = status_kb("VmRSS")
    data = sys.stdin.buffer.read()
    height, width, channels, verify = struct.unpack_from(HEADER, data)
    offset = struct.calcsize(HEADER)
    frame = np.frombuffer(data, np.uint8, offset=offset).reshape(height, width, channels)
    reply: dict[str, int] = answer(frame, bool(verify))
    reply.update(rss_kb=rss_kb, hwm_kb=status_kb("VmHWM"))
    print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()

"""matplotlib for the bench plots, set up in one place.

Benchmarks run headless (CI, a server, a Ray node), so the backend is always Agg, chosen before
``pyplot`` is first imported; and matplotlib is optional (the ``bench`` extra), so a mode without
it still prints its table and writes its JSON, and only the plot is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any | None:
    """``matplotlib.pyplot`` on the Agg backend, or None if matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save(fig: Any, path: Path, title: str) -> None:
    """Title, lay out and write ``fig`` as a PNG, then free it (pyplot keeps every open figure)."""
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

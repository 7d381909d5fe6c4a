"""Whether a tracked object has stopped: the ``stationary`` state of :mod:`fleet.pipeline.tracking`.

An object is stationary once its box has stayed put for ``stationary_s`` on the stream's clock;
it has moved again when it leaves that spot. "Put" has to survive a detector's jitter, and a
parked car has to stay parked through the frame a passer-by merges with its box, so:

- Where the object is, is the median centre (and diagonal) of its last ``STILL_FRAMES`` boxes:
  a box that jumps for a frame or two (an occlusion, a merged box) moves nothing, while a real
  move shows within three frames.
- It has moved when that centre is more than ``tolerance`` of the box's diagonal from where it
  was when the clock started. A fraction of its size, not pixels: a far object, whose box
  jitters by fewer pixels, is held to fewer pixels. The point is fixed while the clock runs, so
  slow drift adds up and an object creeping along is never stationary.

Pure logic, no clock of its own and no Ray: the tracker passes each box and its stream time.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Literal

from fleet.frames import Detection

STILL_FRAMES = 5  # where an object is: the median of its last boxes (a glitch or two moves nothing)
Change = Literal["stationary", "moved"]


class Stillness:
    """One track's stationary clock: fed every box of the track, says when the state changes."""

    def __init__(self, stationary_s: float, tolerance: float):
        self.stationary_s = stationary_s
        self.tolerance = tolerance  # a fraction of the box's diagonal
        self.recent: deque[tuple[float, float, float]] = deque(maxlen=STILL_FRAMES)
        self.at: tuple[float, float] | None = None  # where the clock started
        self.reach = 0.0  # how far from ``at`` the centre may be and not have moved (pixels)
        self.since = 0.0  # stream time the clock started
        self.stationary = False

    def observe(self, box: Detection, now: float, armed: bool = True) -> Change | None:
        """``"stationary"`` when the object has just stayed put for ``stationary_s``,
        ``"moved"`` when a stationary one has just left its spot, else None. The clock runs
        from the first box; only an ``armed`` track (an object, started) becomes stationary."""
        self.recent.append((box.x + box.w / 2, box.y + box.h / 2, math.hypot(box.w, box.h)))
        x, y, diagonal = (statistics.median(values) for values in zip(*self.recent, strict=True))
        if self.at is None or math.hypot(x - self.at[0], y - self.at[1]) > self.reach:
            moved = self.stationary
            self.at, self.since, self.stationary = (x, y), now, False
            self.reach = self.tolerance * diagonal
            return "moved" if moved else None
        if armed and not self.stationary and now - self.since >= self.stationary_s:
            self.stationary = True
            return "stationary"
        return None

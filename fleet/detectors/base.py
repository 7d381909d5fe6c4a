"""What a detector is, and the error it raises about one of its settings. Imports no Ray."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from fleet.errors import DetectorError
# Defined in fleet.errors with every other exception; re-exported for older imports
from fleet.errors import SettingError as SettingError
from fleet.frames import Detection, FrameMeta


class Detector(Protocol):
    """Finds things in a frame and returns them as boxes in original-frame pixels.

    ``frame`` is a read-only HxWx3 BGR view (in camfleet, on Ray's object store): a detector
    never writes into it and keeps no reference to it, or to any view of it, once it returns,
    or the frame would stay pinned in the object store.

    A detector may also have ``detect_batch(frames, metas) -> list[list[Detection]]``, one list
    per frame in order, for models that analyse several frames in one call; without it,
    :func:`detect_batch` calls ``detect`` frame by frame.
    """

    label: str

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> list[Detection]: ...


def detect_batch(detector: Detector, frames: Sequence[np.ndarray],
                 metas: Sequence[FrameMeta]) -> list[list[Detection]]:
    """The detector's ``detect_batch`` when it has one, else ``detect`` on each frame."""
    if len(frames) != len(metas):
        raise ValueError(f"{len(frames)} frames but {len(metas)} metas")
    batch = getattr(detector, "detect_batch", None)
    if batch is None:
        return [detector.detect(frame, meta) for frame, meta in zip(frames, metas, strict=True)]
    found: list[list[Detection]] = batch(list(frames), list(metas))
    if len(found) != len(frames):
        raise DetectorError(f"detect_batch returned {len(found)} results for {len(frames)} frames")
    return found

"""Frames for the benchmarks: a frame of real footage with faces, and what a synthetic camera
draws on it, so a face detector does real work and every side of a comparison sees the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FOOTAGE = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")


def background_image(folder: Path) -> str | None:
    """A frame of real footage with faces, if Debian's opencv-doc is installed."""
    import cv2

    cap = cv2.VideoCapture(str(FOOTAGE))
    for _ in range(20):
        ok, frame = cap.read()
    cap.release()
    if not FOOTAGE.is_file() or not ok:
        return None
    path = folder / "background.png"
    cv2.imwrite(str(path), frame)
    return str(path)


def scene_frames(width: int, height: int, background: str | None,
                 count: int = 8) -> list[np.ndarray]:
    """The frames the synthetic cameras produce, so the bound and the fleet see the same work."""
    from fleet.config import SyntheticSource
    from fleet.sources import SyntheticScene

    scene = SyntheticScene("bench", SyntheticSource(width=width, height=height, objects=1,
                                                    background=background))
    scene.open()
    frames = []
    for i in range(count * 4):
        scene.grab()
        if i % 4 == 0:
            frames.append(scene.retrieve(None).copy())
    return frames

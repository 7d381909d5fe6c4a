"""Frames into a model's input tensor, and boxes back to original-frame pixels.

A frame is resized once, straight into its place in a canvas of the model's size that the
packer owns (letterboxed: aspect kept, padded; or stretched), then scaled into a float tensor
that is also reused. Steady-state packing allocates nothing frame-sized, and the frame, a
read-only view, is only ever read.

The camera's ``detect_width`` caps the detail a detector sees: when the model's input is
wider than that, the frame is first downscaled to ``detect_width`` (into a reused buffer), as
the other detectors do, then resized up. Either way boxes map back through one scale and one
offset per axis, so they come back in original-frame pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fleet.errors import DetectorError
from fleet.frames import FrameMeta
from fleet.imaging import Downscaler


@dataclass(frozen=True)
class InputSpec:
    """What a model's input looks like and how pixels become its values:
    ``value = (pixel * scale - mean) / std`` per channel."""

    width: int
    height: int
    nchw: bool = True
    rgb: bool = True
    scale: float = 1 / 255
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    letterbox: bool = True
    pad_value: int = 114


@dataclass(frozen=True)
class Placement:
    """Where a frame sits in the model input: ``model px = frame px * scale + pad``."""

    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    frame_w: int
    frame_h: int

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """Boxes ``(n, 4)`` as x1, y1, x2, y2 in model pixels -> frame pixels, clipped."""
        out = np.empty_like(xyxy, dtype=np.float64)
        out[:, 0::2] = (xyxy[:, 0::2] - self.pad_x) / self.scale_x
        out[:, 1::2] = (xyxy[:, 1::2] - self.pad_y) / self.scale_y
        np.clip(out[:, 0::2], 0, self.frame_w, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0, self.frame_h, out=out[:, 1::2])
        return out


def fit(spec: InputSpec, frame_w: int, frame_h: int) -> tuple[int, int, int, int]:
    """(width, height, pad_x, pad_y) of the frame's image inside the model input."""
    if not spec.letterbox:
        return spec.width, spec.height, 0, 0
    scale = min(spec.width / frame_w, spec.height / frame_h)
    w = min(spec.width, max(1, round(frame_w * scale)))
    h = min(spec.height, max(1, round(frame_h * scale)))
    return w, h, (spec.width - w) // 2, (spec.height - h) // 2


def check_frame(frame: np.ndarray) -> None:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise DetectorError(
            f"expected an HxWx3 uint8 BGR frame; got shape {frame.shape}, dtype {frame.dtype}"
        )


class InputPacker:
    """Packs frames into a reused input tensor; one canvas per batch slot, one tensor per size."""

    def __init__(self, spec: InputSpec):
        self.spec = spec
        std = np.asarray(spec.std, np.float32)
        self._gain = (spec.scale / std).astype(np.float32)
        self._offset = (-np.asarray(spec.mean, np.float32) / std).astype(np.float32)
        self._tensors: dict[int, np.ndarray] = {}
        self._canvases: list[np.ndarray] = []
        self._drawn: list[tuple[int, int, int, int]] = []  # each canvas's fit, to repad on change
        self._scaler = Downscaler()

    def tensor(self, batch: int) -> np.ndarray:
        out = self._tensors.get(batch)
        if out is None:
            s = self.spec
            shape = (batch, 3, s.height, s.width) if s.nchw else (batch, s.height, s.width, 3)
            out = self._tensors[batch] = np.zeros(shape, np.float32)
        return out

    def pack(self, frames: Sequence[np.ndarray], metas: Sequence[FrameMeta],
             batch: int | None = None) -> tuple[np.ndarray, list[Placement]]:
        """The input tensor for ``frames`` (``batch`` slots, default one per frame; slots past
        the frames keep old values), and where each frame landed."""
        tensor = self.tensor(batch or len(frames))
        return tensor, [self._place(i, frame, meta, tensor[i])
                        for i, (frame, meta) in enumerate(zip(frames, metas, strict=True))]

    def _place(self, slot: int, frame: np.ndarray, meta: FrameMeta,
               out: np.ndarray) -> Placement:
        check_frame(frame)
        frame_h, frame_w = frame.shape[:2]
        geometry = fit(self.spec, frame_w, frame_h)
        w, h, pad_x, pad_y = geometry
        canvas = self._canvas(slot, geometry)
        region = canvas[pad_y:pad_y + h, pad_x:pad_x + w]
        source = self._source(frame, meta.detect_width, w)
        shrink = source.shape[1] >= w
        done = cv2.resize(source, (w, h), dst=region,
                          interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        if done is not region:  # OpenCV wrote elsewhere: put it in place
            np.copyto(region, done)
        self._to_values(canvas, out)
        return Placement(w / frame_w, h / frame_h, pad_x, pad_y, frame_w, frame_h)

    def _canvas(self, slot: int, geometry: tuple[int, int, int, int]) -> np.ndarray:
        while len(self._canvases) <= slot:
            self._canvases.append(np.empty((self.spec.height, self.spec.width, 3), np.uint8))
            self._drawn.append((0, 0, -1, -1))
        canvas = self._canvases[slot]
        if self._drawn[slot] != geometry:  # padding only changes with the frame's shape
            canvas.fill(self.spec.pad_value)
            self._drawn[slot] = geometry
        return canvas

    def _source(self, frame: np.ndarray, detect_width: int | None, width: int) -> np.ndarray:
        """The frame, or its reused ``detect_width`` downscale when the model would see more."""
        if detect_width and width > detect_width:
            return self._scaler.resize(frame, detect_width)[0]
        return frame

    def _to_values(self, canvas: np.ndarray, out: np.ndarray) -> None:
        pixels = canvas[:, :, ::-1] if self.spec.rgb else canvas
        values = out.transpose(1, 2, 0) if self.spec.nchw else out
        np.multiply(pixels, self._gain, out=values)
        if self._offset.any():
            np.add(values, self._offset, out=values)

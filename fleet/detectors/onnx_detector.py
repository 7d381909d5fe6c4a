"""Your own object detector on ONNX Runtime (``type: onnx``): YOLOX, the DETR family (RT-DETR,
D-FINE, RF-DETR), NanoDet, YOLOv5, YOLOv8/YOLO11, or a model with NMS inside, chosen by
``family:`` (see :mod:`fleet.detectors.decoders`).

Everything about the model is checked when the detector starts, with the setting named: the
file, its input (size, layout, type), the providers, the outputs' family and class count, and
the class names the ``classes:`` filter uses. A frame then costs one resize into a reused
canvas, one model call (a whole batch when the model's batch size is free) and a decode of
the boxes above ``min_score``.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fleet.config import OnnxDetectorConfig, OnnxModelConfig
from fleet.detectors.decoders import Candidates, Outputs, best, resolve_family, suppress
from fleet.detectors.letterbox import InputPacker, InputSpec, Placement
from fleet.detectors.models import existing_file
from fleet.detectors.session import OrtModel
from fleet.errors import SettingError
from fleet.frames import Detection, FrameMeta

MAX_CLASSES = 100_000  # class indices a model's metadata may name (the list is built at start)
MAX_NAMES_CHARS = 4_000_000  # its class names' text, read at start
PATH_HINT = ("put the file there or give an absolute path (paths are read on the node that "
             "runs the detector; see the README, Your own model)")


def input_size(model: OrtModel, config: OnnxModelConfig) -> tuple[int, int]:
    """(width, height): the model's fixed input size, checked against the config, else the
    config's, else the ``imgsz`` Ultralytics puts in the metadata."""
    shape = model.input_shape
    if len(shape) != 4:
        raise SettingError("model.path", f"the model's input is {shape}; a detector takes "
                           "[batch, 3, height, width] or [batch, height, width, 3]")
    channels, h, w = (shape[1], shape[2], shape[3]) if config.input_tensor == "nchw" \
        else (shape[3], shape[1], shape[2])
    if isinstance(channels, int) and channels != 3:
        other = "nhwc" if config.input_tensor == "nchw" else "nchw"
        raise SettingError("model.input_tensor", f"{config.input_tensor} reads {channels} "
                           f"channels from the model's input {shape}; set input_tensor: {other}")
    fixed = (w, h) if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0 else None
    given = (config.width, config.height) if config.width and config.height else None
    if fixed and given and fixed != given:
        raise SettingError("model.width", f"{given[0]}x{given[1]} given, but the model's input "
                           f"is {fixed[0]}x{fixed[1]}; give that, or leave width/height out")
    size = fixed or given or _metadata_size(model.metadata)
    if size is None:
        raise SettingError("model.width", f"the model's input size is not fixed ({shape}) and "
                           "its metadata has no imgsz; give model.width and model.height")
    return size


def _metadata_size(metadata: dict[str, str]) -> tuple[int, int] | None:
    try:
        imgsz = ast.literal_eval(metadata.get("imgsz", ""))
    except (ValueError, SyntaxError):
        return None
    if isinstance(imgsz, (list, tuple)) and len(imgsz) == 2 and all(
            isinstance(v, int) and v > 0 for v in imgsz):
        return int(imgsz[1]), int(imgsz[0])  # Ultralytics writes [height, width]
    return None


def class_names(config: OnnxDetectorConfig, metadata: dict[str, str]) -> list[str] | None:
    """Names from the ``labels:`` file, else from the metadata's ``names`` (a dict literal in
    Ultralytics exports), else None."""
    if config.labels:
        path = existing_file(config.labels, "labels", "give a text file with one class name a "
                             "line, absolute or in the models folder")
        return read_labels(path)
    text = metadata.get("names", "")
    if len(text) > MAX_NAMES_CHARS:  # a model file is input too: never parse megabytes of it
        raise SettingError("model.path", f"the model's metadata holds {len(text)} characters of "
                           f"class names (at most {MAX_NAMES_CHARS} are read); give labels:")
    try:
        found: Any = ast.literal_eval(text) if text else None
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        found = None
    if isinstance(found, dict) and all(isinstance(k, int) and k >= 0 for k in found):
        top = max(found, default=-1)
        if top >= MAX_CLASSES:
            raise SettingError("model.path", f"the model's metadata names class {top}; camfleet "
                               f"reads at most {MAX_CLASSES} classes: give labels:")
        return [str(found.get(i, f"class{i}")) for i in range(top + 1)]
    if isinstance(found, list):
        return [str(n) for n in found]
    return None


def read_labels(path: Path) -> list[str]:
    """One class name a line, in class order; blank lines at the end are ignored."""
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise SettingError("labels", f"{path} has no class names; write one name a line")
    if "" in names:
        raise SettingError("labels", f"{path}: line {names.index('') + 1} is empty; each line "
                           "names the class of its index (line 1: class 0)")
    return names


def class_filter(wanted: list[str] | None, names: list[str] | None) -> np.ndarray | None:
    """A boolean mask over class indices for ``classes:``, or None to keep every class."""
    if wanted is None:
        return None
    if names is None:
        raise SettingError("classes", "the model has no class names (no names in its "
                           "metadata); give labels: a file with one class name a line")
    unknown = [n for n in wanted if n not in names]
    if unknown:
        shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
        raise SettingError("classes", f"{', '.join(unknown)} not among the model's classes "
                           f"({shown})")
    return np.isin(np.asarray(names, dtype=object), wanted)


class OnnxDetector:
    """Objects with a model of your own on ONNX Runtime; labels are the model's class names."""

    label = "object"

    def __init__(self, config: OnnxDetectorConfig, names: list[str] | None = None):
        """``names``: the class names, for a kind that knows its model's (else ``labels:``,
        else the model's metadata)."""
        self.config = config
        path = existing_file(config.model.path, "model.path", PATH_HINT)
        self.model = OrtModel(path, config, "model.path")
        if self.model.input_type != "tensor(float)":
            raise SettingError("model.path", f"the model's input is {self.model.input_type}; "
                               "camfleet feeds float32 (export without half precision)")
        width, height = input_size(self.model, config.model)
        self.packer = InputPacker(_spec(config.model, width, height))
        self.names = names if names is not None else class_names(config, self.model.metadata)
        self.decoder = resolve_family(config.family, self._outputs((width, height)))
        self.family = self.decoder.name
        self.keep = class_filter(config.classes, self.names)

    def _outputs(self, size: tuple[int, int]) -> Outputs:
        """The model's outputs for one image, as the families read them (from a first run,
        which also sizes the buffers)."""
        tensor = self.packer.tensor(self.model.fixed_batch or 1)
        outputs = self.model.run(tensor)
        if not any(out.ndim == 3 for out in outputs):
            shapes = ", ".join(str(list(o.shape)) for o in outputs)
            raise SettingError("model.path", f"the model's outputs ({shapes}) hold no "
                               "[batch, rows, columns] array of boxes; is it an object "
                               "detector?")
        return Outputs(tuple(tuple(int(d) for d in out.shape[1:]) for out in outputs),
                       tuple(self.model.output_names), size,
                       len(self.names) if self.names is not None else None)

    def detect(self, frame: np.ndarray, meta: FrameMeta) -> list[Detection]:
        return self.detect_batch([frame], [meta])[0]

    def detect_batch(self, frames: Sequence[np.ndarray],
                     metas: Sequence[FrameMeta]) -> list[list[Detection]]:
        """One model call per batch (a graph exported with a fixed batch size runs in chunks
        of that size)."""
        step = self.model.fixed_batch or max(1, len(frames))
        found: list[list[Detection]] = []
        for start in range(0, len(frames), step):
            chunk, chunk_metas = frames[start:start + step], metas[start:start + step]
            tensor, placed = self.packer.pack(chunk, chunk_metas, batch=step)
            outputs = self.model.run(tensor)  # every output has the batch first
            found += [self._detections([out[i] for out in outputs], where)
                      for i, where in enumerate(placed)]
        return found

    def _detections(self, outputs: list[np.ndarray], where: Placement) -> list[Detection]:
        found = self.decoder(outputs, self.config.min_score)
        if self.keep is not None:
            found = _only(found, self.keep)
        limit = self.config.max_detections
        kept = suppress(found, self.config.nms_iou, limit) if self.decoder.needs_nms else \
            best(found, limit)
        boxes = where.to_frame(found.boxes[kept])
        return [Detection(self._name(int(c)), round(x1), round(y1), round(x2 - x1),
                          round(y2 - y1), float(s))
                for (x1, y1, x2, y2), s, c in zip(boxes.tolist(), found.scores[kept].tolist(),
                                                  found.classes[kept].tolist(), strict=True)
                if round(x2 - x1) > 0 and round(y2 - y1) > 0]

    def _name(self, index: int) -> str:
        names = self.names
        return names[index] if names is not None and 0 <= index < len(names) else f"class{index}"


def _only(found: Candidates, keep: np.ndarray) -> Candidates:
    inside = (found.classes >= 0) & (found.classes < len(keep))
    mask = inside.copy()
    mask[inside] = keep[found.classes[inside]]
    return Candidates(found.boxes[mask], found.scores[mask], found.classes[mask])


def _spec(model: OnnxModelConfig, width: int, height: int) -> InputSpec:
    return InputSpec(
        width=width, height=height, nchw=model.input_tensor == "nchw",
        rgb=model.pixel_format == "rgb", scale=model.scale,
        mean=model.mean or (0.0, 0.0, 0.0), std=model.std or (1.0, 1.0, 1.0),
        letterbox=model.resize == "letterbox", pad_value=model.pad_value,
    )

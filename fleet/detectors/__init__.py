"""Detectors: one registry of kinds, each a plain class. Imports no Ray.

    blazeface  MediaPipe BlazeFace on ONNX Runtime (the default for a detector named face)
    nanodet    NanoDet, 80 COCO classes, on ONNX Runtime (the default for person and objects)
    onnx       your own object detector on ONNX Runtime (see fleet.detectors.decoders)
    haar       OpenCV Haar cascade faces (legacy)
    hog        OpenCV HOG + linear SVM people (legacy)
    blobs      solid-colour boxes: the synthetic scene's paths (ground truth for tests)

A detector reads the frame it is given (in camfleet a read-only view on Ray's object store),
resizes it into buffers of its own that it reuses across calls, and returns boxes in
original-frame coordinates. It keeps no reference to the frame after returning, or the frame
would stay pinned in the object store. Everything a detector needs (model files, providers,
class names) is checked when it is built: a bad setting is a :class:`DetectorError` at start,
naming the setting.
"""

from __future__ import annotations

from collections.abc import Callable

from fleet.config import DetectorConfig
from fleet.detectors.base import Detector, detect_batch
from fleet.detectors.blazeface import BlazeFaceDetector
from fleet.detectors.blobs import BlobsDetector
from fleet.detectors.legacy import CASCADES, HaarFaceDetector, HogPersonDetector
from fleet.detectors.models import MODELS_ENV, models_dir
from fleet.detectors.nanodet import NanoDetDetector
from fleet.detectors.onnx_detector import OnnxDetector
from fleet.detectors.regions import with_tiles
from fleet.detectors.service import DetectorService
from fleet.errors import DetectorError, SettingError
from fleet.frames import Detection

REGISTRY: dict[str, Callable[..., Detector]] = {
    "blazeface": BlazeFaceDetector,
    "nanodet": NanoDetDetector,
    "onnx": OnnxDetector,
    "haar": HaarFaceDetector,
    "hog": HogPersonDetector,
    "blobs": BlobsDetector,
}


def build_detector(config: DetectorConfig, name: str | None = None) -> Detector:
    """The detector for a config, from the registry of kinds.

    Raises :class:`DetectorError` when it cannot start; a bad setting is named, under
    ``detectors.<name>.`` when ``name`` is given (``detectors.cars.model.path: no file at ...``).
    """
    try:
        factory = REGISTRY[config.type]
    except KeyError:
        raise DetectorError(
            f"unknown detector type '{config.type}'; known: {', '.join(sorted(REGISTRY))}"
        ) from None
    try:
        detector = factory(config)
    except SettingError as exc:
        if name is None:
            raise
        raise exc.under(f"detectors.{name}") from exc
    # tiles: the same detector on overlapping tiles too, for objects small in the frame
    return with_tiles(detector, config.tiles)


__all__ = [
    "CASCADES",
    "MODELS_ENV",
    "REGISTRY",
    "BlazeFaceDetector",
    "BlobsDetector",
    "Detection",
    "Detector",
    "DetectorService",
    "HaarFaceDetector",
    "HogPersonDetector",
    "NanoDetDetector",
    "OnnxDetector",
    "SettingError",
    "build_detector",
    "detect_batch",
    "models_dir",
]

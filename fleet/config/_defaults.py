"""What a fleet file leaves out, filled in before validation: ``defaults:`` merged into every
camera, and the detectors the cameras name by kind (``face``, ``person``, ``objects``) given
their default type and classes. Runs on raw data: anything may be anywhere, and a wrong shape is
left for validation to refuse."""

from __future__ import annotations

from typing import Any

# Detector names that exist without being defined (their type: DEFAULT_DETECTOR_TYPES).
DETECTOR_KINDS = ("face", "person", "objects")
# What a detector named like a kind (DETECTOR_KINDS) runs when it names no ``type:``.
DEFAULT_DETECTOR_TYPES = {"face": "blazeface", "person": "nanodet", "objects": "nanodet"}
# ... and the classes it keeps, when it names none.
DEFAULT_DETECTOR_CLASSES = {
    "person": ["person"],
    "objects": ["person", "bicycle", "car", "motorcycle", "bus", "truck", "cat", "dog"],
}


def _merge(base: Any, override: Any) -> Any:
    """``override`` wins; mappings merge key by key, at every depth."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merge(base[k], v) if k in base else v for k, v in override.items()}}
    return override


def _apply_defaults(data: dict[str, Any]) -> dict[str, Any]:
    defaults, cameras = data.get("defaults"), data.get("cameras")
    if not isinstance(defaults, dict) or not isinstance(cameras, list):
        return data
    return {**data, "cameras": [_merge(defaults, c) if isinstance(c, dict) else c for c in cameras]}


def _add_detector_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """A detector named like a kind gets its default ``type`` (face: blazeface, person and
    objects: nanodet, with their classes);
    a kind used but not defined is added. Runs before validation: anything may be anywhere."""
    detectors, cameras = data.get("detectors"), data.get("cameras")
    detectors = {} if detectors is None else detectors
    if not isinstance(detectors, dict):
        return data
    typed = {name: _typed_detector(name, spec) for name, spec in detectors.items()}
    for camera in cameras if isinstance(cameras, list) else []:  # `cameras: 1` is refused later
        names = camera.get("detect", ["face"]) if isinstance(camera, dict) else []
        for name in names if isinstance(names, list) else []:
            if name in DETECTOR_KINDS and name not in typed:
                typed[name] = _typed_detector(name, None)
    return {**data, "detectors": typed}


def _typed_detector(name: Any, spec: Any) -> Any:
    kind = DEFAULT_DETECTOR_TYPES.get(name) if isinstance(name, str) else None
    if kind is None:
        return spec
    preset: dict[str, Any] = {"type": kind}
    if name in DEFAULT_DETECTOR_CLASSES:
        preset["classes"] = list(DEFAULT_DETECTOR_CLASSES[name])
    if spec is None:  # a bare `face:` means "face, with the defaults"
        return preset
    return {**preset, **spec} if isinstance(spec, dict) and "type" not in spec else spec


def fill_in(data: dict[str, Any]) -> dict[str, Any]:
    """Merge ``defaults:`` into each camera, then add the detectors the cameras imply."""
    return _add_detector_defaults(_apply_defaults(data))

"""The smallest face a BlazeFace detector finds in a camera's frame, and the note that says so.

BlazeFace letterboxes the whole frame into its square input (128 px for ``front``, 256 px for
``back``), so a frame W x H is seen at ``input / max(W, H)`` (less when ``detect_width`` or
``put_width`` already shrank it further). Measured on the composites of ``camfleet bench
accuracy`` at 1920x1080 and at 768x576, both models find a face once it is about
``MIN_FACE_INPUT_PX`` high in their input, whatever the frame size: at 768x576 back finds
83-85% of 40 px faces (13 px in its input) and 97% of 44 px ones (15 px), front 50% of 80 px
faces (13 px) and 93% of 88 px ones (15 px); at 1080p back finds 79% of 90 px faces (12 px) and
all of 140 px (19 px), front 58% of 200 px faces (13 px). So a camera's resolution sets the
smallest face it can report, and that is worth saying before anyone wonders why a face at the
door never shows up.

Pure arithmetic on config objects: imports neither numpy nor OpenCV, so ``camfleet validate``
can say it for cameras whose size is known before start (synthetic sources), and the
controller for the others once a camera's stats carry its first frame's size.
"""

from __future__ import annotations

from collections.abc import Mapping

from fleet.config import BlazeFaceDetectorConfig, CameraConfig, DetectorConfig

INPUT_PX = {"front": 128, "back": 256}  # BlazeFace's square input, per model
MIN_FACE_INPUT_PX = 15  # face px in the model's input from which >= 90% are found (both models)
# A model that misses faces this high in the frame gets a note: the small faces of a camera over a
# scene, those the bench measures at 768x576 (40-64 px), where back (from 45 px) gets none.
SMALL_FACE_PX = 48
TILES = "tiles: {enabled: true, grid: auto}"


def seen_at(model: str, width: int, height: int, detect_width: int | None = None,
            put_width: int | None = None) -> float:
    """Model-input pixels per frame pixel for a ``width`` x ``height`` frame: the letterbox
    scale, or the narrower of ``detect_width`` and ``put_width`` when they shrink it more."""
    scale = INPUT_PX[model] / max(width, height)
    caps = [w / width for w in (detect_width, put_width) if w and w < width]
    return min([scale, *caps])


def smallest_face_px(model: str, width: int, height: int, detect_width: int | None = None,
                     put_width: int | None = None) -> float:
    """The face height (frame pixels) from which ``model`` finds faces in such a frame."""
    return MIN_FACE_INPUT_PX / seen_at(model, width, height, detect_width, put_width)


def small_face_note(camera: CameraConfig, name: str, detector: DetectorConfig, width: int,
                    height: int) -> str | None:
    """What detector ``name`` misses in ``camera``'s ``width`` x ``height`` frames, and what
    would find those faces, when its smallest face is over ``SMALL_FACE_PX``; None for any
    other detector, a tiled one (its tiles see more), or a frame it sees well enough."""
    if not isinstance(detector, BlazeFaceDetectorConfig) or detector.tiles.enabled:
        return None
    model, caps = detector.model, (camera.detect_width, camera.put_width)
    scale = seen_at(model, width, height, *caps)
    smallest = MIN_FACE_INPUT_PX / scale
    if smallest <= SMALL_FACE_PX:
        return None
    full = INPUT_PX[model] / max(width, height)  # the letterbox alone
    cap = _binding_cap(camera, width, scale) if scale < full else None
    if cap:
        better = (f"raise {cap} to {round(width * full)} for faces from about "
                  f"{MIN_FACE_INPUT_PX / full:.0f} px")
    elif model == "front":
        back = smallest_face_px("back", width, height, *caps)
        better = f"model: back finds them from about {back:.0f} px"
        if back > SMALL_FACE_PX:
            better += f"; {TILES} smaller ones, at a model call a tile"
    else:
        better = f"{TILES} finds smaller ones, at a model call a tile"
    seen = f"1/{_ratio(1 / scale)}" + (f" ({cap} {getattr(camera, cap)})" if cap else "")
    return (f"camera {camera.id}: face detector '{name}' (BlazeFace {model}, "
            f"{INPUT_PX[model]} px input) sees this {width}x{height} frame at {seen}: faces "
            f"smaller than about {smallest:.0f} px are likely missed; {better}")


def _binding_cap(camera: CameraConfig, width: int, scale: float) -> str | None:
    """``detect_width`` or ``put_width``: the setting that shrinks frames to ``scale``."""
    return next((key for key in ("detect_width", "put_width")
                 if getattr(camera, key) and getattr(camera, key) / width == scale), None)


def face_notes(camera: CameraConfig, detectors: Mapping[str, DetectorConfig], width: int,
               height: int) -> list[str]:
    """:func:`small_face_note` for each detector the camera runs (``detect``)."""
    notes = (small_face_note(camera, name, detectors[name], width, height)
             for name in camera.detect if name in detectors)
    return [n for n in notes if n]


def _ratio(value: float) -> str:
    """6 -> ``6``, 7.5 -> ``7.5``, 5.625 -> ``5.6``."""
    return f"{value:.1f}".removesuffix(".0")

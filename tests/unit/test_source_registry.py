"""The source registry and the config agree: every source ``type`` the config accepts has a
registry entry, built by ``open_source`` into the class that reads it, and every entry has a
config model. Real small inputs: a synthetic scene, an image folder, real footage (VTEST)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, get_args

import cv2
import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

from fleet.config import CameraConfig
from fleet.sources import (
    REGISTRY,
    CaptureSource,
    ImageFolderSource,
    SyntheticScene,
    open_source,
)
from tests.conftest import VTEST


def _config_models() -> dict[str, type[BaseModel]]:
    """``{type: model}`` for each member of the camera config's ``source`` union."""
    union = CameraConfig.model_fields["source"].annotation
    return {model.model_fields["type"].default: model for model in get_args(union)}


# One real, small input per type; a type missing here fails test_every_type_has_a_sample.
SAMPLES: dict[str, tuple[dict[str, Any], type]] = {
    "file": ({"type": "file", "path": str(VTEST), "realtime": False}, CaptureSource),
    "rtsp": ({"type": "rtsp", "url": "rtsp://admin:hunter2@127.0.0.1:9/live"}, CaptureSource),
    "http": ({"type": "http", "url": "http://127.0.0.1:9/cam.mjpg?token=hunter2"}, CaptureSource),
    "device": ({"type": "device", "index": 0}, CaptureSource),
    "images": ({"type": "images", "fps": 5.0}, ImageFolderSource),  # path: tmp_path
    "synthetic": ({"type": "synthetic", "width": 64, "height": 48, "frames": 3}, SyntheticScene),
}
# What open() needs here: footage on disk, a folder; streams and devices are not opened.
OPENED = {"file": (576, 768, 3), "images": (32, 40, 3), "synthetic": (48, 64, 3)}


def _camera(source: dict[str, Any], **settings: Any) -> CameraConfig:
    return CameraConfig.model_validate({"id": "cam", "source": source, **settings})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"img-{i}.png"), np.full((32, 40, 3), 60 * i, np.uint8))
    return tmp_path


def test_the_config_and_the_registry_name_the_same_types():
    models = _config_models()
    assert sorted(models) == sorted(REGISTRY)
    for kind, entry in REGISTRY.items():
        assert entry.model is models[kind], kind


def test_every_type_has_a_sample():
    assert sorted(SAMPLES) == sorted(REGISTRY)


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_live_is_what_the_config_says(kind, folder):
    """A live source cannot wait for buffers: the config refuses drop_policy wait for it."""
    source = {**SAMPLES[kind][0], **({"path": str(folder)} if kind == "images" else {})}
    if REGISTRY[kind].live:
        with pytest.raises(ValidationError, match="a live source cannot wait"):
            _camera(source, drop_policy="wait")
    else:
        assert _camera(source, drop_policy="wait").drop_policy == "wait"


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_open_source_builds_the_class_for_each_type(kind, folder, request):
    settings, cls = SAMPLES[kind]
    if kind == "file":
        request.getfixturevalue("footage")  # fails, naming the package, when VTEST is missing
    if kind == "images":
        settings = {**settings, "path": str(folder)}
    config = _camera(settings).source
    source = open_source("cam", config)
    assert type(source) is cls
    assert "hunter2" not in source.description  # safe to log
    if kind not in OPENED:
        return  # a stream or a device: nothing to open here
    source.open()
    try:
        source.grab()
        frame = source.retrieve(None)
        assert frame.shape == OPENED[kind]
        source.grab()
        assert source.retrieve(frame) is frame  # decoded into the reused buffer
    finally:
        source.close()


def test_a_config_without_a_registry_entry_is_named():
    stray = SimpleNamespace(type="carrier-pigeon")
    with pytest.raises(ValueError, match="carrier-pigeon.*known: device, file"):
        open_source("cam", stray)  # type: ignore[arg-type]

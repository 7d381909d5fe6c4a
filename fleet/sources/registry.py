"""The registry of source kinds, keyed by the config's source ``type``, and ``open_source``,
which builds a camera's source from it. Imports no Ray."""

from __future__ import annotations

from typing import Any

from fleet.config import (
    DeviceSource,
    FileSource,
    HttpSource,
    ImagesSource,
    RtspSource,
    SyntheticSource,
)
from fleet.sources.base import FrameSource, SourceKind
from fleet.sources.capture import CaptureSource
from fleet.sources.images import ImageFolderSource
from fleet.sources.synthetic import SyntheticScene

SourceConfig = FileSource | RtspSource | HttpSource | DeviceSource | ImagesSource | SyntheticSource

# One entry per model of the config's ``Source`` union; unit/test_source_registry.py holds the
# two together.
REGISTRY: dict[str, SourceKind[Any]] = {
    "file": SourceKind(FileSource, CaptureSource),
    "rtsp": SourceKind(RtspSource, CaptureSource),
    "http": SourceKind(HttpSource, CaptureSource),
    "device": SourceKind(DeviceSource, CaptureSource),
    "images": SourceKind(ImagesSource, ImageFolderSource),
    "synthetic": SourceKind(SyntheticSource, SyntheticScene),
}


def open_source(camera: str, config: SourceConfig) -> FrameSource:
    """Build the source for a camera's config (not yet opened)."""
    kind = REGISTRY.get(config.type)
    if kind is None or not isinstance(config, kind.model):
        # a validated config cannot get here: this is a model without its registry entry
        raise ValueError(f"camera '{camera}': no source for {type(config).__name__} "
                         f"(type '{config.type}'); known: {', '.join(sorted(REGISTRY))}")
    return kind.build(camera, config)

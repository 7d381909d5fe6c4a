"""Fleet configuration: models, loading, and the JSON schema. Imports no Ray."""

from typing import Any

from fleet.config._loader import load_fleet, parse_fleet
from fleet.config._models import (
    DETECTOR_KINDS,
    AutoscalingConfig,
    CameraConfig,
    CameraSettings,
    DetectorConfig,
    DeviceSource,
    FaceDetectorConfig,
    FileSource,
    FleetConfig,
    HttpSource,
    ImagesSource,
    JsonlSinkConfig,
    MetricsConfig,
    MotionConfig,
    PersonDetectorConfig,
    ReconnectConfig,
    RtspSource,
    SinksConfig,
    SnapshotSinkConfig,
    SyntheticSource,
)


def json_schema() -> dict[str, Any]:
    """The JSON schema of a fleet file, as committed in ``config/schema.json``."""
    schema = FleetConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "camfleet fleet file"
    return schema


__all__ = [
    "DETECTOR_KINDS",
    "AutoscalingConfig",
    "CameraConfig",
    "CameraSettings",
    "DetectorConfig",
    "DeviceSource",
    "FaceDetectorConfig",
    "FileSource",
    "FleetConfig",
    "HttpSource",
    "ImagesSource",
    "JsonlSinkConfig",
    "MetricsConfig",
    "MotionConfig",
    "PersonDetectorConfig",
    "ReconnectConfig",
    "RtspSource",
    "SinksConfig",
    "SnapshotSinkConfig",
    "SyntheticSource",
    "json_schema",
    "load_fleet",
    "parse_fleet",
]

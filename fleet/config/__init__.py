"""Fleet configuration: models, loading, and the JSON schema. Imports no Ray."""

from typing import Any

from fleet.config._loader import load_fleet, parse_fleet
from fleet.config._models import (
    DEFAULT_DETECTOR_CLASSES,
    DEFAULT_DETECTOR_TYPES,
    DETECTOR_KINDS,
    AutoscalingConfig,
    BatchingConfig,
    BlazeFaceDetectorConfig,
    BlobsDetectorConfig,
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
    NanoDetDetectorConfig,
    OnnxDetectorConfig,
    OnnxModelConfig,
    OnnxRuntimeSettings,
    PersonDetectorConfig,
    ReconnectConfig,
    RtspSource,
    SinksConfig,
    SnapshotSinkConfig,
    SyntheticSource,
    TilesConfig,
)
from fleet.config._objects import MaskConfig, TrackingConfig, ZoneConfig
from fleet.config._push import MqttSinkConfig, WebhookSinkConfig
from fleet.config._scene import ScenePath

# The legacy OpenCV detectors by what they are (type: haar, type: hog).
HaarDetectorConfig = FaceDetectorConfig
HogDetectorConfig = PersonDetectorConfig


def json_schema() -> dict[str, Any]:
    """The JSON schema of a fleet file, as committed in ``config/schema.json``."""
    schema = FleetConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "camfleet fleet file"
    return schema


__all__ = [
    "DEFAULT_DETECTOR_CLASSES",
    "DEFAULT_DETECTOR_TYPES",
    "DETECTOR_KINDS",
    "AutoscalingConfig",
    "BatchingConfig",
    "BlazeFaceDetectorConfig",
    "BlobsDetectorConfig",
    "CameraConfig",
    "CameraSettings",
    "DetectorConfig",
    "DeviceSource",
    "FaceDetectorConfig",
    "FileSource",
    "FleetConfig",
    "HaarDetectorConfig",
    "HogDetectorConfig",
    "HttpSource",
    "ImagesSource",
    "JsonlSinkConfig",
    "MaskConfig",
    "MetricsConfig",
    "MqttSinkConfig",
    "MotionConfig",
    "NanoDetDetectorConfig",
    "OnnxDetectorConfig",
    "OnnxModelConfig",
    "OnnxRuntimeSettings",
    "PersonDetectorConfig",
    "ReconnectConfig",
    "RtspSource",
    "ScenePath",
    "SinksConfig",
    "SnapshotSinkConfig",
    "SyntheticSource",
    "TilesConfig",
    "TrackingConfig",
    "WebhookSinkConfig",
    "ZoneConfig",
    "json_schema",
    "load_fleet",
    "parse_fleet",
]

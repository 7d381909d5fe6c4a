"""Fleet configuration: models, loading, and the JSON schema. Imports no Ray."""

from typing import Any

from fleet.config._camera import CameraConfig, CameraSettings, MotionConfig, ReconnectConfig
from fleet.config._controller import AutoscalingConfig, MetricsConfig
from fleet.config._defaults import DEFAULT_DETECTOR_CLASSES, DEFAULT_DETECTOR_TYPES, DETECTOR_KINDS
from fleet.config._detector_pool import BatchingConfig, TilesConfig
from fleet.config._detectors import (
    BlazeFaceDetectorConfig,
    BlobsDetectorConfig,
    DetectorConfig,
    FaceDetectorConfig,
    NanoDetDetectorConfig,
    PersonDetectorConfig,
)
from fleet.config._fleet import FleetConfig
from fleet.config._loader import load_fleet, parse_fleet
from fleet.config._objects import MaskConfig, TrackingConfig, ZoneConfig
from fleet.config._onnx import OnnxDetectorConfig, OnnxModelConfig, OnnxRuntimeSettings
from fleet.config._push import MqttSinkConfig, WebhookSinkConfig
from fleet.config._scene import ScenePath
from fleet.config._sinks import JsonlSinkConfig, SinksConfig, SnapshotSinkConfig
from fleet.config._sources import (
    DeviceSource,
    FileSource,
    HttpSource,
    ImagesSource,
    RtspSource,
    SyntheticSource,
)

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

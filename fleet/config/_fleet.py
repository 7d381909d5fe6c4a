"""A whole fleet file: its top-level settings, and the checks across cameras and detectors.

Before validation ``defaults:`` is merged into every camera and the implied detectors are added
(``_defaults.py``), so the models check the file as the cameras will run it, whether the data
came through the loader or not. The loader (``_loader.py``) interpolates ``${VAR}`` and maps
each error back to a file line.

A cross-field check names the field it is about as a ``field.path: `` prefix of its message
(relative to the model that raises it); the loader turns that prefix into the problem's location.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from fleet.config._base import ID_PATTERN, StrictModel
from fleet.config._camera import CameraConfig, CameraSettings
from fleet.config._controller import AutoscalingConfig, MetricsConfig
from fleet.config._defaults import DETECTOR_KINDS, fill_in
from fleet.config._detectors import DetectorConfig, detectors_schema
from fleet.config._sinks import SinksConfig

SafeId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class FleetConfig(StrictModel):
    """A whole fleet file."""

    version: Literal[1] = Field(default=1, description="Fleet file format version.")
    name: str = Field(
        default="fleet", pattern=ID_PATTERN, description="Fleet name (controller actor name)."
    )
    output_dir: str = Field(
        default="runs", min_length=1, description="Runs are written below this folder."
    )
    stats_interval_s: float = Field(
        default=1.0, ge=0.1, le=60, description="How often stats are gathered."
    )
    stats_file_interval_s: float | None = Field(
        default=None, ge=0.1, le=3600,
        description="How often a line goes to stats.jsonl (none: stats_interval_s, and one "
        "more second for every 100 cameras beyond the first 100, so a big fleet's file grows "
        "about 30 KiB a second, not 300).",
    )
    drain_timeout_s: float = Field(
        default=10.0, ge=0, le=600, description="Wait for in-flight frames at stop."
    )
    orphan_timeout_s: float = Field(
        default=30.0, ge=5, le=3600,
        description="On a cluster the fleet's actors outlive a crashed controller (a restarted "
        "one adopts them) and the controller outlives its driver (a stopped job still drains). "
        "An actor nobody has called for this long stops itself.",
    )
    defaults: CameraSettings = Field(
        default_factory=CameraSettings, description="Merged into every camera before validation."
    )
    cameras: list[CameraConfig] = Field(min_length=1, description="The cameras.")
    detectors: dict[SafeId, DetectorConfig] = Field(
        default_factory=dict,
        description="Detector pools by name; face, person and objects exist by default.",
        json_schema_extra=detectors_schema,
    )
    sinks: SinksConfig = Field(default_factory=SinksConfig, description="Where events go.")
    autoscaling: AutoscalingConfig = Field(
        default_factory=AutoscalingConfig, description="Detector actors and buffers, tuned."
    )
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig, description="Prometheus endpoint of the controller."
    )

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        """Merge ``defaults:`` into each camera, then add the detectors the cameras imply."""
        if not isinstance(data, dict):
            return data
        return fill_in(data)

    @field_validator("version", mode="before")
    @classmethod
    def _supported_version(cls, value: Any) -> Any:
        if value != 1 or isinstance(value, bool):
            raise ValueError(
                f"fleet file version {value!r} is not supported; this camfleet reads version 1: "
                "set version: 1, or run the camfleet release that wrote the file"
            )
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> FleetConfig:
        problems = self._duplicate_ids() + self._unknown_detectors()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _duplicate_ids(self) -> list[str]:
        first: dict[str, int] = {}
        problems = []
        for i, camera in enumerate(self.cameras):
            if camera.id in first:
                other = first[camera.id]
                problems.append(
                    f"cameras[{i}].id: duplicate camera id '{camera.id}' (cameras[{other}] has it "
                    "too); give every camera its own id"
                )
            first.setdefault(camera.id, i)
        return problems

    def _unknown_detectors(self) -> list[str]:
        known = ", ".join(sorted({*DETECTOR_KINDS, *self.detectors}))
        return [
            f"cameras[{i}].detect[{j}]: unknown detector '{name}'; define it under detectors: "
            f"or use one of {known}"
            for i, camera in enumerate(self.cameras)
            for j, name in enumerate(camera.detect)
            if name not in self.detectors
        ]

    @property
    def active_cameras(self) -> list[CameraConfig]:
        return [c for c in self.cameras if c.enabled]

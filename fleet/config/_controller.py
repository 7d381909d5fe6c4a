"""The controller's own settings: how it scales the fleet (``autoscaling:``) and where it serves
its metrics (``metrics:``)."""

from __future__ import annotations

from pydantic import Field, model_validator

from fleet.config._base import StrictModel


class AutoscalingConfig(StrictModel):
    """Targets and bounds for the controller's scaling policy (see fleet/control/policy.py)."""

    enabled: bool = Field(
        default=True, description="Tune detector actors and camera buffers; false keeps them fixed."
    )
    target_hit_rate: float = Field(
        default=0.99, gt=0, le=1, description="Frames admitted / frames offered, per camera."
    )
    latency_slo_ms: float = Field(
        default=1000.0, gt=0, le=600_000, description="p95 end-to-end latency to stay under."
    )
    target_utilisation: float = Field(
        default=0.75, ge=0.1, le=1, description="Busy fraction each detector actor should run at."
    )
    min_buffers: int = Field(default=1, ge=1, le=64, description="Fewest buffers per camera.")
    max_buffers: int = Field(default=16, ge=1, le=64, description="Most buffers per camera.")
    upscale_delay_s: float = Field(
        default=3.0, ge=0, le=3600, description="A need to grow must hold this long before acting."
    )
    downscale_delay_s: float = Field(
        default=30.0, ge=0, le=3600, description="A need to shrink must hold this long."
    )
    look_back_s: float = Field(
        default=10.0, ge=1, le=600, description="Window for hit-rate, latency and service time."
    )

    @model_validator(mode="after")
    def _buffer_bounds(self) -> AutoscalingConfig:
        if self.min_buffers > self.max_buffers:
            raise ValueError(
                f"min_buffers ({self.min_buffers}) exceeds max_buffers ({self.max_buffers})"
            )
        return self


class MetricsConfig(StrictModel):
    """The controller's Prometheus endpoint."""

    enabled: bool = Field(default=True, description="Serve /metrics from the controller.")
    host: str = Field(
        default="127.0.0.1", min_length=1,
        description="Address to listen on; 0.0.0.0 to let a Prometheus on another host scrape.",
    )
    port: int = Field(default=9450, ge=0, le=65535, description="Port; 0 picks a free one.")

"""What every detector has: the pool of actors that runs it, and how they batch and tile frames.

Each detector type (``_detectors.py``, ``_onnx.py``) builds on :class:`DetectorBase`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from fleet.config._base import StrictModel


class BatchingConfig(StrictModel):
    """Frames from several cameras in one model call (see fleet/pipeline/batching.py)."""

    max_batch_size: int = Field(
        default=1, ge=1, le=256,
        description="Most frames one model call takes. With autoscaling on, the batch size is "
        "tuned between 1 and this from queueing and the latency SLO; 1 turns batching off.",
    )
    batch_wait_timeout_ms: float = Field(
        default=2.0, ge=0, le=1000,
        description="Longest the first frame of a batch waits for more before the call.",
    )


GridSide = Annotated[int, Field(ge=1, le=16)]


class TilesConfig(StrictModel):
    """Small faces and objects: the detector also runs on overlapping tiles of the frame
    (see fleet/detectors/regions.py), so each tile fills the model's input."""

    enabled: bool = Field(
        default=False,
        description="Run the detector on tiles of each frame as well; costs one model call a "
        "tile (plus one for the full frame).",
    )
    grid: tuple[GridSide, GridSide] | Literal["auto"] = Field(
        default=(2, 2),
        description="[columns, rows] of tiles; auto: nearly square tiles, as many as it takes "
        "for a frame pixel to shrink at most 4x into the model's input (detect_width for "
        "detectors with no fixed input), none when the whole frame already does.",
    )
    overlap: float = Field(
        default=0.2, ge=0, le=0.5,
        description="Fraction of a tile shared with its neighbour, so an object cut by one "
        "tile's edge lies whole in the next.",
    )
    include_full_frame: bool = Field(
        default=True, description="Also run on the whole frame, for objects larger than a tile."
    )
    nms_iou: float = Field(
        default=0.4, ge=0, le=1,
        description="Boxes of one label from different tiles that overlap more than this are "
        "one object: the best-scored box is kept.",
    )


class DetectorBase(StrictModel):
    actors: int = Field(default=1, ge=0, le=1024, description="Actors started with the fleet.")
    min_actors: int = Field(
        default=1, ge=0, le=1024, description="Fewest actors the autoscaler keeps."
    )
    max_actors: int = Field(
        default=4, ge=1, le=1024, description="Most actors the autoscaler starts."
    )
    num_cpus: float = Field(default=1.0, gt=0, le=64, description="Ray CPUs per detector actor.")
    num_gpus: float = Field(
        default=0.0, ge=0, le=16,
        description="Ray GPUs per detector actor; fractions share a GPU (0.25: four actors).",
    )
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources per actor, e.g. {accelerator_a10g: 1} to land on "
        "nodes started with --resources.",
    )
    batching: BatchingConfig = Field(
        default_factory=BatchingConfig, description="Cross-camera batching of model calls."
    )
    tiles: TilesConfig = Field(
        default_factory=TilesConfig, description="Tiling, for objects small in the frame."
    )

    @model_validator(mode="after")
    def _bounds(self) -> DetectorBase:
        if self.min_actors > self.max_actors:
            raise ValueError(
                f"min_actors: {self.min_actors} exceeds max_actors ({self.max_actors}); "
                "lower min_actors or raise max_actors"
            )
        if not self.min_actors <= self.actors <= self.max_actors:
            raise ValueError(
                f"actors: {self.actors} lies outside min_actors..max_actors "
                f"({self.min_actors}..{self.max_actors}); start within the autoscaler's bounds"
            )
        return self

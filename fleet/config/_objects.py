"""Configuration of what a camera makes of its detections: tracks, zones and masks.

Polygons are lists of ``[x, y]`` points, either fractions of the frame (every coordinate at most
1) or pixels of the original frame (any coordinate above 1). A fraction polygon follows the
camera whatever its resolution; a pixel polygon is clipped to the frame at run time.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from fleet.config._base import ID_PATTERN, StrictModel


def _point(value: tuple[float, float]) -> tuple[float, float]:
    x, y = value
    if x < 0 or y < 0:
        raise ValueError(f"point ({x:g}, {y:g}) has a negative coordinate; give pixels from the "
                         "top-left corner or fractions of the frame (0 to 1)")
    return value


def _two_numbers(value: object) -> object:
    if isinstance(value, (list, tuple)) and len(value) != 2:
        raise ValueError(f"a point is [x, y], two numbers; got {len(value)}")
    return value


Point = Annotated[tuple[float, float], BeforeValidator(_two_numbers), AfterValidator(_point)]


def _polygon(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """At least three distinct points enclosing some area (the shoelace formula)."""
    if len(set(points)) < 3:
        raise ValueError("a polygon needs at least 3 distinct points")
    twice_area = sum(x0 * y1 - x1 * y0
                     for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True))
    if twice_area == 0:
        raise ValueError("the points are on one line: the polygon encloses no area")
    return points


Polygon = Annotated[list[Point], Field(min_length=3, max_length=256), AfterValidator(_polygon)]
Anchor = Literal["bottom_center", "center"]


class ZoneConfig(StrictModel):
    """A named region of the frame: objects entering, leaving and loitering in it are events."""

    name: str = Field(pattern=ID_PATTERN, description="Zone name, unique in the camera.")
    polygon: Polygon = Field(
        description="[[x, y], ...]: fractions of the frame (every coordinate <= 1) or pixels."
    )
    objects: list[str] | None = Field(
        default=None, description="Labels the zone cares about (none: every label)."
    )
    loitering_s: float | None = Field(
        default=None, gt=0, le=86400,
        description="An object in the zone this long gets a loiter event (none: no loitering).",
    )
    anchor: Anchor = Field(
        default="bottom_center",
        description="The point of a box that must be inside: bottom_center (where a person "
        "stands) or center.",
    )


class MaskConfig(StrictModel):
    """A region whose detections are ignored before tracking (a poster, a screen, a road)."""

    polygon: Polygon = Field(description="[[x, y], ...]: fractions of the frame or pixels.")
    anchor: Anchor = Field(
        default="bottom_center", description="A box whose anchor point is inside is ignored."
    )


class TrackingConfig(StrictModel):
    """Per-camera tracking: detections become objects with a lifecycle (start, update,
    stationary, end)."""

    enabled: bool = Field(
        default=True, description="Track objects and write object events (start/update/end)."
    )
    # The defaults are camfleet bench mot's sweep on PETS09-S2L1 with NanoDet (the best mean of
    # MOTA and IDF1, every frame and 4 fps; docs/benchmarks.md).
    min_score: float = Field(
        default=0.5, ge=0, le=1, description="Detections scoring less are not tracked at all. "
        "Those between this and threshold only continue tracks (ByteTrack's second "
        "association); they never start one.",
    )
    threshold: float = Field(
        default=0.7, ge=0, le=1,
        description="A track becomes an object (its start event) once the median of its "
        "recent scores reaches this: one lucky detection is not an object.",
    )
    score_window: int = Field(
        default=5, ge=1, le=100, description="Recent scores the median is taken over."
    )
    min_frames: int = Field(
        default=2, ge=1, le=100,
        description="Frames a new track must be matched in before it can start.",
    )
    max_disappeared_s: float = Field(
        default=3.0, gt=0, le=3600,
        description="A track unseen this long ends (its end event).",
    )
    update_interval_s: float = Field(
        default=30.0, gt=0, le=86400,
        description="Longest time between two update events of a live object (a better "
        "snapshot or a zone change sends one sooner); a stationary object sends none.",
    )
    stationary_s: float | None = Field(
        default=30.0, gt=0, le=86400,
        description="An object that stays put this long (stream time) sends one stationary "
        "event, then no periodic or snapshot updates until it moves (an update with "
        "stationary: false); zone events still come. Parked cars stay quiet. None: never "
        "stationary.",
    )
    stationary_tolerance: float = Field(
        default=0.1, gt=0, le=1,
        description="How far an object may move and still count as put, as a fraction of its "
        "box's diagonal, measured from where it stopped; its position is the median of its "
        "last 5 boxes, so detector jitter and a box that jumps for a frame or two are no move.",
    )
    match_iou: float = Field(
        default=0.01, gt=0, le=1,
        description="Least overlap of a box with a track's predicted box to continue it (0.01: "
        "any overlap; the assignment still prefers the best overlap).",
    )
    reorder_window: int = Field(
        default=32, ge=1, le=1024,
        description="Results held back at most while an earlier frame is still at a detector "
        "(frames are tracked in capture order); a result later than that is counted late.",
    )
    labels: list[str] | None = Field(
        default=None, description="Labels to track (none: every label the detectors give)."
    )


class ObjectSettings(StrictModel):
    """The object fields of a camera (a mixin of ``CameraSettings``)."""

    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig, description="Object tracking and object events."
    )
    zones: list[ZoneConfig] = Field(
        default_factory=list, max_length=64, description="Named regions with enter/leave events."
    )
    masks: list[MaskConfig] = Field(
        default_factory=list, max_length=64, description="Regions whose detections are ignored."
    )

    @field_validator("zones")
    @classmethod
    def _distinct_zones(cls, zones: list[ZoneConfig]) -> list[ZoneConfig]:
        names = [z.name for z in zones]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"zone {', '.join(repeated)} defined more than once")
        return zones

    @model_validator(mode="after")
    def _zones_need_tracking(self) -> ObjectSettings:
        if self.zones and not self.tracking.enabled:
            raise ValueError("zones: zones need tracking: set tracking.enabled: true or remove "
                             "the zones")
        return self

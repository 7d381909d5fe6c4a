"""The synthetic scene's known paths and the detector that finds them: ground truth for
tracking, zones and events, without a model's misses in the way."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from fleet.config._base import StrictModel

Fraction = Annotated[float, Field(ge=0, le=1)]
Channel = Annotated[int, Field(ge=0, le=255)]


class ScenePath(StrictModel):
    """One object moving in a straight line from ``start`` to ``end`` (fractions of the
    frame) between ``start_s`` and ``end_s`` on the scene's clock (frame index / fps)."""

    start: tuple[Fraction, Fraction] = Field(description="[x, y] of the box's centre at start_s.")
    end: tuple[Fraction, Fraction] = Field(description="[x, y] of the box's centre at end_s.")
    start_s: float = Field(default=0.0, ge=0, description="When the object appears.")
    end_s: float = Field(gt=0, description="When it reaches end and disappears.")
    size: tuple[Fraction, Fraction] = Field(
        default=(0.08, 0.2), description="[width, height] of the box, fractions of the frame."
    )
    colour: tuple[Channel, Channel, Channel] = Field(
        default=(0, 0, 255), description="BGR fill (a blobs detector finds this colour)."
    )

    @model_validator(mode="after")
    def _ends_after_start(self) -> ScenePath:
        if self.end_s <= self.start_s:
            raise ValueError("end_s: must be after start_s")
        return self


class BlobSettings(StrictModel):
    """What the blobs detector (``type: blobs``) finds: solid boxes of one colour, the synthetic
    scene's paths. For tests and load tests. (A mixin of its config in ``_detectors``.)"""

    type: Literal["blobs"] = Field(
        default="blobs", description="Solid-colour blobs (synthetic scenes; no model)."
    )
    label: str = Field(default="object", min_length=1, max_length=200, description="Box label.")
    colour: tuple[Channel, Channel, Channel] = Field(
        default=(0, 0, 255), description="BGR colour to find."
    )
    tolerance: int = Field(default=40, ge=0, le=255, description="Per-channel tolerance.")
    min_area_px: int = Field(
        default=16, ge=1, description="Smallest blob kept, in pixels of the detected image."
    )
    score: float = Field(default=0.9, ge=0, le=1, description="Score of every blob found.")

"""What a frame source is, what the registry knows about a kind of source, and what the
source modules share. Imports no Ray."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np
from pydantic import BaseModel


class FrameSource(Protocol):
    """What the camera reads. Optional: ``frame_size() -> (height, width) | None``, the grabbed
    frame's size when it is known before decoding."""

    description: str  # safe to log: no credentials
    native_fps: float

    @property
    def pace_fps(self) -> float:
        """The caller paces reads at this rate; 0 means the source paces itself."""

    def open(self) -> None: ...

    def grab(self) -> None: ...

    def retrieve(self, into: np.ndarray | None) -> np.ndarray: ...

    def close(self) -> None: ...


ConfigT = TypeVar("ConfigT", bound=BaseModel)


@dataclass(frozen=True)
class SourceKind(Generic[ConfigT]):
    """One entry of the registry: a kind of source, keyed by its config's ``type``.

    ``live`` is the config model's own declaration (``live: ClassVar[bool]``): the source keeps
    sending whether or not the camera reads (a stream, a device), so a camera cannot wait for
    buffers and drops frames instead.
    """

    model: type[ConfigT]  # the config model in fleet.config whose ``type`` is this key
    build: Callable[[str, ConfigT], FrameSource]  # (camera id, config) -> a source, not open

    @property
    def live(self) -> bool:
        return bool(getattr(self.model, "live", False))


def into_buffer(frame: np.ndarray, into: np.ndarray | None) -> np.ndarray:
    """``frame`` copied into the camera's reused buffer when the shapes match, else ``frame``."""
    if into is not None and into.shape == frame.shape and into.dtype == frame.dtype:
        np.copyto(into, frame)
        return into
    return frame

"""Frame sources: video files, RTSP/HTTP streams, devices, image folders and a synthetic scene.
Imports no Ray.

    file, rtsp, http, device   capture.py    OpenCV's VideoCapture (FFmpeg for streams)
    images                     images.py     a folder or glob of still images
    synthetic                  synthetic.py  moving shapes and boxes on known paths

``REGISTRY`` (registry.py) maps each config source ``type`` to a :class:`SourceKind`: its config
model, the class that reads it, and whether it is live; ``open_source`` builds from it.

A source hands out frames in two steps, so that frames the fps limit skips cost no colour
conversion or copy: ``grab()`` advances one frame, ``retrieve(into)`` decodes it into ``into``
(the camera's reused buffer) and returns the array that holds it, which is ``into`` whenever the
shape matches. Pacing (a file at its native fps) is the caller's job: see ``pace_fps``.

A frame that cannot be used is not a lost connection: ``grab`` or ``retrieve`` raise
:class:`FrameError` for it, the camera drops it (``corrupt``) and the next ``grab`` goes on from
the frame after it. Only a source that is gone raises :class:`SourceConnectionError`, and only
then is it closed and opened again. A source that can tell a grabbed frame's size without
decoding it has ``frame_size()``, so that the camera drops a frame larger than
``max_frame_pixels`` before it costs a decode.

Adding a source:

1. Its module here: a class with the :class:`FrameSource` members, built as ``(camera, config)``,
   and its ``SourceKind(model, class)`` line in ``REGISTRY`` (registry.py).
2. Its config model in fleet/config/_sources.py: a ``type`` literal, ``live: ClassVar[bool]``
   (does it keep sending whether or not the camera reads?), a place in the ``Source`` union,
   and a URL shorthand in ``source_from_string`` if it has one.
3. Docs: the README's sources line, and the schema (``camfleet schema -o config/schema.json``).
unit/test_source_registry.py fails until the config and the registry agree.
"""

from __future__ import annotations

from fleet.sources.base import FrameSource, SourceKind
from fleet.sources.capture import MAX_BAD_FRAMES_IN_A_ROW, CaptureSource
from fleet.sources.images import ImageFolderSource, image_header_size
from fleet.sources.registry import REGISTRY, SourceConfig, open_source
from fleet.sources.synthetic import SyntheticScene, path_box

__all__ = [
    "MAX_BAD_FRAMES_IN_A_ROW",
    "REGISTRY",
    "CaptureSource",
    "FrameSource",
    "ImageFolderSource",
    "SourceConfig",
    "SourceKind",
    "SyntheticScene",
    "image_header_size",
    "open_source",
    "path_box",
]

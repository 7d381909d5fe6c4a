"""Still images from a folder or a glob, and the image-header reader that tells a JPEG's or
PNG's size without decoding it. Imports no Ray."""

from __future__ import annotations

import bisect
import glob
import os
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from fleet.config import ImagesSource
from fleet.errors import EndOfStreamError, FrameError, SourceConnectionError
from fleet.sources.base import into_buffer

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class ImageFolderSource:
    """Still images from a folder or glob, in name order, at ``fps``."""

    def __init__(self, camera: str, config: ImagesSource):
        self.camera = camera
        self.config = config
        self.description = f"images {config.path}"
        self.pace_fps = config.fps
        self.native_fps = config.fps
        self.files: list[str] = []
        self.position = -1
        self.last_name = ""  # the image grabbed last: a reopened folder goes on after it

    def open(self) -> None:
        path = self.config.path
        if os.path.isdir(path):
            names = [str(p) for p in sorted(Path(path).iterdir())
                     if p.suffix.lower() in _IMAGE_SUFFIXES]
        else:
            names = sorted(glob.glob(path))
        if not names:
            raise SourceConnectionError(
                f"camera '{self.camera}': no images at {path}; expected a folder of "
                f"{'/'.join(_IMAGE_SUFFIXES)} files or a glob pattern"
            )
        # never replay: opened again (after a failure), the folder goes on after the last image
        self.files, self.position = names, bisect.bisect_right(names, self.last_name) - 1

    def grab(self) -> None:
        self.position += 1
        if self.position >= len(self.files):
            if not self.config.loop:
                raise EndOfStreamError(f"camera '{self.camera}': last image of {self.config.path}")
            self.position = 0
        self.last_name = self.files[self.position]

    def frame_size(self) -> tuple[int, int] | None:
        """(height, width) from a JPEG's or PNG's header, without decoding; None otherwise."""
        return image_header_size(self.files[self.position])

    def retrieve(self, into: np.ndarray | None) -> np.ndarray:
        name = self.files[self.position]
        frame = cv2.imread(name, cv2.IMREAD_COLOR)
        if frame is None:
            raise FrameError(f"camera '{self.camera}': cannot decode image {name}; skipped it, "
                             "the folder goes on with the next")
        return into_buffer(frame, into)

    def close(self) -> None:
        self.files = []


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers: baseline, progressive, lossless, arithmetic (not DHT C4, JPG C8,
# DAC CC)
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_header_size(path: str) -> tuple[int, int] | None:
    """(height, width) of a JPEG or PNG file read from its header (a few hundred bytes, or the
    segments before the frame header of a JPEG), or None when the file is neither or its header
    is damaged (decoding it will say)."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
            if head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR":
                return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
            if head[:2] != b"\xff\xd8":
                return None
            f.seek(2)
            return _jpeg_sof_size(f)
    except OSError:
        return None


def _jpeg_sof_size(f: BinaryIO) -> tuple[int, int] | None:
    """Walk a JPEG's marker segments, from after SOI, to its start-of-frame header."""
    while True:
        byte = f.read(1)
        if byte != b"\xff":
            return None  # not at a marker: a damaged file
        while byte == b"\xff":  # a marker may be preceded by fill bytes
            byte = f.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker == 0xD9 or marker == 0xDA:  # end of image, start of scan: no frame header
            return None
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            continue
        length = f.read(2)
        if len(length) < 2:
            return None
        if marker in _JPEG_SOF:
            header = f.read(5)  # precision, height, width
            if len(header) < 5:
                return None
            return int.from_bytes(header[1:3], "big"), int.from_bytes(header[3:5], "big")
        f.seek(int.from_bytes(length, "big") - 2, os.SEEK_CUR)

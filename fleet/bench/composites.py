"""Composite frames with exact ground truth, for ``camfleet bench accuracy``.

Real faces, cut from photographs that installed packages ship, are pasted at known places and
sizes into real surveillance frames (``vtest.avi`` from Debian's ``opencv-doc``, a shopping
arcade seen from above), then the frame gets one of the degradations surveillance footage has.
Nothing is downloaded: the photographs are read where the packages put them, and a missing one
is skipped.

Why composites and not a labelled data set: the box of every face is known to the pixel, the
face height is what we choose (so recall is measured per size, down to the 20-40 px faces a
1080p camera sees at a distance), and the same frames are rebuilt from a seed on any machine.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fleet.errors import BenchError

OPENCV_DOC = Path("/usr/share/doc/opencv-doc")
BACKGROUND_VIDEO = OPENCV_DOC / "examples/data/vtest.avi"
FRAME_SIZE = (1920, 1080)  # width, height by default: a "40 px face" is 40 px of a 1080p frame
VARIANTS = ("clean", "tilt", "low_light", "blur", "jpeg")
SIZES = (20, 30, 40, 60, 90, 140, 200)  # face heights in frame pixels
MARGIN = 0.5  # context cut around the face box (hair, neck, the photo's background), per side
SOLID = 0.15  # of the margin's inner part, kept at full opacity; the rest fades out
TILT_DEG = 15.0
JPEG_QUALITY = 20
BLUR_SIGMA = 2.0  # frame px (any size): a slightly soft lens, or motion at a long exposure
PLATE_STEP = 8  # every 8th frame of the clip goes into the empty-scene median
PEOPLE_DIFF = 35  # a pixel this far (0-255, any channel) from the empty scene is a pedestrian


@dataclass(frozen=True)
class FaceSource:
    """A photograph with one face: where it is, and the face box, checked by hand.

    ``box`` is x, y, w, h in the source's pixels, from the eyebrows to the chin and from cheek
    to cheek (the box a face detector is asked for). Each was drawn on the image and looked at.
    ``columns`` keeps only those columns of the source (one panel of a three-panel figure).
    """

    name: str
    path: Path
    box: tuple[int, int, int, int]
    columns: tuple[int, int] | None = None


@dataclass(frozen=True)
class Face:
    """A face ready to paste: its pixels (source cropped to ``columns``) and its box."""

    name: str
    image: np.ndarray
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Truth:
    """Where a pasted face is in the composite: x, y, w, h in frame pixels."""

    x: int
    y: int
    w: int
    h: int
    size: int  # the face height asked for: the size bucket it counts in
    face: str


@dataclass
class Composite:
    """One frame to detect in, every face pasted into it, and where the clip's own pedestrians
    are (``people``: boxes mostly on them are ignored; see :class:`Background`)."""

    frame: np.ndarray
    truths: list[Truth]
    variant: str
    index: int
    people: np.ndarray | None = None


def _matplotlib_sample(name: str) -> Path | None:
    try:
        import matplotlib.cbook
    except ImportError:
        return None
    return Path(matplotlib.cbook.get_sample_data(name, asfileobj=False))


def face_sources() -> list[FaceSource]:
    """The face photographs this machine may have (checked for existence in :func:`faces`)."""
    html = OPENCV_DOC / "opencv4/html"
    found: list[FaceSource] = []
    hopper = _matplotlib_sample("grace_hopper.jpg")
    if hopper is not None:
        # matplotlib's sample (a US Navy portrait, public domain), 512x600: brows 142 to chin 344.
        found.append(FaceSource("hopper", hopper, (165, 142, 202, 202)))
    # opencv-doc's face-landmark tutorial photographs, read in place, never copied:
    # 584x824, a man with a goatee outdoors: brows 272 to the goatee's tip 594.
    found.append(FaceSource("goatee", html / "230501201_1.jpg", (176, 272, 320, 322)))
    # 434x434, a smiling man in a white T-shirt, head turned slightly: brows 119 to chin 289.
    found.append(FaceSource("smile", html / "227943776_1.jpg", (137, 119, 168, 170)))
    # 1162x580, three panels of one face with glasses; the left panel (no drawings on it).
    found.append(FaceSource("glasses", html / "example.jpg", (30, 222, 325, 326), (0, 375)))
    return found


def faces(sources: Sequence[FaceSource] | None = None) -> list[Face]:
    """The faces whose photographs exist here, loaded; raises if none does."""
    loaded = []
    for source in face_sources() if sources is None else sources:
        image = cv2.imread(str(source.path)) if source.path.is_file() else None
        if image is None:
            continue
        if source.columns:
            image = np.ascontiguousarray(image[:, source.columns[0]:source.columns[1]])
        loaded.append(Face(source.name, image, source.box))
    if not loaded:
        raise FileNotFoundError("no face photograph found: install matplotlib (camfleet[bench]) "
                                "or Debian's opencv-doc")
    return loaded


@dataclass(frozen=True)
class Background:
    """A frame of the clip at the composites' size, and where its own pedestrians are
    (``people``, a boolean mask): their faces are real but carry no ground truth, so a box on
    them is neither a hit nor a false alarm (an "ignore" region, as COCO and WIDER FACE have)."""

    frame: np.ndarray
    people: np.ndarray


def background_frames(count: int, path: Path = BACKGROUND_VIDEO,
                      size: tuple[int, int] = FRAME_SIZE) -> list[Background]:
    """``count`` frames spread over the video, cut to the aspect of ``size`` (the middle rows)
    and scaled to it.

    768x576 is 4:3; the middle 768x432 scaled by 2.5 is exactly 1920x1080, so nothing is
    stretched and a face height in the composite is a face height in a 1080p camera; at
    ``size`` 768x576 the clip's frames are used as they are. The camera is fixed, so the
    per-pixel median of frames spread over the clip is the empty scene, and whatever differs
    from it in a frame is a pedestrian.
    """
    picked, sampled = _read(path, count)
    plate = np.median(np.stack(sampled), axis=0).astype(np.uint8)
    return [Background(_to_16_9(f, size, cv2.INTER_CUBIC),
                       _to_16_9(people_mask(f, plate), size, cv2.INTER_NEAREST) > 0)
            for f in picked]


def _read(path: Path, count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(``count`` frames spread over the clip, every ``PLATE_STEP``-th frame for the plate)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise FileNotFoundError(f"cannot read {path}: install Debian's opencv-doc")
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or count
    wanted = {round(i * (total - 1) / max(1, count - 1)) for i in range(count)}
    picked: list[np.ndarray] = []
    sampled: list[np.ndarray] = []
    index = 0
    try:
        while capture.grab():
            if index in wanted or index % PLATE_STEP == 0:
                ok, frame = capture.retrieve()
                if ok and index in wanted:
                    picked.append(frame)
                if ok and index % PLATE_STEP == 0:
                    sampled.append(frame)
            index += 1
    finally:
        capture.release()
    if not picked:
        raise FileNotFoundError(f"no frame read from {path}")
    return picked, sampled


def people_mask(frame: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """255 where ``frame`` differs from the empty scene (a person, grown by a few pixels so a
    head's outline is inside), else 0."""
    moved = (cv2.absdiff(frame, plate).max(axis=2) > PEOPLE_DIFF).astype(np.uint8) * 255
    moved = cv2.morphologyEx(moved, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return cv2.dilate(moved, np.ones((9, 9), np.uint8))


def _to_16_9(frame: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    h, w = frame.shape[:2]
    band = round(w * size[1] / size[0])
    top = max(0, (h - band) // 2)
    return cv2.resize(frame[top:top + band], size, interpolation=interpolation)


# ------------------------------------------------------------------------------------ pasting
def _crop(face: Face) -> tuple[np.ndarray, tuple[float, float]]:
    """The face box plus ``MARGIN`` of context each side (clipped to the photo), and where the
    box's top-left corner sits in that crop."""
    x, y, w, h = face.box
    mx, my = round(w * MARGIN), round(h * MARGIN)
    ih, iw = face.image.shape[:2]
    x0, y0 = max(0, x - mx), max(0, y - my)
    x1, y1 = min(iw, x + w + mx), min(ih, y + h + my)
    return face.image[y0:y1, x0:x1], (x - x0, y - y0)


def _alpha(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """Opacity of the pasted crop: 1 over the face box and the inner part of the margin, then
    a linear fade to 0 at the crop's edge, so no hard seam is left for a detector to key on."""
    h, w = shape
    bx, by, bw, bh = box

    def ramp(n: int, lo: int, hi: int, solid: int) -> np.ndarray:
        pos = np.arange(n, dtype=np.float32) + 0.5
        inner_lo, inner_hi = lo - solid, hi + solid
        fall_lo = max(inner_lo, 1.0)
        fall_hi = max(n - inner_hi, 1.0)
        up = np.clip(pos / fall_lo, 0, 1)
        down = np.clip((n - pos) / fall_hi, 0, 1)
        return np.minimum(up, down)

    ax = ramp(w, bx, bx + bw, round(bw * MARGIN * SOLID))
    ay = ramp(h, by, by + bh, round(bh * MARGIN * SOLID))
    alpha = np.outer(ay, ax)
    alpha[by:by + bh, bx:bx + bw] = 1.0
    return alpha


def scaled_face(face: Face, height: int, angle: float = 0.0
                ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """(pixels, opacity, face box) of ``face`` resized so its box is ``height`` px high, and
    turned by ``angle`` degrees about the box's centre (the box keeps its place and size)."""
    crop, (ox, oy) = _crop(face)
    scale = height / face.box[3]
    ch, cw = crop.shape[:2]
    size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
    pixels = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else
                        cv2.INTER_LINEAR)
    box = (round(ox * scale), round(oy * scale), max(1, round(face.box[2] * scale)), height)
    alpha = _alpha(pixels.shape[:2], box)
    return _padded(pixels, alpha, box, angle)


def _padded(pixels: np.ndarray, alpha: np.ndarray, box: tuple[int, int, int, int],
            angle: float) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """On a canvas with a transparent border, turned about the face box's centre if ``angle``.

    The border lets a turned crop keep its corners (a cut corner leaves a hard edge), and every
    variant gets the same one, so a face lands at the same place in every variant. The box
    keeps its size and moves by the border.
    """
    h, w = pixels.shape[:2]
    pad = math.ceil(max(w, h) * 0.2)
    if not angle:
        pixels = cv2.copyMakeBorder(pixels, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        alpha = cv2.copyMakeBorder(alpha, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        return pixels, alpha, (box[0] + pad, box[1] + pad, box[2], box[3])
    centre = (box[0] + box[2] / 2, box[1] + box[3] / 2)
    turn = cv2.getRotationMatrix2D(centre, angle, 1.0)
    turn[:, 2] += pad
    size = (w + 2 * pad, h + 2 * pad)
    pixels = cv2.warpAffine(pixels, turn, size, flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(alpha, turn, size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return pixels, alpha, (box[0] + pad, box[1] + pad, box[2], box[3])


def paste(frame: np.ndarray, pixels: np.ndarray, alpha: np.ndarray, at: tuple[int, int]) -> None:
    """Blend ``pixels`` into ``frame`` (in place) with top-left corner at ``at``."""
    x, y = at
    h, w = pixels.shape[:2]
    region = frame[y:y + h, x:x + w]
    a = alpha[:, :, None]
    blended = pixels.astype(np.float32) * a + region.astype(np.float32) * (1 - a)
    region[...] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------- layout
def _place(sizes: Sequence[tuple[int, int]], frame_size: tuple[int, int],
           rng: np.random.Generator, tries: int = 400,
           inner: Sequence[tuple[int, int, int, int]] | None = None,
           layouts: int = 20) -> list[tuple[int, int]]:
    """Top-left corners for rectangles (w, h) inside the frame, largest first, such that no
    two overlap; with ``inner`` (x, y, w, h in each rectangle), only those parts must not. A
    layout that leaves no room for the next rectangle is started again, ``layouts`` times."""
    for _ in range(layouts):
        corners = _layout(sizes, frame_size, rng, tries, inner)
        if corners is not None:
            return corners
    width, height = frame_size
    raise ValueError(f"no room for faces of {sorted(sizes)} (w, h) in a {width}x{height} frame")


def _layout(sizes: Sequence[tuple[int, int]], frame_size: tuple[int, int],
            rng: np.random.Generator, tries: int,
            inner: Sequence[tuple[int, int, int, int]] | None) -> list[tuple[int, int]] | None:
    width, height = frame_size
    taken: list[tuple[int, int, int, int]] = []
    corners: dict[int, tuple[int, int]] = {}
    for i in sorted(range(len(sizes)), key=lambda k: -sizes[k][0] * sizes[k][1]):
        w, h = sizes[i]
        dx, dy, iw, ih = inner[i] if inner else (0, 0, w, h)
        for _ in range(tries):
            x = int(rng.integers(0, max(1, width - w)))
            y = int(rng.integers(0, max(1, height - h)))
            if all(x + dx + iw <= a or a + c <= x + dx or y + dy + ih <= b or b + d <= y + dy
                   for a, b, c, d in taken):
                break
        else:
            return None
        taken.append((x + dx, y + dy, iw, ih))
        corners[i] = (x, y)
    return [corners[i] for i in range(len(sizes))]


def _shown(pixels: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The part of a pasted crop that shows: the face box and its margin (x, y, w, h), clipped
    to the crop; outside it the crop is its transparent border (or, turned, nearly so)."""
    x, y, w, h = box
    m = round(h * MARGIN)
    x0, y0 = max(0, x - m), max(0, y - m)
    x1, y1 = min(pixels.shape[1], x + w + m), min(pixels.shape[0], y + h + m)
    return x0, y0, x1 - x0, y1 - y0


def compose(background: Background, faces_: Sequence[Face], sizes: Sequence[int], variant: str,
            rng: np.random.Generator, index: int = 0) -> Composite:
    """One composite: a face of each size (photograph chosen at random) pasted into a copy of
    ``background`` without overlap (of the whole crops, or, where the frame has no room for
    that, of the parts that show), then ``variant`` applied to the whole frame. A pasted face
    hides the pedestrians under it, so it is taken out of ``people``."""
    frame, people = background.frame.copy(), background.people.copy()
    chosen = [faces_[int(rng.integers(len(faces_)))] for _ in sizes]
    turns = rng.choice((-TILT_DEG, TILT_DEG), len(sizes))  # drawn for every variant: same places
    angles = [float(t) if variant == "tilt" else 0.0 for t in turns]
    made = [scaled_face(f, s, a) for f, s, a in zip(chosen, sizes, angles, strict=True)]
    crops, frame_size = [(p.shape[1], p.shape[0]) for p, _, _ in made], (frame.shape[1],
                                                                        frame.shape[0])
    try:
        corners = _place(crops, frame_size, rng)
    except ValueError:  # a small frame (768x576): the crops' transparent borders may overlap
        corners = _place(crops, frame_size, rng, inner=[_shown(p, b) for p, _, b in made])
    truths = []
    for (pixels, alpha, box), (x, y), face, size in zip(made, corners, chosen, sizes,
                                                        strict=True):
        paste(frame, pixels, alpha, (x, y))
        people[y:y + alpha.shape[0], x:x + alpha.shape[1]] &= alpha < 0.5
        truths.append(Truth(x + box[0], y + box[1], box[2], box[3], size, face.name))
    return Composite(degrade(frame, variant, rng), truths, variant, index, people)


def degrade(frame: np.ndarray, variant: str, rng: np.random.Generator) -> np.ndarray:
    """The frame as a camera would deliver it: darker and noisy at night, soft, or compressed
    hard. ``clean`` and ``tilt`` (the faces were turned when pasted) leave it as it is."""
    if variant in ("clean", "tilt"):
        return frame
    if variant == "low_light":
        dark = 255.0 * 0.45 * (frame.astype(np.float32) / 255.0) ** 1.6
        dark += rng.normal(0.0, 5.0, frame.shape).astype(np.float32)  # sensor noise at high gain
        return np.clip(np.rint(dark), 0, 255).astype(np.uint8)
    if variant == "blur":
        return cv2.GaussianBlur(frame, (0, 0), BLUR_SIGMA)
    if variant == "jpeg":
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else None
        if decoded is None:
            raise BenchError("JPEG round trip failed")
        return np.asarray(decoded, np.uint8)
    raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")


def composites(frames: int, variants: Sequence[str], sizes: Sequence[int], seed: int,
               faces_: Sequence[Face] | None = None,
               backgrounds: Sequence[Background] | None = None,
               size: tuple[int, int] = FRAME_SIZE) -> Iterator[Composite]:
    """``frames`` composites per variant of ``size`` (width, height), the same ones for the
    same arguments on any machine: frame ``i`` of every variant uses the same background,
    faces and places (only the tilt and the degradation differ), so variants compare like
    with like."""
    chosen = list(faces_) if faces_ is not None else faces()
    bases = (list(backgrounds) if backgrounds is not None
             else background_frames(frames, size=size))
    for i in range(frames):
        for variant in variants:
            rng = np.random.default_rng([seed, i])
            yield compose(bases[i % len(bases)], chosen, sizes, variant, rng, i)

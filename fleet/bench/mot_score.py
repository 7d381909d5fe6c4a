"""Scoring for ``camfleet bench mot``: camfleet's tracks against MOTChallenge ground truth.

Pure functions, no Ray. Three inputs, one rule:

- :func:`read_gt` reads a MOTChallenge 2015 ``gt.txt`` (``frame, id, x, y, w, h, flag, ...``,
  1-based frames) into boxes keyed by the clip's 0-based frame index;
- :func:`read_tracks` reads camfleet's ``events.jsonl`` (the ``"type": "track"`` lines that
  ``sinks.jsonl.tracks`` writes, plus the object ``start`` events) for one camera;
- :func:`score` and :func:`detection_score` compare them, frame by frame.

Don't-care boxes (flag 0) are handled once, the same way for every metric, before anything is
computed: in each frame the predicted boxes are matched one-to-one to *all* ground-truth boxes
(Hungarian, IoU >= ``iou``); a prediction matched to a flag-0 box is removed, and so are the
flag-0 boxes. So a detection on a don't-care box is neither a hit nor a false positive, and a
missed don't-care box is not a miss.

The metrics come from ``motrics`` (MIT, a Rust implementation checked in its CI for parity
with TrackEval): HOTA, DetA, AssA (TrackEval's HOTA), MOTA, MOTP, id switches, fragmentations,
precision and recall (TrackEval's CLEAR), IDF1, IDP, IDR (TrackEval's Identity). HOTA and
Identity equal TrackEval's to the last digit on PETS09-S2L1; CLEAR can differ by a match in a
rare frame where keeping a person on their previous track costs a second match (TrackEval
keeps the track, motrics takes both matches): one box in 4,476 with heavy noise, none with
light noise. It is imported only when :func:`score` runs (``pip install 'camfleet[bench]'``).
Why this library and not TrackEval or py-motmetrics: the comment beside it in
``pyproject.toml``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Xywh = tuple[float, float, float, float]  # top-left x, y, width, height, in frame pixels
_EPS = 1e-9  # an IoU of exactly the threshold matches, whatever the float rounding


@dataclass(frozen=True)
class GtBox:
    """One ground-truth box: who, where, and whether it is scored (flag 1) or don't-care."""

    id: int
    box: Xywh
    scored: bool


@dataclass(frozen=True)
class TrackBox:
    """One tracked box as camfleet wrote it; ``started``: the track had become an object."""

    track: str
    box: Xywh
    started: bool


@dataclass(frozen=True)
class Tracks:
    """One camera's track boxes by 0-based source frame, and the frames its objects started on."""

    frames: Mapping[int, tuple[TrackBox, ...]]
    start_frames: tuple[int, ...]
    skipped_lines: int = 0  # lines that were not JSON (a run stopped mid-write leaves one)

    @property
    def starts(self) -> int:
        return len(self.start_frames)


Gt = Mapping[int, Sequence[GtBox]]


def read_gt(path: str | Path, *, first_frame: int = 1) -> dict[int, tuple[GtBox, ...]]:
    """Ground-truth boxes by clip frame from a MOTChallenge ``gt.txt``.

    ``first_frame`` is the gt frame number of the clip's frame 0 (MOTChallenge counts from 1),
    so gt frame ``k + first_frame`` is clip frame ``k``. Columns past the flag (MOT15's world
    coordinates, MOT16's class and visibility) are ignored; a line without a flag is scored.
    """
    frames: dict[int, list[GtBox]] = {}
    text = Path(path).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cols = line.split(",") if "," in line else line.split()
        try:
            if len(cols) < 6:
                raise ValueError(f"{len(cols)} columns")
            frame = int(float(cols[0])) - first_frame
            flag = float(cols[6]) if len(cols) > 6 else 1.0
            x, y, w, h = (float(c) for c in cols[2:6])
            box = GtBox(int(float(cols[1])), (x, y, w, h), flag != 0)
        except ValueError as err:
            raise ValueError(f"{path}:{number}: {line[:60]!r} is not a MOTChallenge box "
                             f"({err}); expected 'frame, id, x, y, w, h, flag, ...'") from None
        if frame < 0:
            raise ValueError(f"{path}:{number}: frame {frame + first_frame} comes before "
                             f"first_frame={first_frame}; pass the file's first frame number")
        frames.setdefault(frame, []).append(box)
    return {frame: tuple(boxes) for frame, boxes in sorted(frames.items())}


def read_tracks(events_path: str | Path, camera: str, *, started_only: bool = True) -> Tracks:
    """One camera's track boxes and object starts from camfleet's ``events.jsonl``.

    Keeps the ``"type": "track"`` lines of ``camera`` (by their 0-based source ``frame``) and
    the frame of each of its object ``start`` events; every other line is ignored. With
    ``started_only`` (the default) a track's boxes from before it became an object are left
    out: the operator never saw them, as a MOTChallenge tracker never reports unconfirmed tracks.
    """
    frames: dict[int, dict[str, TrackBox]] = {}
    starts: list[int] = []
    skipped = 0
    with open(events_path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                skipped += 1
                continue
            if not isinstance(record, dict) or record.get("camera") != camera:
                continue
            kind = record.get("type")
            if kind == "object" and record.get("event") == "start":
                starts.append(int(record.get("frame", -1)))
            elif kind == "track" and (record.get("started", True) or not started_only):
                _add_track(frames, record, f"{events_path}:{number}")
    return Tracks({frame: tuple(by_id.values()) for frame, by_id in sorted(frames.items())},
                  tuple(starts), skipped)


def _add_track(frames: dict[int, dict[str, TrackBox]], record: dict[str, Any],
               where: str) -> None:
    try:
        x, y, w, h = (float(v) for v in record["box"])
        box = TrackBox(str(record["track"]), (x, y, w, h), bool(record.get("started", True)))
        frame = int(record["frame"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: a track line needs frame, track and box [x, y, w, h] "
                         f"({err!r}); is this file from another camfleet version?") from None
    in_frame = frames.setdefault(frame, {})
    if box.track in in_frame:  # one box a track a frame: a second one is a writer's bug
        raise ValueError(f"{where}: track {box.track} appears twice in frame {frame}; "
                         "expected one line per track per analysed frame")
    in_frame[box.track] = box


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every xywh box in ``a`` (rows) with every one in ``b`` (columns)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    bottom = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = (a[:, None, 2] * a[:, None, 3]) + (b[None, :, 2] * b[None, :, 3]) - inter
    ratio: np.ndarray = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return ratio


def match(gt_boxes: np.ndarray, boxes: np.ndarray, iou: float) -> list[tuple[int, int]]:
    """One-to-one ``(gt index, box index)`` pairs with IoU >= ``iou``, the total IoU highest
    (Hungarian, as TrackEval matches)."""
    from scipy.optimize import linear_sum_assignment

    sim = iou_matrix(gt_boxes, boxes)
    if sim.size == 0:
        return []
    sim[sim < iou - _EPS] = 0.0
    rows, cols = linear_sum_assignment(sim, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if sim[r, c] > 0.0]


def _xywh(boxes: Iterable[Xywh]) -> np.ndarray:
    return np.asarray(list(boxes), dtype=np.float64).reshape(-1, 4)


def _drop_dont_care(gt: Sequence[GtBox], boxes: np.ndarray,
                    iou: float) -> tuple[list[GtBox], list[int]]:
    """The scored gt boxes, and the indices of the predicted boxes not on a don't-care box."""
    if all(g.scored for g in gt):
        return list(gt), list(range(len(boxes)))
    on_dont_care = {c for r, c in match(_xywh(g.box for g in gt), boxes, iou)
                    if not gt[r].scored}
    return [g for g in gt if g.scored], [i for i in range(len(boxes)) if i not in on_dont_care]


def _frames(gt: Gt, frames: Iterable[int] | None) -> list[int]:
    if frames is None:
        return list(range(max(gt, default=-1) + 1))
    chosen = sorted(set(int(f) for f in frames))
    if chosen and chosen[0] < 0:
        raise ValueError(f"frames must be 0-based clip frame indices, got {chosen[0]}")
    return chosen


def detection_score(gt: Gt, boxes_per_frame: Mapping[int, Sequence[Xywh]], iou: float = 0.5,
                    frames: Iterable[int] | None = None) -> dict[str, Any]:
    """Precision and recall of raw detector boxes (no ids), to score a detector alone.

    Frames, don't-care boxes and matching as in :func:`score`: one-to-one per frame (Hungarian,
    IoU >= ``iou``). Precision is ``tp / max(1, tp + fp)`` and recall ``tp / max(1, tp + fn)``,
    as TrackEval's CLEAR has them, so the two functions agree on the same boxes.
    """
    tp = fp = fn = dont_care = gt_boxes = 0
    scored = _frames(gt, frames)
    for frame in scored:
        found = _xywh(boxes_per_frame.get(frame, ()))
        kept, keep = _drop_dont_care(gt.get(frame, ()), found, iou)
        hits = len(match(_xywh(g.box for g in kept), found[keep], iou))
        tp, fp, fn = tp + hits, fp + len(keep) - hits, fn + len(kept) - hits
        dont_care += len(found) - len(keep)
        gt_boxes += len(kept)
    return {"precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
            "true_positives": tp, "false_positives": fp, "misses": fn, "gt_boxes": gt_boxes,
            "dont_care_matches": dont_care, "frames": len(scored), "iou": iou}


def score(gt: Gt, tracks: Tracks, iou: float = 0.5,
          frames: Iterable[int] | None = None) -> dict[str, Any]:
    """HOTA, CLEAR and Identity metrics of ``tracks`` against ``gt``, with object counts.

    ``frames`` (0-based clip indices) restricts scoring to those frames, e.g. the analysed ones
    when the fleet analyses every other frame: frames not listed are excluded from scoring
    entirely (their gt boxes are not misses, their track boxes not false positives), and the
    listed ones are scored as consecutive, so a track that spans a skipped frame is not a
    fragment. ``None`` scores every frame of the ground truth's span, ``0`` to its last frame,
    frames without gt boxes included; track boxes past it are ignored.

    MOTP is TrackEval's: the mean IoU of matched boxes (1 is best). HOTA averages over
    TrackEval's IoU thresholds 0.05 to 0.95; ``iou`` is the threshold of everything else.
    ``objects_started`` counts the camera's object starts from the first to the last scored
    frame, and ``objects_per_gt_person`` divides it by ``gt_ids``, the people with a scored box
    in the scored frames (1.0: one object a person). With no gt box or no track box, the
    ratios are 0.
    """
    try:
        import motrics
    except ImportError as err:
        raise ImportError("fleet.bench.mot_score.score needs motrics: "
                          "pip install 'camfleet[bench]'") from err
    scored = _frames(gt, frames)
    gt_ids: list[list[int]] = []
    gt_xywh: list[np.ndarray] = []
    track_ids: list[list[int]] = []
    track_xywh: list[np.ndarray] = []
    numbers: dict[str, int] = {}  # motrics takes integer ids
    dont_care = 0
    for frame in scored:
        in_frame = tracks.frames.get(frame, ())
        found = _xywh(t.box for t in in_frame)
        kept, keep = _drop_dont_care(gt.get(frame, ()), found, iou)
        dont_care += len(found) - len(keep)
        gt_ids.append([g.id for g in kept])
        gt_xywh.append(_xywh(g.box for g in kept))
        track_ids.append([numbers.setdefault(in_frame[i].track, len(numbers)) for i in keep])
        track_xywh.append(found[keep])
    result = motrics.evaluate(motrics.Frames(gt_ids, gt_xywh),
                              motrics.Frames(track_ids, track_xywh),
                              iou_threshold=iou, box_format="xywh")
    return _summary(result, scored, gt_ids, track_ids, tracks, dont_care, iou)


def _summary(result: Any, scored: list[int], gt_ids: list[list[int]],
             track_ids: list[list[int]], tracks: Tracks, dont_care: int,
             iou: float) -> dict[str, Any]:
    clear, identity, hota = result.clear, result.identity, result.hota
    people = len({i for ids in gt_ids for i in ids})
    span = (scored[0], scored[-1]) if scored else (0, -1)
    starts = sum(1 for f in tracks.start_frames if span[0] <= f <= span[1])
    return {
        "HOTA": hota.hota, "DetA": hota.deta, "AssA": hota.assa, "LocA": hota.loca,
        "MOTA": clear.mota, "MOTP": clear.motp,
        "IDF1": identity.idf1, "IDP": identity.idp, "IDR": identity.idr,
        "id_switches": clear.num_switches, "fragmentations": clear.frag,
        "precision": clear.clr_pr, "recall": clear.clr_re,
        "true_positives": clear.num_matches, "false_positives": clear.num_false_positives,
        "misses": clear.num_misses,
        "gt_boxes": sum(map(len, gt_ids)), "track_boxes": sum(map(len, track_ids)),
        "dont_care_matches": dont_care,
        "gt_ids": people, "track_ids": len({i for ids in track_ids for i in ids}),
        "objects_started": starts, "objects_per_gt_person": starts / people if people else 0.0,
        "frames": len(scored), "iou": iou,
    }

"""``camfleet bench accuracy``: recall and precision by face size, for each face detector kind.

The frames are composites (:mod:`fleet.bench.composites`): real faces pasted at known places and
heights (20 to 200 px) into real 1080p surveillance frames (``--frame-size``: another size, such
as the clip's own 768x576), clean or degraded (tilted faces, low light, blur, JPEG at quality
20). Every detector kind analyses the same frames (same seed) in
this process, through :func:`fleet.detectors.build_detector` as a detector actor builds it, on a
read-only frame as the object store hands it over. A detection is a true positive when its IoU
with a face's box is at least ``MATCH_IOU`` (one detection a face, best score first); the rest
are false positives, and faces left unmatched are misses.

Tiling (:mod:`fleet.detectors.regions`) is measured the same way, against its cost: model calls
a frame and time a frame. Starts no Ray (``NEEDS_RAY``): it is detector work on one core.
"""

from __future__ import annotations

import argparse
import fnmatch
import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fleet.bench import composites, plotting
from fleet.bench.composites import Composite, Truth
from fleet.frames import Detection, FrameMeta

NEEDS_RAY = False  # fleet.bench.main skips init_ray for this mode
MATCH_IOU = 0.4  # Haar's boxes run ~15% larger than the CNNs', up to the forehead
ON_PEOPLE = 0.5  # an unmatched box with this much of it on the clip's pedestrians is ignored
FIXTURE = Path(__file__).resolve().parents[2] / "tests/fixtures/models/nudenet-320n.onnx"
FIXTURE_CLASSES = ["FACE_FEMALE", "FACE_MALE"]


@dataclass(frozen=True)
class Kind:
    """One detector setting under test: a name for the tables and how to build it."""

    name: str
    config: dict[str, Any]  # a detector's config as a fleet file would give it
    detect_width: int | None
    note: str = ""

    @property
    def tiled(self) -> bool:
        return bool(self.config.get("tiles", {}).get("enabled"))


def kinds(detect_width: int, grids: Sequence[str], native_haar: bool,
          fixture: Path = FIXTURE, frame_width: int = composites.FRAME_SIZE[0]) -> list[Kind]:
    """Every kind camfleet can run for faces, plain and then tiled (one set a grid); the YOLO
    test fixture only when its file is here (AGPL-3.0: a test fixture, never shipped)."""
    plain = [
        Kind("blazeface-front", {"type": "blazeface", "model": "front"}, detect_width),
        Kind("blazeface-back", {"type": "blazeface", "model": "back"}, detect_width),
        Kind("haar", {"type": "haar"}, detect_width, "legacy"),
    ]
    if fixture.is_file():
        yolo = {"type": "onnx", "model": {"path": str(fixture)}, "classes": FIXTURE_CLASSES}
        plain.append(Kind("yolov8n-nudenet", yolo, detect_width, "AGPL test fixture"))
    tiled = [Kind(f"{k.name}+tiles:{grid}", {**k.config, "tiles": {"enabled": True,
                                                                   "grid": parse_grid(grid)}},
                  detect_width, k.note) for grid in grids for k in plain]
    native = [Kind("haar@native", {"type": "haar"}, None, f"legacy, full {frame_width} px")]
    return plain + (native if native_haar else []) + tiled


def parse_grid(text: str) -> Any:
    """``auto`` or ``COLSxROWS`` (``4x2``) as the config takes it."""
    if text == "auto":
        return "auto"
    cols, _, rows = text.partition("x")
    return [int(cols), int(rows)]


def build(kind: Kind) -> Any:
    """The detector a detector actor would run for this config, tiled when it asks to be.

    Tiling is wrapped here, as ``build_detector`` is to wrap it (see the report: that one line
    lives in fleet/detectors/__init__.py).
    """
    from pydantic import TypeAdapter

    from fleet.config import DetectorConfig
    from fleet.detectors import build_detector

    config = TypeAdapter(DetectorConfig).validate_python(kind.config)
    return build_detector(config, kind.name)  # tiles: build_detector wraps it as in a fleet


# ----------------------------------------------------------------------------------- matching
def iou(a: Truth | Detection, b: Truth | Detection) -> float:
    """Intersection over union of two boxes."""
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inner = max(0, w) * max(0, h)
    union = a.w * a.h + b.w * b.h - inner
    return inner / union if union > 0 else 0.0


@dataclass
class Matched:
    """What one frame's detections were: hits (face, detection), false alarms, misses, and
    boxes on the clip's own pedestrians (real faces without ground truth: not counted)."""

    hits: list[tuple[Truth, Detection]] = field(default_factory=list)
    false: list[Detection] = field(default_factory=list)
    missed: list[Truth] = field(default_factory=list)
    ignored: list[Detection] = field(default_factory=list)


def match(truths: Sequence[Truth], found: Sequence[Detection], min_iou: float = MATCH_IOU,
          people: np.ndarray | None = None) -> Matched:
    """Each detection, best score first, takes the free face it overlaps most, if by at least
    ``min_iou``; a second box on a taken face is a false positive (as in COCO and VOC). An
    unmatched box lying mostly on ``people`` is ignored rather than called false."""
    out = Matched()
    free = list(truths)
    for d in sorted(found, key=lambda d: -d.score):
        best = max(free, key=lambda t: iou(t, d), default=None)
        if best is not None and iou(best, d) >= min_iou:
            out.hits.append((best, d))
            free.remove(best)
        elif people is not None and on_mask(d, people) >= ON_PEOPLE:
            out.ignored.append(d)
        else:
            out.false.append(d)
    out.missed = free
    return out


def on_mask(d: Detection, mask: np.ndarray) -> float:
    """The fraction of box ``d`` that lies on ``mask`` (a boolean image)."""
    h, w = mask.shape[:2]
    x0, y0 = max(0, d.x), max(0, d.y)
    x1, y1 = min(w, d.x + d.w), min(h, d.y + d.h)
    if d.w <= 0 or d.h <= 0 or x1 <= x0 or y1 <= y0:
        return 0.0
    return float(np.count_nonzero(mask[y0:y1, x0:x1])) / (d.w * d.h)


def bucket(height: float, sizes: Sequence[int]) -> int:
    """The size a box counts under: the nearest of ``sizes`` on a log scale (a false positive
    has no face, so it is binned by its own height)."""
    return min(sizes, key=lambda s: abs(math.log(max(height, 1) / s)))


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    ignored: int = 0

    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None


class Tally:
    """Counts by (variant, size) for one kind, and its time per frame in each run."""

    def __init__(self, sizes: Sequence[int], runs: int):
        self.sizes = list(sizes)
        self.counts: dict[tuple[str, int], Counts] = {}
        self.seconds = [0.0] * runs  # wall time, per run
        self.cpu = [0.0] * runs  # CPU time of this process, per run
        self.frames = 0
        self.calls = 1.0  # model calls a frame
        self.grid = "-"  # the tile grid used at the composites' size

    def cell(self, variant: str, size: int) -> Counts:
        return self.counts.setdefault((variant, size), Counts())

    def add(self, variant: str, result: Matched) -> None:
        for truth, _ in result.hits:
            self.cell(variant, truth.size).tp += 1
        for truth in result.missed:
            self.cell(variant, truth.size).fn += 1
        for d in result.false:
            self.cell(variant, bucket(d.h, self.sizes)).fp += 1
        for d in result.ignored:
            self.cell(variant, bucket(d.h, self.sizes)).ignored += 1

    def total(self, variant: str | None = None, size: int | None = None) -> Counts:
        out = Counts()
        for (v, s), c in self.counts.items():
            if variant in (None, v) and size in (None, s):
                out.tp, out.fp, out.fn = out.tp + c.tp, out.fp + c.fp, out.fn + c.fn
                out.ignored += c.ignored
        return out


# ------------------------------------------------------------------------------------ running
def read_only(frame: np.ndarray) -> np.ndarray:
    """The frame as a detector actor gets it: a read-only array."""
    frame.flags.writeable = False
    return frame


def _detect(detector: Any, composite: Composite, detect_width: int | None
            ) -> tuple[list[Detection], float, float]:
    """(boxes, wall seconds, CPU seconds): CPU time is what a frame costs a core, and stays
    put when other work shares the machine, which wall time does not."""
    h, w = composite.frame.shape[:2]
    meta = FrameMeta("accuracy", composite.index, 0.0, w, h, detect_width)
    start, cpu = time.perf_counter(), time.process_time()
    found = detector.detect(composite.frame, meta)
    return found, time.perf_counter() - start, time.process_time() - cpu


def measure(chosen: Sequence[Kind], built: dict[str, Any], frames: Iterable[Composite],
            sizes: Sequence[int], runs: int, progress: Callable[[str], None],
            frame_size: tuple[int, int] = composites.FRAME_SIZE
            ) -> tuple[dict[str, Tally], bool]:
    """Every kind on every composite, ``runs`` times (timing only: the boxes of every run must
    equal the first run's). Returns the tallies and whether every run agreed."""
    tallies = {k.name: Tally(sizes, runs) for k in chosen}
    warm = True
    same = True
    for n, composite in enumerate(frames):
        read_only(composite.frame)
        if warm:  # first call pays for lazy set-up (arenas, buffers): not a frame's cost
            for k in chosen:
                _detect(built[k.name], composite, k.detect_width)
            warm = False
        for k in chosen:
            tally, first = tallies[k.name], None
            for r in range(runs):
                found, seconds, cpu = _detect(built[k.name], composite, k.detect_width)
                tally.seconds[r] += seconds
                tally.cpu[r] += cpu
                first = found if first is None else first
                same = same and found == first
            tally.add(composite.variant, match(composite.truths, first or [],
                                              people=composite.people))
            tally.frames += 1
        if n % 10 == 0:
            progress(f"frame {n + 1} ({composite.variant}, background {composite.index})")
    for k in chosen:
        tallies[k.name].calls = calls_per_frame(built[k.name])
        tallies[k.name].grid = grid_used(built[k.name], k.detect_width, frame_size)
    return tallies, same


def grid_used(detector: Any, detect_width: int | None,
              size: tuple[int, int] = composites.FRAME_SIZE) -> str:
    """The tile grid a tiled detector cuts a frame of ``size`` into (``4x2``), or ``-``."""
    layout = getattr(detector, "tiles", None)
    if layout is None:
        return "-"
    meta = FrameMeta("accuracy", 0, 0.0, size[0], size[1], detect_width)
    tiles = [t for t in layout(size[0], size[1], meta) if (t.w, t.h) != size]
    return f"{len({t.x for t in tiles})}x{len({t.y for t in tiles})}" if tiles else "1x1"


def calls_per_frame(detector: Any) -> float:
    """Model inputs a frame cost: the tiler's count of regions (tiles and the whole frame) per
    frame it analysed, or 1 for a detector that is not tiled."""
    frames = getattr(detector, "frames", 0)
    return round(detector.regions / frames, 2) if frames else 1.0


def summarise(chosen: Sequence[Kind], tallies: dict[str, Tally], variants: Sequence[str],
              sizes: Sequence[int]) -> list[dict[str, Any]]:
    """Per kind: recall and precision by variant and size, counts, time and calls a frame."""
    out = []
    for k in chosen:
        t = tallies[k.name]
        per_frame_ms = [1000 * s / t.frames for s in t.seconds] if t.frames else []
        cpu_ms = [1000 * s / t.frames for s in t.cpu] if t.frames else []
        table: dict[str, dict[str, Any]] = {}
        for v in variants:
            table[v] = {str(s): _cell(t.total(v, s)) for s in sizes}
            table[v]["all"] = _cell(t.total(v))
        out.append({"name": k.name, "note": k.note, "detect_width": k.detect_width,
                    "config": k.config, "frames": t.frames,
                    "calls_per_frame": t.calls, "grid": t.grid,
                    "ms_per_frame": round(statistics.median(per_frame_ms), 2)
                    if per_frame_ms else None,
                    "ms_per_frame_runs": [round(v, 2) for v in per_frame_ms],
                    "cpu_ms_per_frame": round(statistics.median(cpu_ms), 2) if cpu_ms else None,
                    "cpu_ms_per_frame_runs": [round(v, 2) for v in cpu_ms],
                    "by_variant": table, "all": _cell(t.total())})
    return out


def _cell(c: Counts) -> dict[str, Any]:
    r, p = c.recall(), c.precision()
    return {"tp": c.tp, "fp": c.fp, "fn": c.fn, "on_people": c.ignored,
            "recall": None if r is None else round(r, 3),
            "precision": None if p is None else round(p, 3)}


# ----------------------------------------------------------------------------------- printing
def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def recall_table(kinds_: Sequence[dict[str, Any]], sizes: Sequence[int],
                 variants: Sequence[str], what: str = "recall") -> str:
    """Markdown: one row a kind and variant, one column a face height, plus all sizes."""
    head = ["detector", "variant", *[f"{s} px" for s in sizes], "all"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in kinds_:
        for v in variants:
            row = k["by_variant"][v]
            cells = [_num(row[str(s)][what]) for s in sizes] + [_num(row["all"][what])]
            lines.append(f"| {k['name']} | {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cost_table(kinds_: Sequence[dict[str, Any]]) -> str:
    """Markdown: per kind, detect width, model calls and time a frame (median of the runs),
    overall figures."""
    head = ["detector", "note", "detect width", "tiles", "calls/frame", "CPU ms/frame",
            "wall ms/frame", "recall", "precision", "TP", "FP", "FN", "on people"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in kinds_:
        a = k["all"]
        cells = [k["name"], k["note"] or "-", k["detect_width"] or "native", k["grid"],
                 k["calls_per_frame"], k["cpu_ms_per_frame"], k["ms_per_frame"],
                 _num(a["recall"]),
                 _num(a["precision"]), a["tp"], a["fp"], a["fn"], a["on_people"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def plot_accuracy(results: dict[str, Any], path: Path) -> bool:
    """Recall against face height: one panel a variant, one line a kind; a detector and its
    tiled form share a colour (tiled dashed)."""
    plt = plotting.pyplot()
    if plt is None:
        return False
    variants, sizes = results["variants"], results["sizes"]
    fig, axes = plt.subplots(1, len(variants) + 1, figsize=(3.3 * len(variants) + 2.6, 4.2),
                             squeeze=False, gridspec_kw={"width_ratios": [3.3] * len(variants)
                                                         + [2.6]})
    bases = list(dict.fromkeys(k["name"].split("+")[0] for k in results["kinds"]))
    for ax, v in zip(axes[0], variants, strict=False):
        for k in results["kinds"]:
            ys = [k["by_variant"][v][str(s)]["recall"] for s in sizes]
            ax.plot(sizes, [np.nan if y is None else y for y in ys],
                    "--" if "+tiles" in k["name"] else "-", marker="o", markersize=3,
                    color=f"C{bases.index(k['name'].split('+')[0]) % 10}", label=k["name"])
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_title(v)
        ax.set_xlabel(f"face height, {results['frame_size'][1]}p frame (px)")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        if ax is not axes[0][0]:
            ax.tick_params(labelleft=False)
    axes[0][0].set_ylabel(f"recall (IoU >= {results['match_iou']})")
    handles, labels = axes[0][0].get_legend_handles_labels()
    axes[0][-1].axis("off")  # the last panel holds the legend, clear of the lines
    axes[0][-1].legend(handles, labels, loc="center left", fontsize=8, frameon=False)
    plotting.save(fig, path, f"Face recall by size: {results['frames_per_variant']} composites "
                  f"a variant, detect_width {results['detect_width']}; dashed: tiled")
    return True


# -------------------------------------------------------------------------------------- mode
def run(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    """Build the composites, run every kind on them, print the tables, draw the plot."""
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # one core per detector, as a detector actor with num_cpus: 1 has
    try:
        return _run(args, progress)
    finally:
        cv2.setNumThreads(threads)


def _run(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    frame_size: tuple[int, int] = args.frame_size
    chosen = [k for k in kinds(args.detect_width, args.grids, args.native_haar,
                               frame_width=frame_size[0])
              if not args.kinds or any(fnmatch.fnmatchcase(k.name, p) for p in args.kinds)]
    if not chosen:
        raise SystemExit(f"no kind among {args.kinds}")
    built = {k.name: build(k) for k in chosen}
    sizes = args.sizes or default_sizes(frame_size)
    chosen = [k for k in chosen if not k.tiled or _cuts(built[k.name], k, frame_size)]
    progress(f"{len(chosen)} kinds, {args.frames} frames x {len(args.variants)} variants of "
             f"{frame_size[0]}x{frame_size[1]}, faces of {sizes} px, {args.runs} run(s)")
    frames = composites.composites(args.frames, args.variants, sizes, args.seed,
                                   size=frame_size)
    start = time.perf_counter()
    tallies, same = measure(chosen, built, frames, sizes, args.runs, progress, frame_size)
    results = {"match_iou": MATCH_IOU, "seed": args.seed, "frame_size": list(frame_size),
               "sizes": list(sizes),
               "variants": list(args.variants), "frames_per_variant": args.frames,
               "detect_width": args.detect_width, "runs": args.runs, "deterministic": same,
               "faces": [f.name for f in composites.faces()],
               "seconds": round(time.perf_counter() - start, 1),
               "kinds": summarise(chosen, tallies, args.variants, sizes)}
    print(report(results))
    if args.plot and plot_accuracy(results, Path(args.plot)):
        print(f"\nplot: {args.plot}")
    return results


def _cuts(detector: Any, kind: Kind, size: tuple[int, int]) -> bool:
    """Whether a tiled kind cuts a frame of ``size`` at all (``auto`` leaves Haar at 640 px
    whole at 1080p, and BlazeFace back whole at 768x576: that would only repeat the plain
    row)."""
    return grid_used(detector, kind.detect_width, size) != "1x1"


def parse_frame_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (``768x576``) as (width, height)."""
    width, _, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 768x576") from None
    if min(size) < 64:
        raise argparse.ArgumentTypeError(f"{text!r}: a frame of at least 64x64 px")
    return size


def default_sizes(frame_size: tuple[int, int]) -> list[int]:
    """The face heights of :data:`composites.SIZES` (20-200 px of a 1080p frame), scaled to a
    frame ``frame_size`` high: the same scene seen by a camera of that resolution."""
    scale = frame_size[1] / composites.FRAME_SIZE[1]
    return sorted({max(8, round(s * scale)) for s in composites.SIZES})


def report(results: dict[str, Any]) -> str:
    sizes, variants = results["sizes"], results["variants"]
    return "\n\n".join([
        f"Match: IoU >= {results['match_iou']}; seed {results['seed']}; "
        f"{results['frames_per_variant']} frames per variant of "
        f"{'x'.join(map(str, results['frame_size']))}; boxes identical in every run: "
        f"{results['deterministic']}",
        cost_table(results["kinds"]),
        "Recall by face height:\n\n" + recall_table(results["kinds"], sizes, variants),
        "Precision by box height:\n\n" + recall_table(results["kinds"], sizes, variants,
                                                      "precision")])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=16, help="composites per variant")
    parser.add_argument("--frame-size", type=parse_frame_size,
                        default=composites.FRAME_SIZE,
                        help="composite frame size, WIDTHxHEIGHT (default 1920x1080; the "
                        "clip's own is 768x576)")
    parser.add_argument("--sizes", type=int, nargs="+",
                        help="face heights in px of the frame (default: 20 30 40 60 90 140 200 "
                        "at 1920x1080, scaled to another frame height)")
    parser.add_argument("--variants", nargs="+", choices=composites.VARIANTS,
                        default=list(composites.VARIANTS))
    parser.add_argument("--kinds", nargs="+",
                        help="only these kinds: names as in the table, or patterns ('*+tiles*')")
    parser.add_argument("--detect-width", type=int, default=640)
    parser.add_argument("--grids", nargs="+", default=["auto"],
                        help="tile grids to measure, each COLSxROWS or auto")
    parser.add_argument("--native-haar", action=argparse.BooleanOptionalAction, default=True,
                        help="also Haar on the full 1920 px frame (slow)")
    parser.add_argument("--runs", type=int, default=1,
                        help="timed passes over each frame (boxes must agree); time = median")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="bench-accuracy.png", help="PNG plot path ('' for none)")

"""Fleet-level view of camera and detector stats: rates, latency percentiles, the live table.

The controller feeds every snapshot it gathers through :class:`FleetStats`; the CLI's table, the
run's ``stats.jsonl`` and (later) the scaling policy and ``/metrics`` all read from it.

Counters become rates in one place, :class:`CounterWindow`: the live stats feed it each camera's
counters as they arrive, and ``camfleet report`` replays a recorded run's counters through it
(:func:`windowed_rate`), so a rate in the report's PNG is computed as the live table computes it.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from fleet.frames import CameraStats, DetectorStats
from fleet.redact import redact_url


def percentile_ms(samples: list[float] | tuple[float, ...], q: float) -> float | None:
    return float(np.percentile(samples, q) * 1000) if len(samples) else None


@dataclass
class CameraView:
    """One camera as the operator sees it: totals plus rates over the last interval."""

    stats: CameraStats
    input_fps: float = 0.0
    analysed_fps: float = 0.0
    offered_fps: float = 0.0  # over the last RATE_WINDOW_S: what the policy sizes detectors for
    hit_rate: float = 1.0  # admitted / offered over the look-back window
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None

    def row(self) -> dict:
        s = self.stats
        return {
            "camera": s.camera, "state": s.state, "input_fps": round(self.input_fps, 2),
            "analysed_fps": round(self.analysed_fps, 2), "captured": s.captured,
            "processed": s.processed, "failed": s.failed, "in_flight": s.in_flight,
            "slots_used": s.slots_used,
            "dropped": s.dropped, "hit_rate": round(self.hit_rate, 4),
            "offered_fps": round(self.offered_fps, 2), "buffers": s.buffers,
            "p50_ms": _round(self.p50_ms), "p95_ms": _round(self.p95_ms),
            "p99_ms": _round(self.p99_ms),
            "detections": s.detections, "reconnects": s.reconnects, "last_error": s.last_error,
            "accounted": s.accounted,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@dataclass
class DetectorView:
    detector: str
    actors: int  # actors that reported stats (running and draining)
    calls: int
    errors: int
    utilisation: float  # busy time / wall time over the look-back window, all actors together
    p50_ms: float | None = None
    p95_ms: float | None = None
    mean_service_s: float | None = None
    target: int = 0
    running: int = 0
    pending: int = 0
    draining: int = 0
    queued: int = 0  # frames sent to this kind's actors and not yet started, fleet-wide


@dataclass
class FleetSnapshot:
    time: float
    cameras: dict[str, CameraView] = field(default_factory=dict)
    detectors: dict[str, DetectorView] = field(default_factory=dict)
    actions: list[dict] = field(default_factory=list)  # scaling actions of the last few steps

    def record(self) -> dict:
        return {
            "time": round(self.time, 3),
            "cameras": [c.row() for c in self.cameras.values()],
            "detectors": [asdict(d) for d in self.detectors.values()],
        }


RATE_WINDOW_S = 3.0


def _trim(window: deque, oldest: float) -> None:
    while window and window[0][0] < oldest:
        window.popleft()


_Sample = tuple[float, Mapping[str, float]]  # (time, cumulative counters)


def _per_second(base: _Sample, latest: _Sample, name: str) -> float | None:
    """Rate of counter ``name`` from ``base`` to ``latest``; None unless time moved forward."""
    dt = latest[0] - base[0]
    return (latest[1][name] - base[1][name]) / dt if dt > 0 else None


class CounterWindow:
    """Recent samples of one source's cumulative counters: the one place counters become rates.

    It keeps every sample of the last ``keep_s`` plus one at or before that, so a rate over the
    whole look-back has a start even when samples are sparse.
    """

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self.samples: deque[_Sample] = deque()

    def add(self, time: float, counters: Mapping[str, float]) -> None:
        """Record the counters as they stood at ``time``; drops samples the look-back no longer
        needs."""
        self.samples.append((time, counters))
        while len(self.samples) > 2 and self.samples[1][0] <= time - self.keep_s:
            self.samples.popleft()  # keep one sample at or before the window's start

    def rate(self, name: str, window_s: float) -> float | None:
        """Per second over about the last ``window_s``: from the oldest sample that recent, or,
        with none that recent before the latest, from the oldest kept. None with no earlier one.

        A short window sees a step in load at once; a window of several samples averages out the
        aliasing of counters sampled at a slightly different rate than they count.
        """
        latest, first = self.samples[-1], self.samples[0]
        recent = next((s for s in self.samples if s[0] >= latest[0] - window_s), first)
        return _per_second(recent if recent[0] < latest[0] else first, latest, name)

    def interval_rate(self, name: str) -> float | None:
        """Per second since the previous sample: what changed in the last interval alone."""
        if len(self.samples) < 2:
            return None
        return _per_second(self.samples[-2], self.samples[-1], name)

    def change(self, name: str) -> float | None:
        """How much ``name`` grew since the oldest kept sample; None with no earlier sample."""
        (t0, first), (t1, latest) = self.samples[0], self.samples[-1]
        return latest[name] - first[name] if t1 > t0 else None


def windowed_rate(t_s: np.ndarray, cumulative: np.ndarray, window_s: float) -> np.ndarray:
    """Per-second rate of a recorded cumulative counter at each sample (NaN at the start, and
    where the counter is NaN), from the samples replayed through :class:`CounterWindow`.

    Per-interval rates alias (a 5 fps camera reads 4, 6, 4, 6 at one snapshot a second); a
    window of a few snapshots shows the trend. The window is a whole number of the median
    sampling interval (at least one), plus half an interval so a late snapshot does not lose one.
    A counter going down (two runs appended to one folder) gives a rate of 0.
    """
    rate = np.full(len(t_s), np.nan)
    interval = float(np.median(np.diff(t_s))) if len(t_s) > 1 else 0.0
    if not interval > 0:
        return rate
    steps = max(1, round(window_s / interval))
    span = (steps + 0.5) * interval
    window = CounterWindow(keep_s=span)
    for i, (t, value) in enumerate(zip(t_s.tolist(), cumulative.tolist(), strict=True)):
        window.add(t, {"n": value})
        per_s = window.interval_rate("n") if steps == 1 else window.rate("n", span)
        rate[i] = np.nan if per_s is None else per_s
    return np.clip(rate, 0, None)


class FleetStats:
    """Turns counters into rates and windowed figures: the one stats path that the live table,
    ``stats.jsonl``, the scaling policy and the metrics read."""

    def __init__(self, window_s: float = 10.0):
        self.window_s = window_s
        self.cameras: dict[str, CameraView] = {}
        self.latency: dict[str, deque[tuple[float, float]]] = {}
        # offered, admitted, captured and processed frames per camera
        self.counts: dict[str, CounterWindow] = {}
        self.detectors: dict[str, dict[str, DetectorStats]] = {}
        self.service: dict[str, deque[tuple[float, float]]] = {}
        self.busy: dict[str, deque[tuple[float, float, float]]] = {}  # (time, busy s, wall s)

    def update_camera(self, stats: CameraStats) -> CameraView:
        """The camera's view after this report: the rates and percentiles its counters give."""
        window = self.latency.setdefault(stats.camera, deque())
        window.extend((stats.time, s) for s in stats.latency_s)
        _trim(window, stats.time - self.window_s)
        counts = self.counts.setdefault(stats.camera, CounterWindow(self.window_s))
        counts.add(stats.time, {"offered": stats.offered, "admitted": stats.admitted,
                                "captured": stats.captured, "processed": stats.processed})
        view = CameraView(stats)
        view.input_fps = _or_zero(counts.interval_rate("captured"))
        view.analysed_fps = _or_zero(counts.interval_rate("processed"))
        offered, admitted = counts.change("offered"), counts.change("admitted")
        if offered is not None and admitted is not None:
            view.hit_rate = admitted / offered if offered else 1.0
        # The offered rate sizes the detectors: a short window sees a load step at once (the
        # policy's delays, not this average, keep it from reacting to noise).
        view.offered_fps = _or_zero(counts.rate("offered", RATE_WINDOW_S))
        samples = [s for _, s in window]
        view.p50_ms, view.p95_ms, view.p99_ms = (percentile_ms(samples, q) for q in (50, 95, 99))
        self.cameras[stats.camera] = view
        return view

    def update_detectors(self, name: str, actors: list[DetectorStats], now: float) -> DetectorView:
        previous = self.detectors.get(name, {})
        busy = wall = 0.0
        window = self.service.setdefault(name, deque())
        for s in actors:
            window.extend((now, x) for x in s.service_s)
            before = previous.get(s.actor)
            if before is not None and s.uptime_s > before.uptime_s:
                busy += s.busy_s - before.busy_s
                wall += s.uptime_s - before.uptime_s
        _trim(window, now - self.window_s)
        usage = self.busy.setdefault(name, deque())
        usage.append((now, busy, wall))
        _trim(usage, now - self.window_s)
        self.detectors[name] = {s.actor: s for s in actors}
        total_wall = sum(w for _, _, w in usage)
        utilisation = min(1.0, sum(b for _, b, _ in usage) / total_wall) if total_wall else 0.0
        samples = [x for _, x in window]
        return DetectorView(
            detector=name, actors=len(actors), calls=sum(s.calls for s in actors),
            errors=sum(s.errors for s in actors), utilisation=round(utilisation, 4),
            p50_ms=_round(percentile_ms(samples, 50)), p95_ms=_round(percentile_ms(samples, 95)),
            mean_service_s=float(np.mean(samples)) if samples else None,
        )


def _or_zero(rate: float | None) -> float:
    return 0.0 if rate is None else rate


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def format_actions(actions: list[dict], since: float) -> list[str]:
    """Scaling actions newer than ``since`` (wall clock), one line each."""
    return [
        f"  {time.strftime('%H:%M:%S', time.localtime(a['time']))} autoscale {a['target']}: "
        f"{a['action']} {a['before']} -> {a['after']} ({a['reason']})"
        for a in actions if a["time"] > since
    ]


def _trouble(view: CameraView) -> tuple[int, float, float]:
    """Sort key, most troubled first: not up, then lowest hit-rate, then slowest p95."""
    return (view.stats.state == "up", view.hit_rate, -(view.p95_ms or 0.0))


def format_table(snapshot: FleetSnapshot, elapsed_s: float | None = None,
                 since: float = 0.0, limit: int = 40, sinks: bool = False) -> str:
    """The live per-camera table the CLI prints, with the scaling actions since ``since``.
    Past ``limit`` cameras it shows the ``limit`` most troubled and sums up the rest: a table
    of a thousand rows every few seconds is one nobody reads. Events a sink dropped get one
    line (none while nothing is dropped); ``sinks`` (``camfleet status``) gives every sink's
    totals instead."""
    head = f"{'camera':<16} {'state':<8} {'in fps':>6} {'out fps':>7} {'hit':>5} {'infl':>4} " \
           f"{'buf':>3} {'p50 ms':>6} {'p95 ms':>6} {'objs':>4} {'xnode':>5} " \
           f"{'drops (reason=n)':<28} detections"
    lines = [head, "-" * len(head)]
    views = list(snapshot.cameras.values())
    shown = views if len(views) <= limit else sorted(views, key=_trouble)[:limit]
    for view in shown:
        s = view.stats
        drops = " ".join(f"{k}={v}" for k, v in sorted(s.dropped.items()) if v) or "-"
        dets = " ".join(f"{k}={v}" for k, v in sorted(s.detections.items())) or "-"
        lines.append(
            f"{s.camera:<16.16} {s.state:<8} {view.input_fps:>6.1f} {view.analysed_fps:>7.1f} "
            f"{view.hit_rate:>5.2f} {s.in_flight:>4} {s.buffers:>3} {_ms(view.p50_ms):>6} "
            f"{_ms(view.p95_ms):>6} {sum(s.tracks_active.values()):>4} {_xnode(s):>5} "
            f"{drops:<28.28} {dets}"
        )
        if s.last_error and s.state == "down":
            lines.append(f"{'':<16} ! {s.last_error[:100]}")
    if len(shown) < len(views):
        rest = [v for v in views if v not in shown]
        states = Counter(v.stats.state for v in rest)
        lines.append(f"... and {len(rest)} more camera(s), the least troubled ("
                     + ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
                     + f"; lowest hit-rate {min(v.hit_rate for v in rest):.2f})")
    totals = sink_totals(v.stats for v in views)
    if sinks:
        lines += format_sinks(totals)
    elif drops := format_sink_drops(totals):
        lines.append(drops)
    for d in snapshot.detectors.values():
        extra = "".join(f", {n} {what}" for n, what in (
            (d.pending, "starting"), (d.draining, "draining"), (d.queued, "frames queued")) if n)
        lines.append(
            f"detector {d.detector}: {d.running} running of {d.target} wanted{extra}; "
            f"{d.calls} calls, utilisation {d.utilisation:.0%}, service p50 {_ms(d.p50_ms)} ms "
            f"p95 {_ms(d.p95_ms)} ms"
        )
    lines += format_actions(snapshot.actions, since)
    if elapsed_s is not None:
        lines.insert(0, time.strftime("%H:%M:%S") + f"  running {elapsed_s:.0f} s")
    return "\n".join(lines)


@dataclass
class SinkTotals:
    """One sink (``webhook``, ``mqtt``, ``jsonl``, ``snapshots``) summed over the cameras that
    have it."""

    sink: str
    cameras: int = 0
    sent: int = 0
    queued: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    dropping: list[str] = field(default_factory=list)  # cameras whose sink dropped events

    @property
    def lost(self) -> int:
        return sum(self.dropped.values())


def sink_totals(cameras: Iterable[CameraStats]) -> dict[str, SinkTotals]:
    """Every sink's counters summed over the cameras, in the order the cameras list them."""
    totals: dict[str, SinkTotals] = {}
    for stats in cameras:
        for sink in stats.sinks:
            total = totals.setdefault(sink.sink, SinkTotals(sink.sink))
            total.cameras += 1
            total.sent += sink.sent
            total.queued += sink.queued
            total.dropped.update({k: v for k, v in sink.dropped.items() if v})
            if any(sink.dropped.values()):
                total.dropping.append(stats.camera)
    return totals


def _reasons(dropped: Counter[str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(dropped.items()) if v)


def _where(total: SinkTotals, named: int = 3) -> str:
    """The cameras whose sink dropped events: named when few, else counted."""
    if len(total.dropping) <= named:
        return ", ".join(total.dropping)
    return f"{len(total.dropping)} of {total.cameras} cameras"


def format_sink_drops(totals: Mapping[str, SinkTotals]) -> str:
    """One line for the live table with the events each sink dropped, by reason and where; ""
    while no sink dropped any. Sink names only: never a URL or an error text."""
    parts = [f"{redact_url(t.sink)} dropped {t.lost} ({_reasons(t.dropped)}) on {_where(t)}"
             for t in totals.values() if t.lost]
    return "sink drops: " + "; ".join(parts) if parts else ""


def format_sinks(totals: Mapping[str, SinkTotals]) -> list[str]:
    """A line per sink for ``camfleet status``: sent, queued and dropped by reason, summed over
    the cameras that have it."""
    lines = []
    for t in totals.values():
        lines.append(f"sink {redact_url(t.sink)} ({t.cameras} camera{'s' * (t.cameras != 1)}):"
                     f" {t.sent} sent, {t.queued} queued, {t.lost} dropped"
                     + (f" ({_reasons(t.dropped)}) on {_where(t)}" if t.lost else ""))
    return lines


def _xnode(s: CameraStats) -> str:
    """The share of hand-offs that crossed to another node (since the camera started)."""
    total = s.handoffs_local + s.handoffs_remote
    return f"{s.handoffs_remote / total:.0%}" if total else "-"


def format_summary(final: dict[str, CameraStats]) -> str:
    """Per-camera accounting at shutdown: captured = processed + dropped + failed + in flight."""
    lines = ["camera           captured = processed + dropped + failed + in_flight   "
             "drops by reason"]
    for s in final.values():
        dropped = sum(s.dropped.values())
        mark = "ok" if s.accounted else "MISMATCH"
        reasons = " ".join(f"{k}={v}" for k, v in sorted(s.dropped.items()) if v) or "-"
        lines.append(
            f"{s.camera:<16.16} {s.captured:>8} = {s.processed:>9} + {dropped:>7} + "
            f"{s.failed:>6} + {s.in_flight:>9}   {mark:<3} {reasons}"
        )
    lines += [line for s in final.values() if (line := _objects_line(s))]
    return "\n".join(lines)


def _objects_line(s: CameraStats) -> str:
    """Objects and push sinks of one camera, for the summary (empty without tracking)."""
    if not s.object_events:
        return ""
    events = s.object_events
    text = (f"{s.camera:<16.16} objects: {events.get('start', 0)} started, "
            f"{events.get('end', 0)} ended; zone events: enter={events.get('enter', 0)} "
            f"leave={events.get('leave', 0)} loiter={events.get('loiter', 0)}")
    if events.get("stationary"):
        text += f"; {events['stationary']} stationary"
    if s.frames_late:
        text += f"; {s.frames_late} results too late to track"
    for sink in s.sinks:
        lost = " ".join(f"{k}={v}" for k, v in sorted(sink.dropped.items()) if v) or "none"
        text += f"; {sink.sink}: {sink.sent}/{sink.published} sent, dropped {lost}"
    return text

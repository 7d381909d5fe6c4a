"""The Prometheus endpoint: what the controller sees, as metrics (prefix ``camfleet_``).

Counters mirror the totals the cameras and detectors keep (a custom collector reports them as
they are at scrape time), gauges the controller's latest snapshot, and the histograms get every
latency and service-time sample the controller gathers. One stats path: these are the same
figures the live table shows and the scaling policy decides on.

Label values are camera ids, detector names, reasons and actions: never URLs or errors, so no
credential can reach a label.
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fleet.control.policy import DecisionKey
from fleet.control.stats import FleetSnapshot
from fleet.frames import CameraStats, DetectorStats
from fleet.vocab import SINK_DROPS as SINK_DROP_REASONS

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10,
                   30)
SERVICE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2,
                   5)
LOOP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
CAMERA_STATES = ("starting", "up", "down", "ended", "stopped", "crashed")
ACTOR_STATES = ("running", "pending", "draining")

# (metric suffix, help, CameraStats attribute) for the per-camera counters
_CAMERA_COUNTERS = (
    ("frames_captured", "Frames read from the source.", "captured"),
    ("frames_processed", "Frames every detector answered for.", "processed"),
    ("frames_failed", "Frames that could not be decoded or a detector failed on.", "failed"),
    ("frames_offered", "Frames past the fps limit and motion gate.", "offered"),
    ("frames_admitted", "Offered frames that got an in-flight buffer.", "admitted"),
    ("reconnects", "Times the source failed and was reopened.", "reconnects"),
)


class _SnapshotCollector(Collector):
    def __init__(self, owner: FleetMetrics):
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        with self.owner.lock:
            snapshot, decisions = self.owner.snapshot, Counter(self.owner.decisions)
            possible = self.owner.possible
        yield from _fleet_info(self.owner.fleet)
        if snapshot is not None:
            yield from _camera_metrics(snapshot)
            yield from _detector_metrics(snapshot)
        decided = CounterMetricFamily("camfleet_autoscaler_decisions", "Scaling actions taken.",
                                      labels=["action", "reason", "target"])
        # every decision the fleet can see at 0 from the start, and every one taken
        for (action, reason, target) in sorted(possible | set(decisions)):
            decided.add_metric([action, reason, target], decisions[(action, reason, target)])
        yield decided


def _fleet_info(fleet: str) -> Iterator[Metric]:
    info = GaugeMetricFamily("camfleet_fleet_info", "The fleet this controller runs.",
                             labels=["fleet"])
    info.add_metric([fleet], 1)
    yield info


def _camera_metrics(snapshot: FleetSnapshot) -> Iterator[Metric]:
    views = list(snapshot.cameras.values())
    for suffix, text, attribute in _CAMERA_COUNTERS:
        family = CounterMetricFamily(f"camfleet_{suffix}", text, labels=["camera"])
        for view in views:
            family.add_metric([view.stats.camera], getattr(view.stats, attribute))
        yield family
    dropped = CounterMetricFamily("camfleet_frames_dropped", "Frames dropped, by reason.",
                                  labels=["camera", "reason"])
    detections = CounterMetricFamily("camfleet_detections", "Boxes found, by label.",
                                     labels=["camera", "label"])
    for view in views:
        for reason, count in sorted(view.stats.dropped.items()):
            dropped.add_metric([view.stats.camera, reason], count)
        for label, count in sorted(view.stats.detections.items()):
            detections.add_metric([view.stats.camera, label], count)
    yield dropped
    yield detections
    yield from _gauges(views)
    yield from _object_metrics(views)


def _object_metrics(views: list[Any]) -> Iterator[Metric]:
    """Tracks, object events and push sinks (cameras with tracking on; configured sinks)."""
    active = GaugeMetricFamily("camfleet_tracks_active", "Objects being tracked now.",
                               labels=["camera", "label"])
    events = CounterMetricFamily("camfleet_object_events", "Object events, by type.",
                                 labels=["camera", "event"])
    late = CounterMetricFamily("camfleet_frames_late",
                               "Results too late for the tracker's reorder window (not tracked).",
                               labels=["camera"])
    depth = GaugeMetricFamily("camfleet_sink_queue_depth", "Events waiting in a push sink.",
                              labels=["camera", "sink"])
    sent = CounterMetricFamily("camfleet_sink_sent", "Events a push sink delivered.",
                               labels=["camera", "sink"])
    lost = CounterMetricFamily("camfleet_sink_dropped", "Events a push sink dropped, by reason.",
                               labels=["camera", "sink", "reason"])
    for view in views:
        stats = view.stats
        for label, count in sorted(stats.tracks_active.items()):
            active.add_metric([stats.camera, label], count)
        for kind, count in sorted(stats.object_events.items()):
            events.add_metric([stats.camera, kind], count)
        if stats.object_events:  # tracking is on
            late.add_metric([stats.camera], stats.frames_late)
        for sink in stats.sinks:
            depth.add_metric([stats.camera, sink.sink], sink.queued)
            sent.add_metric([stats.camera, sink.sink], sink.sent)
            for reason in SINK_DROP_REASONS:  # every one at 0 from the start
                lost.add_metric([stats.camera, sink.sink, reason], sink.dropped.get(reason, 0))
    yield from (active, events, late, depth, sent, lost)
    handoffs = CounterMetricFamily("camfleet_handoffs", "Frames handed to a detector actor, by "
                                   "whether it ran on the camera's node.",
                                   labels=["camera", "locality"])
    crossed = CounterMetricFamily("camfleet_handoff_remote_bytes",
                                  "Frame bytes detectors on other nodes pulled across.",
                                  labels=["camera"])
    puts = CounterMetricFamily("camfleet_puts", "Objects a camera put into the object store: "
                               "one per frame, one per group of frames with put_frames.",
                               labels=["camera"])
    for view in views:
        stats = view.stats
        handoffs.add_metric([stats.camera, "local"], stats.handoffs_local)
        handoffs.add_metric([stats.camera, "remote"], stats.handoffs_remote)
        crossed.add_metric([stats.camera], stats.remote_bytes)
        puts.add_metric([stats.camera], stats.puts)
    yield from (handoffs, crossed, puts)


def _gauges(views: list[Any]) -> Iterator[Metric]:
    specs = (
        ("camfleet_frames_in_flight", "Frames captured and not yet settled.",
         lambda v: v.stats.in_flight),
        ("camfleet_buffer_slots", "In-flight buffers the camera may use.",
         lambda v: v.stats.buffers),
        ("camfleet_buffer_slots_used", "Buffers holding a frame at the detectors.",
         lambda v: v.stats.slots_used),
        ("camfleet_hit_rate", "Admitted / offered frames over the look-back window.",
         lambda v: v.hit_rate),
        ("camfleet_source_up", "1 while the source delivers frames.",
         lambda v: float(v.stats.state == "up")),
        ("camfleet_frame_put_bytes", "Bytes of the last frame put into the object store.",
         lambda v: float(v.stats.put_bytes)),
        ("camfleet_capture_stuck_seconds", "How long capture has been inside one source call.",
         lambda v: v.stats.stuck_s),
    )
    for name, text, value in specs:
        family = GaugeMetricFamily(name, text, labels=["camera"])
        for view in views:
            family.add_metric([view.stats.camera], value(view))
        yield family
    state = GaugeMetricFamily("camfleet_camera_state", "1 for the camera's current state.",
                              labels=["camera", "state"])
    for view in views:
        for name in CAMERA_STATES:
            state.add_metric([view.stats.camera, name], float(view.stats.state == name))
    yield state


def _detector_metrics(snapshot: FleetSnapshot) -> Iterator[Metric]:
    views = list(snapshot.detectors.values())
    actors = GaugeMetricFamily("camfleet_detector_actors", "Detector actors, by state.",
                               labels=["detector", "state"])
    target = GaugeMetricFamily("camfleet_detector_actors_target", "Detector actors wanted.",
                               labels=["detector"])
    utilisation = GaugeMetricFamily("camfleet_detector_utilisation",
                                    "Busy time / wall time of the kind's actors, look-back window.",
                                    labels=["detector"])
    queued = GaugeMetricFamily("camfleet_detector_queued_frames",
                               "Frames waiting at the kind's actors.", labels=["detector"])
    for v in views:
        for name, count in zip(ACTOR_STATES, (v.running, v.pending, v.draining), strict=True):
            actors.add_metric([v.detector, name], count)
        target.add_metric([v.detector], v.target)
        utilisation.add_metric([v.detector], v.utilisation)
        queued.add_metric([v.detector], v.queued)
    yield from (actors, target, utilisation, queued)


class FleetMetrics:
    """The registry behind ``/metrics``; the controller feeds it from each collect step."""

    def __init__(self, fleet: str):
        self.fleet = fleet
        self.lock = threading.Lock()
        self.snapshot: FleetSnapshot | None = None
        self.decisions: Counter[DecisionKey] = Counter()
        self.possible: frozenset[DecisionKey] = frozenset()  # exported at 0 until taken
        self.registry = CollectorRegistry()
        self.latency = Histogram("camfleet_latency_seconds", "Capture to result, per frame.",
                                 ["camera"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.service = Histogram("camfleet_detector_service_seconds", "Time inside the detector.",
                                 ["detector"], buckets=SERVICE_BUCKETS, registry=self.registry)
        self.loop = Histogram("camfleet_controller_loop_seconds", "One control step.",
                              buckets=LOOP_BUCKETS, registry=self.registry)
        self.registry.register(_SnapshotCollector(self))
        self.server: Any = None

    def observe_camera(self, stats: CameraStats) -> None:
        histogram = self.latency.labels(stats.camera)
        for sample in stats.latency_s:
            histogram.observe(sample)

    def observe_detectors(self, name: str, actors: Iterable[DetectorStats]) -> None:
        histogram = self.service.labels(name)
        for stats in actors:
            for sample in stats.service_s:
                histogram.observe(sample)

    def update(self, snapshot: FleetSnapshot, decisions: Counter[DecisionKey],
               possible: Iterable[DecisionKey] = ()) -> None:
        """The latest snapshot, the decisions taken so far, and those the fleet's pools and
        cameras can see (:func:`fleet.control.policy.possible_actions`)."""
        with self.lock:
            self.snapshot, self.decisions = snapshot, Counter(decisions)
            self.possible = frozenset(possible)

    def serve(self, host: str, port: int) -> str:
        """Start the HTTP endpoint; returns its URL (port 0 picks a free port)."""
        self.server = MetricsServer((host, port), self.registry)
        threading.Thread(target=self.server.serve_forever, name="metrics-http",
                         daemon=True).start()
        return f"http://{host}:{self.server.server_port}/metrics"

    def forget_cameras(self, keep: Iterable[str]) -> None:
        """Drop the histogram series of cameras no longer in the fleet (``camfleet apply``
        removed them); the counters and gauges follow the snapshot and go by themselves."""
        keep = set(keep)
        for labels in [k for k in self.latency._metrics if k[0] not in keep]:  # noqa: SLF001
            self.latency.remove(*labels)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


MAX_CONNECTIONS = 8  # scrapes served at once; more are closed at once (a scrape takes ms)
REQUEST_DEADLINE_S = 5.0  # a connection is cut this long after it opened, whatever it sends


class _MetricsHandler(http.server.BaseHTTPRequestHandler):
    server: MetricsServer

    def handle(self) -> None:
        # A total deadline, not a per-read timeout: a client that drips a byte now and then
        # (or never finishes its request line) is cut off by the server's reaper.
        self.server.watch(self.connection)
        try:
            super().handle()
        finally:
            self.server.unwatch(self.connection)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.split("?")[0] not in ("/metrics", "/"):
            self.send_error(404)
            return
        body = generate_latest(self.server.registry)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass  # a scrape a second is not news


class MetricsServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """``/metrics`` with bounds: at most MAX_CONNECTIONS handled at once (a thread each; more
    are closed as they come, counted in ``refused``), each cut REQUEST_DEADLINE_S after it
    opened. prometheus_client's own server has a thread per connection and no timeout, so 300
    half-sent requests meant 300 threads in the controller."""

    daemon_threads = True
    request_queue_size = 64  # a burst of connections waits in the kernel, to be refused fast

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry):
        self.registry = registry
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.refused = 0
        self.deadlines: dict[socket.socket, float] = {}
        self.lock = threading.Lock()
        self.closing = threading.Event()
        super().__init__(address, _MetricsHandler)
        threading.Thread(target=self._reap, name="metrics-reaper", daemon=True).start()

    def watch(self, connection: socket.socket) -> None:
        with self.lock:
            self.deadlines[connection] = time.monotonic() + REQUEST_DEADLINE_S

    def unwatch(self, connection: socket.socket) -> None:
        with self.lock:
            self.deadlines.pop(connection, None)

    def _reap(self) -> None:
        """One thread for every connection's deadline (not a timer each)."""
        while not self.closing.wait(0.2):
            now = time.monotonic()
            with self.lock:
                late = [c for c, due in self.deadlines.items() if due <= now]
                for connection in late:
                    del self.deadlines[connection]
            for connection in late:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed

    def server_close(self) -> None:
        self.closing.set()
        super().server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.refused += 1
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

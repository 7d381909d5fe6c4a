"""``camfleet``: run a fleet, validate fleet files, print the schema, run benchmarks.

The one place that wires everything: config -> Ray -> the controller actor -> the live table.
Exit codes: 0 done (also after Ctrl-C / SIGTERM), 1 the fleet could not run, 2 a bad fleet file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fleet.config import FleetConfig, SyntheticSource, json_schema
from fleet.errors import FleetError
from fleet.live import add_parsers, load_or_report
from fleet.logsafe import LOG_FORMAT, install_log_redaction
from fleet.pipeline.facesize import face_notes

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130
LEASE_RENEW_S = 2.0  # the controller stops the fleet itself when the CLI is gone this long
REATTACH_S = 60.0  # how long the CLI waits for a restarted controller


_load = load_or_report


def cmd_validate(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for path in args.files:
        config = _load(path)
        if config is None:
            status = EXIT_BAD_CONFIG
            continue
        active = config.active_cameras
        print(f"{path}: ok ({len(active)} camera(s) enabled of {len(config.cameras)}; "
              f"detectors: {', '.join(sorted(config.detectors)) or 'none'})")
        for note in _size_notes(config):
            print(f"{path}: note: {note}")
    return status


def _size_notes(config: FleetConfig) -> list[str]:
    """What face detectors will miss on cameras whose frame size the file gives (synthetic
    sources); the others are noted in the log when their first frame comes."""
    return [note for camera in config.active_cameras if isinstance(camera.source, SyntheticSource)
            for note in face_notes(camera, config.detectors, camera.source.width,
                                   camera.source.height)]


def cmd_schema(args: argparse.Namespace) -> int:
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


RUNS_ENV = "CAMFLEET_RUNS"  # where run folders go when the fleet file's output_dir would not last


def _run_dir(config: FleetConfig, explicit: str | None) -> Path:
    if explicit:
        path = Path(explicit)
    else:
        base = Path(config.output_dir)
        if not base.is_absolute() and _in_job_package(Path.cwd()):
            # `ray job submit --working-dir`: the cwd is Ray's copy of the working dir, which
            # Ray deletes with the job's package; a relative output_dir would vanish with it
            base = Path(os.environ.get(RUNS_ENV, "~/camfleet-runs")).expanduser()
            print(f"camfleet: running from a Ray job's working_dir, which Ray deletes after "
                  f"the job: run folders go to {base} instead of {config.output_dir}/ (set "
                  f"{RUNS_ENV}, an absolute output_dir, or --run-dir to choose)", flush=True)
        path = base / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _in_job_package(cwd: Path) -> bool:
    """Whether ``cwd`` is a working_dir package Ray unpacked for a job."""
    parts = cwd.resolve().parts
    return "runtime_resources" in parts and any(p.startswith("working_dir_files") or
                                                p.startswith("_ray_pkg_") for p in parts)


class _StopFlag:
    """Set by SIGINT/SIGTERM; the run loop notices within a fraction of a second."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal = ""
        self.install()

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt  # a second signal: stop waiting, end the actors now
        self.signal = signal.Signals(signum).name
        self.event.set()


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.file)
    if config is None:
        return EXIT_BAD_CONFIG
    from actors import runtime

    run_dir = _run_dir(config, args.run_dir)
    stop = _StopFlag()  # from here on a signal stops the fleet, whatever phase it is in
    embedded = runtime.init_ray(args.address, args.num_cpus, args.object_store_mb)
    stop.install()  # again: ray.init puts in a SIGTERM handler of its own that exits
    print(f"camfleet: fleet '{config.name}', {len(config.active_cameras)} camera(s), "
          f"run folder {run_dir}", flush=True)
    if embedded:
        import ray

        address = ray.get_runtime_context().gcs_address
        print(f"camfleet: embedded Ray at {address}; camfleet status and camfleet apply on this "
              "machine find it", flush=True)
    fleet = runtime.start_fleet(config, str(run_dir))
    try:
        if not _started(fleet, stop):
            return EXIT_OK if stop.signal else EXIT_FAILED
        feed = None
        if config.sinks.jsonl.enabled and config.sinks.jsonl.objects:
            from fleet.feed import EventFeed

            feed = EventFeed(run_dir / config.sinks.jsonl.path)
        if not _watch(fleet, args, stop, feed):
            return EXIT_FAILED
        return EXIT_OK if _stop(fleet, config, run_dir, stop, feed) else EXIT_FAILED
    finally:
        fleet.kill()
        runtime.end_fleet_actors(config.name)  # nothing of the fleet outlives the command
        runtime.shutdown_ray(embedded)


def _started(fleet: Any, stop: _StopFlag) -> bool:
    """Wait for start-up while answering signals. False if it failed or was interrupted."""
    import ray

    ref = fleet.start_ref()
    while not ray.wait([ref], timeout=0.2)[0]:
        if stop.event.is_set():
            print(f"camfleet: {stop.signal} during start-up; stopping", file=sys.stderr, flush=True)
            return False
    try:
        ray.get(ref)
    except ray.exceptions.RayError as exc:
        print(f"camfleet: the fleet could not start: {_cause(exc)}", file=sys.stderr, flush=True)
        return False
    url = fleet.metrics_url()
    print(f"camfleet: metrics at {url}" if url else "camfleet: metrics endpoint off", flush=True)
    return True


def _watch(fleet: Any, args: argparse.Namespace, stop: _StopFlag, feed: Any = None) -> bool:
    """Print the live table every ``--every`` seconds (and the object events written since,
    from ``feed``) until a signal, --duration or the end; keep the controller's lease. False if
    the controller is gone for good."""
    from fleet.errors import ControllerGone
    from fleet.control.stats import format_table

    started = time.monotonic()
    next_table, next_lease, shown = started + args.every, started, time.time()
    while not stop.event.wait(0.2):
        now = time.monotonic()
        if args.duration and now - started >= args.duration:
            break
        try:
            if now >= next_lease:
                next_lease = now + LEASE_RENEW_S
                fleet.keepalive()
            if now >= next_table:
                next_table = now + args.every
                snapshot = fleet.snapshot()
                events = feed.lines() if feed is not None else []
                if events:
                    print("\n".join(events), flush=True)
                print(format_table(snapshot, now - started, since=shown), "\n", flush=True)
                shown = max([shown, *(a["time"] for a in snapshot.actions)])
                if fleet.ended():
                    print("camfleet: every camera has ended", flush=True)
                    break
        except ControllerGone as gone:
            if not _reattach(fleet, gone, stop):
                return False
    return True


def _reattach(fleet: Any, gone: Any, stop: _StopFlag) -> bool:
    """The controller stopped answering: Ray restarts it and it adopts the running actors.
    Wait for it; True once it answers again."""
    from fleet.errors import ControllerGone

    print(f"camfleet: the controller is not answering ({gone}); cameras go on meanwhile; "
          f"waiting up to {REATTACH_S:g} s for it to come back", file=sys.stderr, flush=True)
    deadline = time.monotonic() + REATTACH_S
    while not gone.for_good and time.monotonic() < deadline and not stop.event.is_set():
        try:
            fleet.keepalive()
        except ControllerGone as again:
            gone = again
            stop.event.wait(1.0)
            continue
        print("camfleet: reattached to the restarted controller", flush=True)
        return True
    if stop.event.is_set():
        return True  # stop as asked; _stop reports what it can
    print("camfleet: the controller is gone for good; ending the fleet's actors. Counters up "
          "to the last snapshot are in stats.jsonl", file=sys.stderr, flush=True)
    return False


def _stop(fleet: Any, config: Any, run_dir: Path, stop: _StopFlag, feed: Any = None) -> bool:
    from fleet.errors import ControllerGone
    from fleet.control.stats import format_summary
    from fleet.sinks.rotation import write_atomically

    why = f"on {stop.signal}" if stop.signal else "at the end of the run"
    print(f"camfleet: stopping {why}; draining in-flight frames", flush=True)
    try:
        final = fleet.stop(timeout_s=config.drain_timeout_s + 60)
    except ControllerGone as gone:
        print(f"camfleet: the controller did not stop cleanly ({gone})", file=sys.stderr)
        return False
    events = feed.lines() if feed is not None else []  # the objects live at shutdown ended
    if events:
        print("\n".join(events), flush=True)
    print(format_summary(final), flush=True)
    summary = {cid: {k: v for k, v in asdict(s).items() if k != "latency_s"}
               for cid, s in final.items()}
    try:  # the report never reads half a summary
        write_atomically(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    except OSError as error:
        print(f"camfleet: summary.json could not be written ({error.strerror or error}); the "
              "counters are in the final line of stats.jsonl", file=sys.stderr, flush=True)
    print(f"camfleet: events in {run_dir}", flush=True)
    return True


def _cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="camfleet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a fleet until Ctrl-C, SIGTERM or --duration")
    run.add_argument("file", help="fleet YAML file")
    run.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else embedded)")
    run.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    run.add_argument("--every", type=float, default=5.0, help="seconds between live tables")
    run.add_argument("--run-dir",
                     help="write events and stats here (default: output_dir/name-time)")
    run.add_argument("--num-cpus", type=int, help="embedded Ray: logical CPUs (default: all)")
    run.add_argument("--object-store-mb", type=int, help="embedded Ray: object store size")
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check fleet files without running them")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(func=cmd_validate)

    schema = sub.add_parser("schema", help="print the fleet file JSON schema")
    schema.add_argument("--output", "-o", help="write to this file instead of stdout")
    schema.set_defaults(func=cmd_schema)

    add_parsers(sub)
    _add_lazy(sub, "bench", "benchmarks (ratios against a baseline in the same run)", command)
    _add_lazy(sub, "report", "draw a finished run's panels to PNG", command)
    return parser


def _add_lazy(sub: Any, name: str, text: str, command: str | None) -> None:
    """Commands with heavy modules are imported only when they are the one being run."""
    if command != name:
        sub.add_parser(name, help=text, add_help=False)
        return
    if name == "bench":
        from fleet.bench.main import add_parser, main
    else:
        from fleet.report import add_parser, main
    add_parser(sub, main)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    install_log_redaction()
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.func(args))
    except FleetError as exc:
        print(f"camfleet: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("camfleet: interrupted again; stopped without draining", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

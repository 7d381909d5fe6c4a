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

from fleet.config import FleetConfig, json_schema, load_fleet
from fleet.errors import ConfigError, FleetError

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2

# Ray's raylet frees out-of-scope objects in batches, by default once a second: at 30 fps a
# camera's released frames would linger ~30 deep in the object store, past its `buffers` bound.
# Freeing each object as it goes out of scope keeps the store at cameras x buffers frames.
# On a cluster set the same with RAY_free_objects_batch_size=1 on every node (see deploy/).
RAY_SYSTEM_CONFIG = {"free_objects_batch_size": 1}


def _load(path: str) -> FleetConfig | None:
    try:
        return load_fleet(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        n = len(exc.problems)
        print(f"{path}: {n} problem{'s' * (n != 1)}; nothing was started", file=sys.stderr)
        return None


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
    return status


def cmd_schema(args: argparse.Namespace) -> int:
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def init_ray(address: str | None, num_cpus: int | None, object_store_mb: int | None) -> bool:
    """Join ``address`` (or RAY_ADDRESS), else start an embedded local Ray. True if embedded."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
        return False
    ray.init(
        address="local",  # a new local Ray, never one a `ray start` left behind
        num_cpus=num_cpus or os.cpu_count(),
        object_store_memory=object_store_mb * 2**20 if object_store_mb else None,
        include_dashboard=False, logging_level=logging.WARNING, _system_config=RAY_SYSTEM_CONFIG,
    )
    return True


def _run_dir(config: FleetConfig, explicit: str | None) -> Path:
    if explicit:
        path = Path(explicit)
    else:
        path = Path(config.output_dir) / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


class _StopFlag:
    """Set by SIGINT/SIGTERM; the run loop notices within a fraction of a second."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal = ""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        if self.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting for the drain
        self.signal = signal.Signals(signum).name
        self.event.set()


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.file)
    if config is None:
        return EXIT_BAD_CONFIG
    import ray

    from actors.controller import ControllerActor
    from fleet.stats import format_summary, format_table

    run_dir = _run_dir(config, args.run_dir)
    embedded = init_ray(args.address, args.num_cpus, args.object_store_mb)
    stop = _StopFlag()
    print(f"camfleet: fleet '{config.name}', {len(config.active_cameras)} camera(s), run folder {run_dir}",
          flush=True)
    controller = ControllerActor.options(name=f"camfleet-{config.name}").remote(config, str(run_dir))
    try:
        ray.get(controller.start.remote())
    except (FleetError, ray.exceptions.RayError) as exc:
        print(f"camfleet: the fleet could not start: {_cause(exc)}", file=sys.stderr)
        ray.kill(controller)
        if embedded:
            ray.shutdown()
        return EXIT_FAILED
    url = ray.get(controller.metrics_url.remote())
    print(f"camfleet: metrics at {url}" if url else "camfleet: metrics endpoint off", flush=True)
    started = time.monotonic()
    next_table, shown = started + args.every, time.time()
    while not stop.event.wait(0.2):
        now = time.monotonic()
        if args.duration and now - started >= args.duration:
            break
        if now >= next_table:
            next_table = now + args.every
            snapshot = ray.get(controller.snapshot.remote())
            print(format_table(snapshot, now - started, since=shown), "\n", flush=True)
            shown = max([shown, *(a["time"] for a in snapshot.actions)])
            if ray.get(controller.ended.remote()):
                print("camfleet: every camera has ended", flush=True)
                break
    why = f"on {stop.signal}" if stop.signal else "at the end of the run"
    print(f"camfleet: stopping {why}; draining in-flight frames", flush=True)
    final = ray.get(controller.stop.remote())
    print(format_summary(final), flush=True)
    summary = {cid: {k: v for k, v in asdict(s).items() if k != "latency_s"} for cid, s in final.items()}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"camfleet: events in {run_dir}", flush=True)
    ray.kill(controller)
    if embedded:
        ray.shutdown()
    return EXIT_OK


def _cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__


def cmd_bench(args: argparse.Namespace) -> int:
    from fleet import bench

    return bench.main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="camfleet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a fleet until Ctrl-C, SIGTERM or --duration")
    run.add_argument("file", help="fleet YAML file")
    run.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else embedded)")
    run.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    run.add_argument("--every", type=float, default=5.0, help="seconds between live tables")
    run.add_argument("--run-dir", help="write events and stats here (default: output_dir/name-time)")
    run.add_argument("--num-cpus", type=int, help="embedded Ray: logical CPUs (default: all)")
    run.add_argument("--object-store-mb", type=int, help="embedded Ray: object store size")
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check fleet files without running them")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(func=cmd_validate)

    schema = sub.add_parser("schema", help="print the fleet file JSON schema")
    schema.add_argument("--output", "-o", help="write to this file instead of stdout")
    schema.set_defaults(func=cmd_schema)

    from fleet.bench import add_parser as add_bench

    add_bench(sub, cmd_bench)

    from fleet import report

    report.add_parser(sub, report.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FleetError as exc:
        print(f"camfleet: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

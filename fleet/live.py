"""``camfleet status`` and ``camfleet apply``: a running fleet, seen and changed from another
terminal or machine. Both join a running Ray (``--address``, RAY_ADDRESS, else the one on this
machine) and find the fleet's controller by name; neither starts anything."""

from __future__ import annotations

import argparse
import sys
import time

from fleet.config import FleetConfig, load_fleet
from fleet.errors import ConfigError, FleetError
from fleet.logsafe import install_log_redaction

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2


def load_or_report(path: str) -> FleetConfig | None:
    """The fleet file, or None after printing its problems (file, line, field). Its secrets
    are masked in this process's log lines from then on."""
    try:
        config = load_fleet(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        n = len(exc.problems)
        print(f"{path}: {n} problem{'s' * (n != 1)}; nothing was started", file=sys.stderr)
        return None
    install_log_redaction(config)
    return config


def cmd_status(args: argparse.Namespace) -> int:
    from actors import runtime
    from fleet.control.stats import format_table

    try:
        runtime.join_ray(args.address)
        fleet = runtime.find_fleet(args.fleet)
        info = fleet.info()
        print(f"camfleet: fleet '{info['fleet']}', run folder {info['run_dir']}"
              + (f", metrics at {info['metrics_url']}" if info.get("metrics_url") else ""),
              flush=True)
        while True:
            snapshot = fleet.view()
            print(format_table(snapshot, time.time() - info["started"], sinks=True), "\n",
                  flush=True)
            if not args.watch:
                return EXIT_OK
            time.sleep(args.every)
    except FleetError as exc:
        print(f"camfleet: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    config = load_or_report(args.file)
    if config is None:
        return EXIT_BAD_CONFIG
    from actors import runtime

    try:
        runtime.join_ray(args.address)
        fleet = runtime.find_fleet(config.name)
        lines = fleet.apply(config, timeout_s=config.drain_timeout_s + 180)
    except FleetError as exc:
        print(f"camfleet: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"camfleet: fleet '{config.name}':")
    print("\n".join(f"  {line}" for line in lines), flush=True)
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    status = sub.add_parser("status", help="the live table of a running fleet, with its sinks")
    status.add_argument("--fleet", help="the fleet's name (default: the only one running)")
    status.add_argument("--address", help="Ray cluster (default: RAY_ADDRESS, else this machine's)")
    status.add_argument("--watch", action="store_true", help="print it again every --every s")
    status.add_argument("--every", type=float, default=5.0)
    status.set_defaults(func=cmd_status)

    apply = sub.add_parser("apply", help="change a running fleet to match a fleet file")
    apply.add_argument("file", help="fleet YAML file (its name: says which fleet)")
    apply.add_argument("--address", help="Ray cluster (default: RAY_ADDRESS, else this machine's)")
    apply.set_defaults(func=cmd_apply)

"""Builds camfleet's Grafana dashboards, ``dashboards/*.json``, from the modules beside it.

    python dashboards/build.py          # rewrite the JSON files
    python dashboards/build.py --check  # exit 1, naming the file, if a JSON file is out of date

The JSON files are what Grafana loads (file provisioning, or Dashboards > New > Import); the
Python here is where they are edited: the vocabulary in ``grafana.py``, the panels in
``fleet_dashboard.py`` and ``camera_dashboard.py``. Edit there, run this, commit both.
``tests/unit/test_dashboards.py`` holds the JSON to this script, its PromQL to the metrics the
controller exposes (``fleet/control/metrics.py``) and its panels to Grafana's own dashboard schema.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

if not __package__:  # run as a script: make the dashboards package importable from the repo
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.camera_dashboard import camera_dashboard
from dashboards.fleet_dashboard import fleet_dashboard
from dashboards.grafana import Json

HERE = Path(__file__).resolve().parent
DASHBOARDS: dict[str, Callable[[], Json]] = {"camfleet-fleet.json": fleet_dashboard,
                                             "camfleet-camera.json": camera_dashboard}


def render(build: Callable[[], Json]) -> str:
    """The dashboard as Grafana exports it: sorted keys, so a rebuild diffs only what changed."""
    return json.dumps(build(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write every dashboard's JSON, or with ``--check`` only name those that are out of date."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a JSON file differs from what this script builds")
    args = parser.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        path, text = HERE / name, render(build)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)}; run python dashboards/build.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())

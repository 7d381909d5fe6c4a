"""The Grafana dashboards and the Prometheus/Grafana deploy files (no Ray, no Grafana).

The dashboards are type-checked against Grafana's own schema (``@grafana/schema`` with ``tsc``,
in tests/dashboards/), their PromQL is parsed by ``promtool`` and held to the controller's metric
contract, and ``prometheus.yml`` passes ``promtool check config``. ``dashboard_queries`` (from
tests/dashboards/queries.py) gives every query with its variables filled in, for tests that send
them to a real Prometheus.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.dashboards.queries import (
    METRICS,
    SCRAPE_LABELS,
    dashboard_queries,
    label_names,
    load_dashboards,
    metric_names,
    raw_queries,
    variables_in,
)

__all__ = ["dashboard_queries"]

DASHBOARDS = REPO / "dashboards"
SCHEMA_CHECK = REPO / "tests" / "dashboards"
PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s",
                    "__range_ms"}
Dashboard = dict[str, Any]


@pytest.fixture(scope="module")
def dashboards() -> dict[str, Dashboard]:
    found = load_dashboards(DASHBOARDS)
    assert set(found) == {"camfleet-fleet.json", "camfleet-camera.json"}, sorted(found)
    return found


def panels(dashboards: dict[str, Dashboard]) -> list[tuple[str, Dashboard]]:
    return [(name, panel) for name, board in dashboards.items() for panel in board["panels"]]


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool not found: install Debian's prometheus package "
                    "(bash scripts/setup.sh test does; it is in scripts/apt-packages.txt)")
    return found


# ---- the JSON is what dashboards/build.py makes ---------------------------------------------

def test_dashboard_json_is_what_build_py_writes():
    result = subprocess.run([sys.executable, str(DASHBOARDS / "build.py"), "--check"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


# ---- Grafana's schema ------------------------------------------------------------------------

def schema_check(folder: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Runs tests/dashboards: each dashboard as a TypeScript literal of Grafana's type, tsc."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        pytest.skip("node and npm are not installed: the Grafana schema check needs them "
                    "(bash scripts/setup.sh test installs them and the check's packages)")
    tsc = SCHEMA_CHECK / "node_modules" / "typescript" / "bin" / "tsc"
    if not (tsc.is_file() and (SCHEMA_CHECK / "node_modules" / "@grafana" / "schema").is_dir()):
        pytest.fail("tests/dashboards/node_modules is missing: run `npm ci` in tests/dashboards "
                    "(bash scripts/setup.sh test does)")
    generate = subprocess.run([node, "generate.mjs", *([str(folder)] if folder else [])],
                              cwd=SCHEMA_CHECK, capture_output=True, text=True, timeout=60,
                              check=False)
    assert generate.returncode == 0, generate.stdout + generate.stderr
    return subprocess.run([node, str(tsc), "-p", "."], cwd=SCHEMA_CHECK, capture_output=True,
                          text=True, timeout=300, check=False)


def json_positions(tsc_output: str, folder: str = "dashboards") -> str:
    """tsc's generated/NAME.ts(LINE,COL) as NAME.json:LINE:COL (generate.mjs adds one line)."""
    return re.sub(r"generated/([\w.-]+)\.ts\((\d+),(\d+)\)",
                  lambda m: f"{folder}/{m[1]}.json:{int(m[2]) - 1}:{m[3]}", tsc_output)


def test_dashboards_type_check_against_grafana_schema(dashboards):
    result = schema_check()
    assert result.returncode == 0, json_positions(result.stdout + result.stderr)


def _misspelt_key(board: Dashboard) -> None:
    board["panels"][0]["titel"] = board["panels"][0].pop("title")


def _unknown_enum_value(board: Dashboard) -> None:
    board["panels"][-1]["fieldConfig"]["defaults"]["thresholds"]["mode"] = "absolut"


def _no_targets(board: Dashboard) -> None:
    board["panels"][-1]["targets"] = []


def _unknown_option(board: Dashboard) -> None:
    board["panels"][-1]["options"]["legend"]["displayMod"] = "list"


@pytest.mark.parametrize("breakage, message", [
    (_misspelt_key, "'\"titel\"' does not exist"),
    (_unknown_enum_value, "'\"absolut\"' is not assignable"),
    (_no_targets, "Type '[]' is not assignable"),
    (_unknown_option, "'\"displayMod\"' does not exist"),
], ids=["misspelt-key", "bad-enum-value", "no-targets", "unknown-option"])
def test_schema_check_rejects_a_broken_dashboard(
        dashboards, tmp_path, breakage: Callable[[Dashboard], None], message: str):
    # given the fleet dashboard with one mistake
    board = copy.deepcopy(dashboards["camfleet-fleet.json"])
    breakage(board)
    (tmp_path / "broken.json").write_text(json.dumps(board, indent=2))
    # when it is type-checked
    result = schema_check(tmp_path)
    # then tsc names the mistake
    assert result.returncode != 0
    assert message in result.stdout, result.stdout


def test_schema_version_and_tags(dashboards):
    for name, board in dashboards.items():
        assert 39 <= board["schemaVersion"] <= 41, name  # Grafana 10.4 .. 12
        assert "camfleet" in board["tags"], name
        assert board.get("id") is None, f"{name}: provisioned dashboards carry no id"


# ---- identity: unique, stable, and apart from Ray's dashboards -------------------------------

def test_uids_and_titles_are_unique_and_stable(dashboards):
    uids = {name: board["uid"] for name, board in dashboards.items()}
    titles = [board["title"] for board in dashboards.values()]
    assert uids == {"camfleet-fleet.json": "camfleet-fleet",
                    "camfleet-camera.json": "camfleet-camera"}
    assert titles == sorted(set(titles), key=titles.index), "duplicate titles"
    # Ray's generated dashboards use uids like rayDefaultDashboard and plain titles
    assert all(title.startswith("camfleet / ") for title in titles), titles


def test_panel_ids_and_titles_are_unique_per_dashboard(dashboards):
    for name, board in dashboards.items():
        ids = [panel["id"] for panel in board["panels"]]
        titles = [panel["title"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        assert len(titles) == len(set(titles)), f"{name}: duplicate panel titles"


# ---- panels ----------------------------------------------------------------------------------

def test_every_panel_has_a_title_a_place_and_queries(dashboards):
    for name, panel in panels(dashboards):
        where = f"{name}: panel {panel.get('id')} {panel.get('title')!r}"
        assert panel.get("title"), f"{where}: no title"
        assert panel.get("description"), f"{where}: no description"
        assert panel.get("type") in ("timeseries", "stat"), f"{where}: type {panel.get('type')}"
        assert set(panel.get("gridPos", {})) >= {"h", "w", "x", "y"}, f"{where}: no gridPos"
        assert panel.get("targets"), f"{where}: no targets"
        ref_ids = [t.get("refId") for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids) and all(ref_ids), f"{where}: refIds {ref_ids}"
        assert all(t.get("expr", "").strip() for t in panel["targets"]), f"{where}: empty expr"


def test_every_panel_and_query_uses_the_datasource_variable(dashboards):
    for name, panel in panels(dashboards):
        assert panel["datasource"] == DATASOURCE, f"{name}: {panel['title']}"
        for query in panel["targets"]:
            assert query["datasource"] == DATASOURCE, f"{name}: {panel['title']}"
    for name, board in dashboards.items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for variable in variables.values():
            if variable["type"] == "query":
                assert variable["datasource"] == DATASOURCE, f"{name}: ${variable['name']}"
        for annotation in board["annotations"]["list"]:
            if not annotation.get("builtIn"):
                assert annotation["datasource"] == DATASOURCE, f"{name}: {annotation['name']}"


def test_panels_fit_the_grid_without_overlapping(dashboards):
    for name, board in dashboards.items():
        cells: dict[tuple[int, int], str] = {}
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["w"] > 0 and pos["h"] > 0 and pos["x"] + pos["w"] <= 24
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    other = cells.setdefault((x, y), panel["title"])
                    assert other == panel["title"], f"{name}: {other!r} overlaps {panel['title']!r}"


# ---- PromQL ----------------------------------------------------------------------------------

def all_raw_queries(dashboards: dict[str, Dashboard]) -> list[tuple[str, str, str]]:
    return [query for board in dashboards.values() for query in raw_queries(board)]


def test_every_metric_is_in_the_contract(dashboards):
    unknown = [(board, panel, name) for board, panel, expr in all_raw_queries(dashboards)
               for name in metric_names(expr) if name not in METRICS]
    assert not unknown, unknown


def test_every_query_selects_a_camfleet_metric(dashboards):
    assert all(metric_names(expr) for _, _, expr in all_raw_queries(dashboards))


def test_every_label_is_one_the_metric_has(dashboards):
    wrong = []
    for board, panel, expr in all_raw_queries(dashboards):
        selected = set().union(*(METRICS[m] for m in metric_names(expr) if m in METRICS))
        for label, metric in label_names(expr):
            allowed = METRICS.get(metric, frozenset()) if metric else selected
            if label not in allowed | SCRAPE_LABELS:
                wrong.append((board, panel, label, metric))
    assert not wrong, wrong


def test_every_contract_metric_has_a_panel(dashboards):
    used = {name for _, _, expr in all_raw_queries(dashboards) for name in metric_names(expr)}
    base = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    missing = {re.sub(r"_(bucket|sum|count)$", "", name) for name in METRICS} - base
    assert not missing, sorted(missing)


def test_queries_use_only_defined_variables(dashboards):
    for name, board in dashboards.items():
        defined = {v["name"] for v in board["templating"]["list"]} | GRAFANA_BUILTINS
        for _, panel, expr in raw_queries(board):
            assert variables_in(expr) <= defined, (name, panel, variables_in(expr) - defined)


def test_every_query_parses_with_promtool(tmp_path, dashboards):
    # given every query, variables substituted, as a recording rule
    queries = dashboard_queries(annotations=True) + dashboard_queries("gate-1")
    rules = {"groups": [{"name": "camfleet-dashboards", "rules": [
        {"record": f"camfleet_dashboard_query_{i}", "expr": expr}
        for i, (_, _, expr) in enumerate(queries)]}]}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules, width=1000))
    # when promtool checks them with Prometheus' own parser
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=60, check=False)
    # then every one parses
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(queries)} rules found" in result.stdout, result.stdout


def test_dashboard_queries_fill_in_every_variable():
    everything = dashboard_queries(annotations=True)
    one = dashboard_queries("gate-1", annotations=True)
    assert everything and len(one) == len(everything)
    assert not [q for q in everything + one if "$" in q.expr or "[[" in q.expr]
    camera = [q.expr for q in one if q.dashboard == "camfleet / Camera" and "camera=~" in q.expr]
    assert camera and all('camera=~"gate\\\\-1"' in expr for expr in camera), camera[:1]
    assert any("[1m]" in q.expr for q in everything)
    panels_ = {(q.dashboard, q.panel) for q in everything}
    assert ("camfleet / Fleet", "Drops by reason") in panels_
    assert ("camfleet / Camera", "variable $camera") in panels_


def test_annotations_by_default_left_out_of_dashboard_queries():
    assert not [q for q in dashboard_queries() if q.panel.startswith("annotation: ")]
    assert [q for q in dashboard_queries(annotations=True) if q.panel.startswith("annotation: ")]


@pytest.mark.parametrize("expr, metrics, labels", [
    ('sum by (reason) (rate(camfleet_frames_dropped_total{camera=~"$camera"}[5m]))',
     {"camfleet_frames_dropped_total"},
     [("camera", "camfleet_frames_dropped_total"), ("reason", None)]),
    ('histogram_quantile(0.9, sum by (le) (rate(x_bucket{le!="+Inf"}[$__rate_interval])))',
     {"x_bucket"}, [("le", None), ("le", "x_bucket")]),
    ("a / on (camera) group_left (fleet) b offset 5m > bool 1 unless c",
     {"a", "b", "c"}, [("camera", None), ("fleet", None)]),
    ('up{job="a}b"} or vector(0)', {"up"}, [("job", "up")]),
])
def test_names_are_read_out_of_promql(expr, metrics, labels):
    assert metric_names(expr) == metrics
    assert sorted(label_names(expr), key=str) == sorted(labels, key=str)


def test_camera_dashboard_has_a_camera_variable(dashboards):
    variables = {v["name"]: v for v in dashboards["camfleet-camera.json"]["templating"]["list"]}
    camera = variables["camera"]
    assert camera["type"] == "query"
    assert re.fullmatch(r"label_values\(camfleet_frames_captured_total(\{.*\})?, camera\)",
                        camera["query"]), camera["query"]
    for _, panel, expr in raw_queries(dashboards["camfleet-camera.json"], annotations=False,
                                      variables=False):
        if metric_names(expr) & {m for m, labels in METRICS.items() if "camera" in labels}:
            assert 'camera=~"$camera"' in expr, panel


def test_scaling_decisions_are_annotations(dashboards):
    for name, board in dashboards.items():
        found = [a for a in board["annotations"]["list"]
                 if "camfleet_autoscaler_decisions_total" in metric_names(a.get("expr", ""))]
        assert found, f"{name}: no annotation on scaling decisions"
        assert all(a["enable"] and "{{action}}" in a["titleFormat"] for a in found)


# ---- Prometheus ------------------------------------------------------------------------------

def test_prometheus_config_passes_promtool():
    result = subprocess.run([promtool(), "check", "config", str(PROMETHEUS_YML)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_prometheus_scrapes_camfleet_and_ray():
    jobs = {job["job_name"]: job for job in
            yaml.safe_load(PROMETHEUS_YML.read_text())["scrape_configs"]}
    camfleet = jobs["camfleet"]
    assert camfleet["scrape_interval"] == "5s"
    assert camfleet["static_configs"] == [{"targets": ["127.0.0.1:9450"]}]
    assert jobs["ray"]["file_sd_configs"] == [
        {"files": ["/tmp/ray/prom_metrics_service_discovery.json"]}]


# ---- Grafana provisioning --------------------------------------------------------------------

def test_grafana_datasource_is_the_dashboards_default(dashboards):
    config = yaml.safe_load((PROVISIONING / "datasources" / "camfleet.yaml").read_text())
    [source] = config["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is False
    for name, board in dashboards.items():
        variable = next(v for v in board["templating"]["list"] if v["name"] == "datasource")
        assert variable["current"]["value"] == source["uid"], name


def test_grafana_dashboard_provider_loads_a_camfleet_folder():
    config = yaml.safe_load((PROVISIONING / "dashboards" / "camfleet.yaml").read_text())
    [provider] = config["providers"]
    assert provider["type"] == "file" and provider["folder"] == "camfleet"
    path = provider["options"]["path"]
    assert path in (REPO / "deploy" / "observability.md").read_text(), \
        "deploy/observability.md must say where to mount dashboards/"

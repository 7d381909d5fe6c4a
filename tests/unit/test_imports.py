"""Imports flow one way, top to bottom through these layers; none runs back up or in a cycle.

    commands   fleet.cli, fleet.bench.*, fleet.report*      (cli may call bench; never back)
    wiring     fleet.runtime
    actors     actors.*
    control    fleet.controller, fleet.changes, fleet.pools, fleet.handoff, fleet.rayactors
    pipeline   fleet.camera, sinks, detectors, motion, sources, stats, policy, accounting, metrics,
               batching, tracking, reorder, stillness, zones, push, feed
    base       fleet.config*, fleet.frames, fleet.errors, fleet.redact, fleet.logsafe,
               fleet.imaging, fleet.actorsys, fleet.rotation

Read from the source with ``ast`` (imports inside functions count too), so the test sees what
a reader sees. And ``camfleet validate`` imports no Ray.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("commands", ("fleet.cli", "fleet.__main__", "fleet.bench", "fleet.report", "fleet.live")),
    ("wiring", ("fleet.runtime",)),
    ("actors", ("actors",)),
    ("control", ("fleet.controller", "fleet.changes", "fleet.pools", "fleet.handoff",
                 "fleet.rayactors")),
    ("pipeline", ("fleet.camera", "fleet.sinks", "fleet.detectors", "fleet.motion",
                  "fleet.sources", "fleet.stats", "fleet.policy", "fleet.accounting",
                  "fleet.metrics", "fleet.batching", "fleet.tracking", "fleet.reorder",
                  "fleet.stillness", "fleet.zones", "fleet.push", "fleet.feed")),
    ("base", ("fleet.config", "fleet.frames", "fleet.errors", "fleet.redact", "fleet.logsafe",
              "fleet.imaging", "fleet.actorsys", "fleet.rotation", "fleet")),
]
NO_RAY = ("fleet.config", "fleet.policy", "fleet.detectors", "fleet.camera", "fleet.controller",
          "fleet.pools", "fleet.actorsys", "fleet.frames", "fleet.accounting", "fleet.stats",
          "fleet.batching", "fleet.tracking", "fleet.reorder", "fleet.stillness", "fleet.zones",
          "fleet.push", "fleet.sinks", "fleet.changes", "fleet.facesize", "fleet.logsafe",
          "fleet.rotation")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1],
                                 *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for d in ("fleet", "actors") for p in (REPO / d).rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name}
            for name, path in modules.items()}


def layer_of(module: str) -> int:
    best = (-1, -1)  # (length of the matching prefix, layer index)
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                best = max(best, (len(prefix), i))
    assert best[1] >= 0, f"{module} is in no layer: add it to LAYERS"
    return best[1]


def test_every_import_points_down_or_sideways():
    wrong = [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
             for a, targets in graph().items() for b in targets if layer_of(b) < layer_of(a)]
    assert not wrong, "imports that run back up the layers:\n" + "\n".join(sorted(wrong))


def test_bench_and_report_never_import_the_cli():
    wrong = [f"{a} imports {b}" for a, targets in graph().items()
             if a.startswith(("fleet.bench", "fleet.report")) for b in targets if b == "fleet.cli"]
    assert not wrong


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, node])):
                return found
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start, [])):
            return found
    return None


def test_no_import_cycle():
    # a package's __init__ re-exporting its own submodules is not a cycle between modules
    edges = {a: {b for b in t if not a.startswith(b + ".")} for a, t in graph().items()}
    cycle = find_cycle(edges)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_checks_can_fail():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert layer_of("fleet.frames") > layer_of("fleet.camera") > layer_of("fleet.controller")


@pytest.mark.parametrize("module", NO_RAY)
def test_core_modules_import_no_ray(module):
    code = f"import sys, {module}; bad = [m for m in sys.modules if m.split('.')[0] == 'ray']; " \
           "print(bad[:3]); sys.exit(1 if bad else 0)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, f"{module} pulls in Ray: {result.stdout}{result.stderr}"


def test_validate_imports_no_ray_numpy_or_opencv():
    code = ("import sys, time; t = time.perf_counter(); from fleet.cli import main; "
            "rc = main(['validate', 'config/demo.yaml']); "
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'numpy', 'cv2', "
            "'matplotlib'}); print('HEAVY', heavy, round(time.perf_counter() - t, 3)); "
            "sys.exit(rc or bool(heavy))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HEAVY []" in result.stdout

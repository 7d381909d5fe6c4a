"""Imports flow one way, top to bottom through these layers; none runs back up or in a cycle.
Each layer is a folder (or, for the base, the modules at the top of ``fleet/``), so the tree
and this rule are one thing:

    commands   fleet/cli.py, live.py, feed.py, __main__.py, fleet/bench/, fleet/report/
    actors     actors/: every Ray actor, and all the Ray glue (runtime, handoff, rayactors)
    control    fleet/control/: controller, pools, policy, changes, stats, metrics, actorsys
    pipeline   fleet/pipeline/ (per camera, per frame) and the plug-in families beside it:
               fleet/sources/, fleet/sinks/, fleet/detectors/
    base       fleet/config/, fleet/frames.py, errors.py, vocab.py, backoff.py, redact.py,
               logsafe.py, imaging.py

Read from the source with ``ast`` (imports inside functions count too), so the test sees what
a reader sees. And ``camfleet validate`` imports no Ray.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path


from tests.conftest import REPO

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("commands", ("fleet.cli", "fleet.__main__", "fleet.bench", "fleet.report", "fleet.live",
                  "fleet.feed")),
    ("actors", ("actors",)),
    ("control", ("fleet.control",)),
    ("pipeline", ("fleet.pipeline", "fleet.sources", "fleet.sinks", "fleet.detectors")),
    ("base", ("fleet.config", "fleet.frames", "fleet.errors", "fleet.redact", "fleet.logsafe",
              "fleet.imaging", "fleet.backoff", "fleet.vocab", "fleet")),
]
# Everything below the actors imports no Ray
NO_RAY = ("fleet.config", "fleet.frames", "fleet.errors", "fleet.redact", "fleet.logsafe",
          "fleet.imaging", "fleet.backoff", "fleet.vocab", "fleet.control", "fleet.pipeline",
          "fleet.sources", "fleet.sinks", "fleet.detectors")


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
    assert layer_of("fleet.frames") > layer_of("fleet.pipeline.camera") \
        > layer_of("fleet.control.controller") > layer_of("actors.runtime")


def below_the_actors() -> list[str]:
    return sorted(m for m in graph() if any(m == p or m.startswith(p + ".") for p in NO_RAY))


def test_nothing_below_the_actors_imports_ray():
    # every module of those layers, imported one after another in a fresh process: the first
    # whose import pulls Ray in is named
    modules = below_the_actors()
    assert len(modules) > 40 and "fleet.pipeline.camera" in modules
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    before = set(sys.modules)\n"
            "    importlib.import_module(name)\n"
            "    if any(m.split('.')[0] == 'ray' for m in set(sys.modules) - before):\n"
            "        print(name); sys.exit(1)\n")
    result = subprocess.run([sys.executable, "-c", code, *modules], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"pulls in Ray: {result.stdout}{result.stderr}"


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

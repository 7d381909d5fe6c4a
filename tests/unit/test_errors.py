"""Every exception camfleet defines lives in ``fleet/errors.py``, in the tree its docstring draws;
the modules that used to define one still export it; and camfleet raises its own classes, not a
bare ``RuntimeError``. Read from the source with ``ast``, so a new module is checked unasked.

A module's private exception (``_TooDeep``: a signal between two of its functions, caught before
it leaves) stays where it is used, and is not checked here.
"""

from __future__ import annotations

import ast
import builtins
import importlib
from pathlib import Path

import pytest

import fleet.errors
from tests.conftest import REPO

# While the tree moves in, modules other engineers are changing still define these classes
# (fleet/sinks/); each class body becomes an import from fleet.errors, then its name goes.
PENDING_MOVES: set[str] = set()
# ... and still raise a bare RuntimeError here (what each should raise instead: the batch
# queue DetectorError, the hand-off ActorLostError, the benchmarks BenchError).
PENDING_RAISES: tuple[str, ...] = ()
BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                      if isinstance(value, type) and issubclass(value, BaseException)}


def sources() -> list[Path]:
    return sorted(p for d in ("fleet", "actors") for p in (REPO / d).rglob("*.py"))


def exception_classes() -> set[tuple[str, str]]:
    """(file, class) for every class that derives, through any chain of bases named in the
    source, from a built-in exception."""
    classes: dict[tuple[str, str], set[str]] = {}
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b).rpartition(".")[2] for b in node.bases}
                classes[(str(path.relative_to(REPO)), node.name)] = bases
    known = set(BUILTIN_EXCEPTIONS)
    found: set[tuple[str, str]] = set()
    while True:  # until no class joins: a base may be defined after the class that uses it
        more = {key for key, bases in classes.items() if key not in found and bases & known}
        if not more:
            return found
        found |= more
        known |= {name for _, name in more}


def test_every_exception_class_is_defined_in_fleet_errors():
    found = exception_classes()
    assert ("fleet/errors.py", "ActorLostError") in found  # the search sees the tree
    elsewhere = sorted((path, name) for path, name in found if path != "fleet/errors.py"
                       and not name.startswith("_") and name not in PENDING_MOVES)
    assert not elsewhere, ("define these in fleet/errors.py (and import them where they were):\n"
                           + "\n".join(f"{path}: {name}" for path, name in elsewhere))


def drawn_tree() -> dict[str, str | None]:
    """The docstring's drawing as {class: its parent}, read from the indentation."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []  # (column of the name, name) of the open branches
    for line in (fleet.errors.__doc__ or "").splitlines():
        if not line.startswith("    "):  # the drawing is indented, the prose is not
            continue
        words = line.replace("├──", " ").replace("└──", " ").replace("│", " ").split()
        if not words or not (words[0].isidentifier() and words[0][0].isupper()):
            continue  # a note's second line
        column = line.index(words[0])
        while stack and stack[-1][0] >= column:
            stack.pop()
        parents[words[0]] = stack[-1][1] if stack else None
        stack.append((column, words[0]))
    return parents


def test_the_docstring_draws_the_whole_tree_as_the_classes_are():
    defined = {name: value for name, value in vars(fleet.errors).items()
               if isinstance(value, type) and issubclass(value, BaseException)
               and value.__module__ == "fleet.errors"}
    drawn = drawn_tree()
    assert set(drawn) == set(defined)
    for name, parent in drawn.items():
        first_base = defined[name].__bases__[0]
        assert first_base.__name__ == (parent or "Exception"), name


@pytest.mark.parametrize("module, name", [
    ("fleet.control.actorsys", "ActorLostError"),
    ("fleet.control.actorsys", "ActorTimeoutError"),
    ("fleet.detectors.base", "SettingError"),
    ("fleet.detectors", "SettingError"),
    ("fleet.report.load", "ReportError"),
    ("fleet.report", "ReportError"),
    ("fleet.bench.measure", "BaselineError"),
    ("actors.runtime", "ControllerGone"),  # imports Ray only inside its functions
])
def test_where_a_class_used_to_be_it_still_imports(module, name):
    assert getattr(importlib.import_module(module), name) is getattr(fleet.errors, name)


def bare_runtime_errors() -> set[str]:
    found = set()
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                    and isinstance(node.exc.func, ast.Name) and node.exc.func.id == "RuntimeError":
                found.add(str(path.relative_to(REPO)))
    return found


def test_camfleet_raises_its_own_classes_not_a_bare_runtime_error():
    wrong = {path for path in bare_runtime_errors() if not path.startswith(PENDING_RAISES)}
    assert not wrong, f"raise a class of fleet/errors.py instead, in: {', '.join(sorted(wrong))}"

"""CPU time by role in this process's tree: where a fleet's cores go.

Reads ``/proc`` (Linux) for this process and every descendant: the embedded Ray's GCS and
raylet are the driver's children, and its workers the raylet's. A Ray worker is named by its
actor class (``ray::CameraWorker``...), which gives its role. Only processes this run started
are counted, never another Ray on the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

ROLES = (("ray::DetectorWo", "detectors"), ("ray::CameraWork", "cameras"),
         ("ray::Controller", "controller"), ("raylet", "raylet"), ("gcs_server", "gcs"))
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(name, parent pid, CPU seconds) of a process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    return name, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def role(name: str, pid: int, root: int) -> str:
    if pid == root:
        return "driver"
    for prefix, label in ROLES:
        if name.startswith(prefix):
            return label
    return "other"


def snapshot(root: int | None = None) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of ``root`` (this process) and its descendants, by pid."""
    root = root or os.getpid()
    procs: dict[int, tuple[str, int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                procs[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (_, parent, _) in procs.items():
        children.setdefault(parent, []).append(pid)
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            name, _, cpu = procs[pid]
            tree[pid] = (role(name, pid, root), cpu)
            todo.extend(children.get(pid, []))
    return tree


def cores_by_role(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
                  seconds: float) -> dict[str, float]:
    """Cores each role used between two snapshots (a process started between them counts
    from zero; one that ended is left out)."""
    used: dict[str, float] = {}
    for pid, (label, cpu) in after.items():
        used[label] = used.get(label, 0.0) + cpu - before.get(pid, (label, 0.0))[1]
    return {label: round(value / seconds, 3) for label, value in sorted(used.items())}


def pin(tree: dict[int, tuple[str, float]], cores_for: dict[str, set[int]],
        default: set[int]) -> int:
    """Pin every thread of every process in ``tree`` to the cores of its role (``default``
    for roles not named); returns how many threads were pinned. A process that has ended is
    skipped. Threads started later inherit their creator's cores."""
    pinned = 0
    for pid, (label, _) in tree.items():
        cores = cores_for.get(label, default)
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(tid, cores)
                pinned += 1
            except OSError:
                pass
    return pinned

"""What a fleet's processes and Ray's object store hold, read from outside the fleet.

For the modes that watch a fleet rather than time it (``bench soak``, ``bench scale``): each
actor's process (RSS, private RSS, fds, threads) and the object store's use.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

MIB = 2**20


def process_stats(pid: int) -> dict[str, float] | None:
    """RSS (MiB), open fds and threads of one local process; None if it is gone.

    RSS counts the pages of the object store's shared memory the process has touched (a camera
    writes frames there, a detector reads them), so it is also split: ``private_mib`` is RSS
    less shared pages (Linux: RssAnon), the process's own heap.
    """
    import psutil

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            mem = proc.memory_info()
            shared = getattr(mem, "shared", 0)
            return {"rss_mib": round(mem.rss / MIB, 2),
                    "private_mib": round((mem.rss - shared) / MIB, 2),
                    "fds": proc.num_fds(), "threads": proc.num_threads()}
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


class StoreProbe:
    """The object store's use, from the raylet's own store stats (what ``ray memory
    --stats-only`` prints), read a few times per sample: frames come and go every few tens of
    milliseconds, so one reading is mostly luck."""

    READS, APART_S = 5, 0.2

    def __init__(self, address: str):
        from ray._private.internal_api import get_state_from_address

        self.state = get_state_from_address(address)  # once: a GCS client per read would leak

    def read(self) -> tuple[float, int, float] | None:
        """(MiB used, objects, MiB spilled so far) now; None if the raylet did not answer."""
        from ray._private.internal_api import get_memory_info_reply

        try:
            stats = get_memory_info_reply(self.state, timeout_seconds=10).store_stats
        except Exception:  # noqa: BLE001 - a missed reading, not a failed run
            return None
        return (stats.object_store_bytes_used / MIB, int(stats.num_local_objects),
                stats.spilled_bytes_total / MIB)

    def sample(self) -> dict[str, float | None]:
        reads = []
        for i in range(self.READS):
            if i:
                time.sleep(self.APART_S)
            if (r := self.read()) is not None:
                reads.append(r)
        if not reads:
            return dict.fromkeys(("mib", "mib_min", "mib_max", "objects", "objects_min",
                                  "spilled_mib"))
        return {"mib": round(statistics.mean(r[0] for r in reads), 2),
                "mib_min": round(min(r[0] for r in reads), 2),
                "mib_max": round(max(r[0] for r in reads), 2),
                "objects": round(statistics.mean(r[1] for r in reads), 2),
                "objects_min": min(r[1] for r in reads),
                "spilled_mib": round(reads[-1][2], 2)}


class ActorProcesses:
    """Which process each of the fleet's actors runs in (asked once per actor, via ``info``)."""

    def __init__(self) -> None:
        import ray

        self.node = ray.get_runtime_context().get_node_id()
        self.where: dict[str, tuple[int, str]] = {}  # actor id -> (pid, node)

    def current(self, controller: Any) -> list[tuple[str, str, str]]:
        """(kind, name, actor id) of every live camera and detector actor."""
        found = [("camera", cid, ref.id) for cid, ref in dict(controller.cameras).items()]
        for name, pool in dict(controller.pools).items():
            found += [("detector", name, ref.id) for ref in list(pool.live())]
        return found

    def pid(self, controller: Any, actor: str) -> int | None:
        """The actor's pid if it runs on this node (psutil sees only local processes)."""
        import ray

        if actor not in self.where:
            refs = [*dict(controller.cameras).values(),
                    *(r for p in dict(controller.pools).values() for r in list(p.live()))]
            ref = next((r for r in refs if r.id == actor), None)
            if ref is None:
                return None
            try:
                info = ray.get(ref.handle.info.remote(), timeout=10)
            except Exception:  # noqa: BLE001 - restarting or gone: try again next sample
                return None
            self.where[actor] = (int(info["pid"]), str(info["node"]))
        pid, node = self.where[actor]
        return pid if node == self.node else None

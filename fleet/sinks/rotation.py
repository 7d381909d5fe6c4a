"""Files a run keeps adding to, kept in bounds: size-rotated logs (``events.jsonl``,
``stats.jsonl``), the parts a reader must read to see all of one, and the snapshot folder
pruned by age and by a disk budget.

A log past ``rotate_bytes`` is renamed ``<name>.1`` (``.1`` to ``.2`` and so on first, the oldest
beyond ``keep_files`` deleted) and a new one is started. Several camera actors on a node append
to one events file (``O_APPEND``), so rotation happens under an ``flock`` on ``<name>.lock`` and
every writer checks, before each write, whether the name still points at the file it holds
open; when not (another writer rotated it), it reopens. A batch written between another
writer's rename and its own check lands at the end of ``<name>.1``: late, never lost.

Imports nothing of camfleet: the sinks, the controller, the live feed and the report share it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # no room, or a file-size limit


def is_disk_full(error: OSError) -> bool:
    return error.errno in DISK_FULL_ERRNOS


def rotated_paths(path: Path) -> list[Path]:
    """Every part of a log that exists, oldest first: ``<name>.N`` ... ``<name>.1``, ``<name>``."""
    older = []
    n = 1
    while (part := path.with_name(f"{path.name}.{n}")).is_file():
        older.append(part)
        n += 1
    return [*reversed(older), *([path] if path.is_file() else [])]


def rotate(path: Path, keep_files: int) -> None:
    """``<name>`` -> ``<name>.1`` -> ... -> ``<name>.<keep_files>``; the oldest beyond goes."""
    for n in range(keep_files, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        newer = path if n == 1 else path.with_name(f"{path.name}.{n - 1}")
        if n == keep_files:
            with contextlib.suppress(FileNotFoundError):
                older.unlink()
        with contextlib.suppress(FileNotFoundError):
            os.replace(newer, older)
    if keep_files == 0:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path.with_name(f"{path.name}.lock"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class AppendLog:
    """An ``O_APPEND`` file that rotates past ``rotate_bytes`` (0: never). ``write`` raises the
    ``OSError`` of a failed write (a full disk: :func:`is_disk_full`); rotation itself needs no
    space (renames, and deleting the oldest part frees some)."""

    def __init__(self, path: Path, rotate_bytes: int = 0, keep_files: int = 5):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.rotate_bytes = rotate_bytes
        self.keep_files = keep_files
        self.fd = self._open()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, data: bytes | memoryview, may_rotate: bool = True) -> int:
        """Bytes written (a full disk can cut a write short; the caller writes the rest, with
        ``may_rotate`` false so a line is never split across two files)."""
        if self.rotate_bytes and may_rotate:
            self._rotate_if_due()
        return os.write(self.fd, data)

    def _rotate_if_due(self) -> None:
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            named = None
        held = os.fstat(self.fd)
        if named is None or named.st_ino != held.st_ino:  # another writer rotated it
            self._reopen()
            return
        if named.st_size < self.rotate_bytes:
            return
        with _locked(self.path):
            with contextlib.suppress(FileNotFoundError):
                if os.stat(self.path).st_ino == held.st_ino:  # nobody rotated it meanwhile
                    rotate(self.path, self.keep_files)
            self._reopen()

    def _reopen(self) -> None:
        fd = self._open()
        os.close(self.fd)
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @property
    def closed(self) -> bool:
        return self.fd < 0


class SnapshotPruner:
    """Keeps a snapshot folder (and its camera subfolders) within ``max_age_days`` and
    ``max_mb``, oldest first, by file time. ``maybe_prune`` is cheap (a clock compare) and runs
    a check at most every ``interval_s``, in a thread of its own so the camera never waits for
    a scan. Only one camera of a node scans in an interval: the first to take
    ``<folder>/.prune.lock`` and find ``<folder>/.pruned`` older than the interval."""

    def __init__(self, folder: Path, max_age_days: float | None, max_mb: float,
                 interval_s: float):
        self.folder = folder
        self.max_age_s = None if max_age_days is None else max_age_days * 86400
        self.max_bytes = int(max_mb * 1_000_000)
        self.interval_s = interval_s
        self.next_check = time.monotonic() + interval_s * random.random()  # spread cameras out
        self.thread: threading.Thread | None = None
        self.deleted = 0

    @property
    def enabled(self) -> bool:
        return self.max_age_s is not None or self.max_bytes > 0

    def soon(self) -> None:
        """Check at the next ``maybe_prune`` (a snapshot just failed for want of space)."""
        self.next_check = 0.0

    def maybe_prune(self) -> None:
        now = time.monotonic()
        if not self.enabled or now < self.next_check or (self.thread and self.thread.is_alive()):
            return
        self.next_check = now + self.interval_s
        self.thread = threading.Thread(target=self._prune_logged, daemon=True,
                                       name="snapshot-prune")
        self.thread.start()

    def _prune_logged(self) -> None:
        try:
            self.prune()
        except OSError as error:
            log.warning("snapshots: pruning %s failed: %s", self.folder, error)

    def prune(self, force: bool = False) -> int:
        """Delete what is too old, then the oldest until within budget; how many went."""
        if not self.enabled or not self.folder.is_dir():
            return 0
        fd = os.open(self.folder / ".prune.lock", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # another camera is at it
            marker = self.folder / ".pruned"
            with contextlib.suppress(FileNotFoundError):
                if not force and time.time() - marker.stat().st_mtime < self.interval_s * 0.9:
                    return 0  # another camera of this node checked lately
            with contextlib.suppress(OSError):
                marker.touch()
            deleted = self._delete(self._files())
        finally:
            os.close(fd)
        self.deleted += deleted
        if deleted:
            log.info("snapshots: deleted %d old snapshots in %s", deleted, self.folder)
        return deleted

    def _files(self) -> list[tuple[float, int, str]]:
        """(mtime, size, path) of every JPEG, oldest first."""
        found = []
        for folder, _, names in os.walk(self.folder):
            for name in names:
                if name.endswith(".jpg") and not name.startswith("."):
                    path = os.path.join(folder, name)
                    with contextlib.suppress(FileNotFoundError):
                        st = os.stat(path)
                        found.append((st.st_mtime, st.st_size, path))
        return sorted(found)

    def _delete(self, files: list[tuple[float, int, str]]) -> int:
        total = sum(size for _, size, _ in files)
        too_old = -math.inf if self.max_age_s is None else time.time() - self.max_age_s
        deleted = 0
        for mtime, size, path in files:
            over = self.max_bytes > 0 and total > self.max_bytes
            if mtime >= too_old and not over:
                break  # oldest first: the rest are newer and within budget
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                deleted += 1
            total -= size
        return deleted


class LineLog:
    """A JSON-lines log written a line at a time (``stats.jsonl``), rotated by size. A line
    that cannot be written (a full disk) is counted in ``failed`` and logged the 1st, 2nd, 4th
    ... time, never raised: the next line says the same and more."""

    def __init__(self, path: Path, rotate_bytes: int = 0, keep_files: int = 5):
        self.file = AppendLog(path, rotate_bytes, keep_files)
        self.failed = 0

    @property
    def closed(self) -> bool:
        return self.file.closed

    def write(self, record: dict[str, Any]) -> bool:
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        done = 0
        try:
            while done < len(data):  # cut short by a full disk: the rest, not a torn line
                done += self.file.write(memoryview(data)[done:], may_rotate=done == 0)
            return True
        except OSError as error:
            self.failed += 1
            if self.failed & (self.failed - 1) == 0:
                log.warning("%s: a line could not be written (%s; %d so far)", self.file.path,
                            error.strerror or error, self.failed)
            return False

    def close(self) -> None:
        self.file.close()


def write_atomically(path: Path, text: str) -> None:
    """``path`` holds the old content or the new, never a part: a temporary file beside it,
    synced, then renamed over it."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise

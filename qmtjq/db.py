"""Database helpers shared by the apps."""

import collections
import contextlib
import os
import threading
from pathlib import Path

from django.db import connection

try:
    import fcntl
except ImportError:  # Windows: one web process (waitress); the thread lock is enough there
    fcntl = None


class FifoLock:
    """A lock handed to its waiters in arrival order.

    threading.Lock wakes an arbitrary waiter (often the thread that just
    released it), so under load some uploads wait many turns while others
    wait none: the tail latency grows with no gain in throughput.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held = False
        self._waiters: collections.deque[threading.Lock] = collections.deque()

    def acquire(self) -> None:
        with self._guard:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        turn.acquire()  # released by the holder handing over; _held stays True

    def release(self) -> None:
        with self._guard:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._held = False


class _SqliteWriteLock:
    """One writer at a time per SQLite file: first among this process's threads, then across processes.

    SQLite has a single writer anyway; queuing here is far cheaper than many
    writers polling in SQLite's busy handler (benchmarks/ingest.py: p99 1.1 s
    → ~0.3 s at 16 clients with one process). With several web processes
    (serve --web-workers) an flock on `<database>-writelock` queues them in
    the kernel the same way.
    """

    def __init__(self) -> None:
        self._thread_lock = FifoLock()
        self._files: dict[str, int] = {}

    def _fd(self) -> int | None:
        name = str(connection.settings_dict.get("NAME") or "")
        if fcntl is None or not name or name == ":memory:" or name.startswith("file:"):
            return None
        fd = self._files.get(name)
        if fd is None:
            path = Path(f"{name}-writelock")
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            self._files[name] = fd
        return fd

    def __enter__(self):
        self._thread_lock.acquire()
        try:
            fd = self._fd()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise
        self._held = fd
        return self

    def __exit__(self, *exc_info):
        fd, self._held = self._held, None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()
        return False


_SQLITE_WRITES = _SqliteWriteLock()


def serialized_writes():
    """On SQLite, let one writer at a time in (threads of this process, then processes). No-op elsewhere.

    Server databases lock rows themselves.
    """
    return _SQLITE_WRITES if connection.vendor == "sqlite" else contextlib.nullcontext()


class VendorStatements:
    """Hand-written SQL built once per database vendor: `statements(db)["name"]`.

    `build(db)` makes the dict from the models' own table and column names and
    the backend's quoting; it runs on the first call for each vendor.
    """

    def __init__(self, build) -> None:
        self._build = build
        self._by_vendor: dict[str, dict[str, str]] = {}

    def __call__(self, db) -> dict[str, str]:
        statements = self._by_vendor.get(db.vendor)
        if statements is None:
            statements = self._by_vendor[db.vendor] = self._build(db)
        return statements

"""Database helpers shared by the apps."""

import contextlib
import threading

from django.db import connection

_SQLITE_WRITES = threading.Lock()


def serialized_writes():
    """On SQLite, let one thread of this process write at a time.

    SQLite has a single writer anyway; queuing on a lock here is far cheaper
    than many threads polling in SQLite's busy handler (measured with
    benchmarks/ingest.py: p99 1.1 s → ~0.3 s at 16 clients). Server databases
    lock rows themselves, so this is a no-op there.
    """
    return _SQLITE_WRITES if connection.vendor == "sqlite" else contextlib.nullcontext()

"""`python manage.py serve_cluster`: django-q2's cluster as `serve`'s child process.

The same cluster as `manage.py qcluster`, plus one guarantee: with
`--stop-on-stdin-eof` it stops (and takes its sentinel and worker processes
with it) as soon as its standard input closes. `serve` keeps the write end
of that pipe; the operating system closes it however `serve` ends — Ctrl+C,
a closed terminal, SIGKILL, a crash — so no cluster is ever left behind
running jobs for a server that is gone.
"""

import logging
import os
import signal
import sys
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand

logger = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 20.0  # running tasks finish first; jobs are idempotent if killed


def _wait_for_eof(fd: int, closed: threading.Event) -> None:
    # os.read on the raw descriptor, not sys.stdin: a thread blocked inside
    # sys.stdin's buffer holds its lock, and the processes django-q2 forks
    # would deadlock closing their inherited copy of sys.stdin.
    try:
        while os.read(fd, 4096):
            pass  # nobody writes; anything read is ignored
    except OSError:
        pass
    closed.set()


def _kill_own_group_later(delay: float) -> None:
    """Last resort when a graceful stop hangs: SIGKILL our process group (ours alone: we lead it)."""

    def kill() -> None:
        time.sleep(delay)
        logger.error("django-q2 cluster did not stop within %.0f s; killing its processes", delay)
        if os.name == "posix" and os.getpgid(0) == os.getpid():
            os.killpg(0, signal.SIGKILL)
        os._exit(1)

    threading.Thread(target=kill, name="cluster-stop-deadline", daemon=True).start()


class Command(BaseCommand):
    help = "Run the django-q2 cluster (as qcluster); with --stop-on-stdin-eof stop when stdin closes."

    def add_arguments(self, parser):
        parser.add_argument(
            "--stop-on-stdin-eof",
            action="store_true",
            help="Stop the cluster when standard input reaches end of file (used by `serve`).",
        )

    def handle(self, *args, stop_on_stdin_eof: bool, **options):
        from django_q.cluster import Cluster

        settings.SECRET_KEY  # noqa: B018 - fail early without a key, as qcluster does
        parent_gone = threading.Event()
        if stop_on_stdin_eof:
            threading.Thread(
                target=_wait_for_eof, args=(sys.stdin.fileno(), parent_gone), name="parent-watch", daemon=True
            ).start()
        cluster = Cluster()  # installs django-q2's own SIGTERM/SIGINT handlers (graceful stop)
        cluster.start()
        while cluster.sentinel is not None and cluster.sentinel.is_alive():
            if parent_gone.wait(0.5):
                logger.warning("serve is gone (its pipe closed); stopping the django-q2 cluster")
                _kill_own_group_later(STOP_GRACE_SECONDS)
                cluster.stop()
                break

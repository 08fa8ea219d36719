"""The django-q2 cluster as a child process of `manage.py serve` (`--jobs cluster`, POSIX only).

The child is `manage.py serve_cluster --stop-on-stdin-eof` in its own process
group: a terminal Ctrl+C reaches only `serve`, which stops the cluster in
order, and can kill its whole process tree if it hangs. The child watches its
stdin: `serve` never writes, and the operating system closes the pipe however
`serve` ends, so the cluster never outlives it.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

# `serve`'s log name, as before the cluster code moved out of the command.
logger = logging.getLogger("qmtjq.management.commands.serve")

IS_WINDOWS = os.name == "nt"
CLUSTER_STOP_TIMEOUT = 20.0  # django-q2 finishes running tasks first; jobs are idempotent if killed


class ClusterChild:
    """Start, watch and stop the cluster process; `stopping()` says whether serve is shutting down."""

    def __init__(
        self, *, say: Callable[[str], None], warn: Callable[[str], None], stopping: Callable[[], bool]
    ):
        self._say = say
        self._warn = warn
        self._stopping = stopping
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        manage_py = Path(settings.BASE_DIR) / "manage.py"
        popen_kwargs: dict = {}
        if IS_WINDOWS:  # pragma: no cover - refused by serve; kept for completeness
            popen_kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            # Own process group: a terminal Ctrl+C reaches only us, we stop the
            # cluster in order, and can kill its whole process tree if it hangs.
            popen_kwargs["start_new_session"] = True
        # The child watches its stdin: we never write, and the OS closes our end
        # however this process ends, so the cluster never outlives serve.
        self.process = subprocess.Popen(
            [sys.executable, str(manage_py), "serve_cluster", "--stop-on-stdin-eof"],
            cwd=settings.BASE_DIR,
            env=os.environ.copy(),
            stdin=subprocess.PIPE,
            **popen_kwargs,
        )
        self._say(f"django-q2 cluster started (pid {self.process.pid}).")
        threading.Thread(target=self._watch, name="qcluster-watch", daemon=True).start()

    def _watch(self) -> None:
        proc = self.process
        code = proc.wait()
        if not self._stopping():
            logger.error(
                "The django-q2 cluster (pid %s) exited with code %s: scheduled jobs are NOT running.",
                proc.pid,
                code,
            )

    def stop(self, *, force: Callable[[], bool]) -> None:
        """Stop gracefully within CLUSTER_STOP_TIMEOUT (or at once when `force()` turns true), then kill."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        try:
            # qcluster stops gracefully on SIGTERM as on SIGINT (running tasks
            # finish); unlike SIGINT, a SIGTERM that arrives while it is still
            # starting up ends it quietly instead of with a traceback.
            if IS_WINDOWS:  # pragma: no cover
                proc.send_signal(signal.CTRL_BREAK_EVENT)
            else:
                proc.terminate()
        except OSError:
            pass
        deadline = time.monotonic() + CLUSTER_STOP_TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline and not force():
            time.sleep(0.1)
        if proc.poll() is None:
            self._warn(f"django-q2 cluster (pid {proc.pid}) did not stop in time; killing it.")
            try:
                if IS_WINDOWS:  # pragma: no cover
                    proc.kill()
                else:
                    os.killpg(proc.pid, signal.SIGKILL)  # the whole tree (its own process group)
            except OSError:
                pass
            proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()

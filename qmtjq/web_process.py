"""`serve`'s multi-process web server: the `python -m qmtjq.web` child (granian), started and stopped in order.

The child runs in its own process group, so a Ctrl+C in the terminal reaches
only `serve`, which then stops the web server first (granian finishes the
requests in flight and stops its workers), then the jobs. The child also
stops by itself when `serve` dies without shutting down: it watches a pipe on
its standard input that the operating system closes when `serve` ends.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings

IS_WINDOWS = os.name == "nt"
READY_PATH = "/api/v1/auth/info"
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0


class WebServerFailed(RuntimeError):
    """The web server child could not start or stopped on its own."""


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _local_address(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 - where to knock, not where to listen
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class GranianProcess:
    """`python -m qmtjq.web` as a child; `run()` blocks until it ends, `stop()` ends it."""

    name = "granian"

    def __init__(
        self, *, host: str, port: int, workers: int, threads: int, log_level: str = "warning"
    ) -> None:
        self.host = host
        self.effective_port = port or _free_port(host)  # --port 0: pick one, as waitress does
        self.workers = workers
        self.threads = threads
        self.log_level = log_level
        self.process: subprocess.Popen | None = None
        self.stopping = False

    def start(self) -> None:
        popen_kwargs: dict = {}
        if IS_WINDOWS:  # pragma: no cover - Windows only
            popen_kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            popen_kwargs["start_new_session"] = True
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "qmtjq.web",
                f"--host={self.host}",
                f"--port={self.effective_port}",
                f"--workers={self.workers}",
                f"--threads={self.threads}",
                f"--log-level={self.log_level}",
                "--stop-on-stdin-eof",
            ],
            cwd=Path(settings.BASE_DIR),
            env=os.environ.copy(),
            stdin=subprocess.PIPE,
            **popen_kwargs,
        )

    def wait_ready(self) -> None:
        url = f"http://{_local_address(self.host)}:{self.effective_port}{READY_PATH}"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WebServerFailed(
                    f"the web server exited with code {self.process.returncode} while starting"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own local server
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise WebServerFailed(f"the web server did not answer {url} within {READY_TIMEOUT:.0f} s")

    def run(self) -> int:
        """Wait until the child ends (it should not by itself); returns its exit code."""
        while True:
            try:
                return self.process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue

    def stop(self, *, force=lambda: False) -> None:
        self.stopping = True
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            try:
                if IS_WINDOWS:  # pragma: no cover
                    proc.send_signal(signal.CTRL_BREAK_EVENT)
                else:
                    proc.send_signal(signal.SIGINT)  # granian: finish requests in flight, stop the workers
            except OSError:
                pass
            deadline = time.monotonic() + STOP_TIMEOUT
            while proc.poll() is None and time.monotonic() < deadline and not force():
                time.sleep(0.1)
            if proc.poll() is None:
                try:
                    if IS_WINDOWS:  # pragma: no cover
                        proc.kill()
                    else:
                        os.killpg(proc.pid, signal.SIGKILL)  # the main process and its workers
                except OSError:
                    pass
                proc.wait()
        if not IS_WINDOWS:
            try:  # a worker left behind by a main process that was killed
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass

"""Every child of `manage.py serve` stops with it, whatever the terminal does.

A real `serve` subprocess per case. "Terminal" cases put serve and a `tee`
in one process group, as a shell does for `serve | tee log`: Ctrl+C (SIGINT)
and a closed terminal (SIGHUP) reach both, so serve's stdout becomes a
broken pipe while it is shutting down. Other cases signal serve alone, or
kill it outright (the cluster must notice its parent is gone).
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name != "posix", reason="sends POSIX signals to the server process"),
]

BASE_DIR = Path(settings.BASE_DIR)
START_TIMEOUT = 90
STOP_TIMEOUT = 30


def _env(tmp_path: Path) -> dict:
    env = os.environ.copy()
    env.update(
        DJANGO_SETTINGS_MODULE="qmtjq.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        SECRET_KEY="e2e-test-secret-key-only-for-this-test-run",
        DEBUG="False",
        QMTJQ_ADMIN_PASSWORD="e2e-admin-password-123",
        Q_WORKERS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting to be reaped counts as gone)."""
    out = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(out) and not out.startswith("Z")


def _group_alive(pgid: int) -> bool:
    out = subprocess.run(["ps", "-A", "-o", "pgid=,stat="], capture_output=True, text=True, check=True).stdout
    return any(
        line.split()[0] == str(pgid) and not line.split()[1].startswith("Z") for line in out.splitlines()
    )


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


class Piped:
    """`python manage.py serve … | tee LOG` in its own process group, like a shell job."""

    def __init__(self, tmp_path: Path, jobs: str):
        self.log = tmp_path / "serve.log"
        self.errors = tmp_path / "serve.err"
        self.tee = subprocess.Popen(
            ["tee", str(self.log)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            process_group=0,  # a job of its own; serve joins it below
        )
        with self.errors.open("wb") as err:
            self.serve = subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--port", "0", "--jobs", jobs, "--threads", "2"],
                cwd=BASE_DIR,
                env=_env(tmp_path),
                stdin=subprocess.DEVNULL,
                stdout=self.tee.stdin,
                stderr=err,
                process_group=self.tee.pid,
            )
        self.tee.stdin.close()  # only serve writes into the pipe now

    def output(self) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return text + self.errors.read_text(encoding="utf-8", errors="replace")

    def wait_started(self) -> int | None:
        """Wait for the end of start-up; return the cluster's pid (None in-process)."""
        ok = _wait(
            lambda: "Press Ctrl+C" in self.output() or self.serve.poll() is not None,
            START_TIMEOUT,
        )
        assert ok and self.serve.poll() is None, f"serve did not start:\n{self.output()}"
        web = re.search(r"Web processes: \d+ \(granian, pid (\d+)\)", self.output())
        self.web = int(web.group(1)) if web else None
        match = re.search(r"django-q2 cluster started \(pid (\d+)\)", self.output())
        return int(match.group(1)) if match else None

    def cleanup(self, cluster: int | None) -> None:
        for proc in (self.serve, self.tee):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for group in (cluster, getattr(self, "web", None)):
            if group:
                try:
                    os.killpg(group, signal.SIGKILL)
                except OSError:
                    pass


@pytest.fixture
def piped(tmp_path):
    started = []

    def start(jobs):
        p = Piped(tmp_path, jobs)
        started.append(p)
        return p

    yield start
    for p in started:
        p.cleanup(getattr(p, "cluster", None))


def _assert_all_stopped(p: Piped, cluster: int | None, *, serve_exits: bool = True) -> None:
    if serve_exits:
        assert _wait(lambda: p.serve.poll() is not None, STOP_TIMEOUT), f"serve kept running:\n{p.output()}"
    if cluster:
        assert _wait(lambda: not _group_alive(cluster), STOP_TIMEOUT), (
            f"django-q2 cluster processes left behind:\n{p.output()}"
        )
    web = getattr(p, "web", None)
    if web:  # granian's main process and its web workers (their own process group)
        assert _wait(lambda: not _group_alive(web), STOP_TIMEOUT), f"web processes left behind:\n{p.output()}"
    assert "Traceback" not in p.errors.read_text(encoding="utf-8", errors="replace"), p.output()


def _group(p: Piped, signum) -> None:
    os.killpg(p.tee.pid, signum)


def _serve_only(p: Piped, signum) -> None:
    os.kill(p.serve.pid, signum)


CASES = {
    "ctrl-c in the terminal (SIGINT to serve and tee)": (_group, signal.SIGINT),
    "terminal closed (SIGHUP to serve and tee)": (_group, signal.SIGHUP),
    "SIGINT to serve only": (_serve_only, signal.SIGINT),
    "SIGTERM to serve only (service manager)": (_serve_only, signal.SIGTERM),
    "SIGHUP to serve only": (_serve_only, signal.SIGHUP),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cluster_stops_with_serve(piped, case):
    """However serve is told to stop, it exits and the django-q2 cluster with all its children is gone."""
    p = piped("cluster")
    p.cluster = cluster = p.wait_started()
    assert cluster and _group_alive(cluster)
    send, signum = CASES[case]
    send(p, signum)
    _assert_all_stopped(p, cluster)
    assert p.serve.returncode == 0, p.output()


def test_serve_runs_several_web_processes_by_default(piped):
    """On Linux the site is served by granian with one worker per CPU, in a process group of its own."""
    p = piped("off")
    p.wait_started()
    assert p.web and _group_alive(p.web), p.output()
    group = subprocess.run(
        ["ps", "-A", "-o", "pgid="], capture_output=True, text=True, check=True
    ).stdout.split()
    assert group.count(str(p.web)) >= 1 + min(os.cpu_count() or 1, 2), p.output()
    _serve_only(p, signal.SIGINT)
    _assert_all_stopped(p, None)
    assert p.serve.returncode == 0, p.output()


def test_cluster_stops_when_serve_is_killed(piped):
    """A serve killed outright (SIGKILL, a crash, a parent that dies with it) still takes the cluster with it."""
    p = piped("cluster")
    p.cluster = cluster = p.wait_started()
    assert cluster and _group_alive(cluster)
    os.kill(p.serve.pid, signal.SIGKILL)
    p.serve.wait()
    _assert_all_stopped(p, cluster, serve_exits=False)


@pytest.mark.parametrize(
    "case", ["ctrl-c in the terminal (SIGINT to serve and tee)", "terminal closed (SIGHUP to serve and tee)"]
)
def test_inprocess_serve_stops_from_the_terminal(piped, case):
    """In-process mode (the Windows default) exits cleanly on Ctrl+C or a closed terminal with a dead pipe."""
    p = piped("inprocess")
    assert p.wait_started() is None
    send, signum = CASES[case]
    send(p, signum)
    _assert_all_stopped(p, None)
    assert p.serve.returncode == 0, p.output()

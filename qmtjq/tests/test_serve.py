"""End to end: `manage.py serve` as a real subprocess, stopped with SIGINT.

Each test runs serve against its own fresh SQLite file with the production
settings module (WhiteNoise compressed storage, DEBUG off). That holds even
when the suite itself runs with DATABASE_URL=mysql://… in CI: these tests
check the process lifecycle, not the database backend.
Static files are collected into the project's STATIC_ROOT (`staticfiles/`,
git-ignored), exactly as `serve` does on a real installation.
"""

import http.cookiejar
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

import qmtjq
from qmtjq.management.commands import serve as serve_command

posix_only = pytest.mark.skipif(os.name != "posix", reason="sends POSIX signals to the server process")

BASE_DIR = Path(settings.BASE_DIR)
ADMIN_PASSWORD = "e2e-admin-password-123"
START_TIMEOUT = 60
STOP_TIMEOUT = 15


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """A running `manage.py serve` with its combined output collected in the background."""

    def __init__(self, tmp_path: Path, jobs: str, threads: str | None = "2", **extra_env: str):
        self.port = _free_port()
        self.db_path = tmp_path / "db.sqlite3"
        self.base = f"http://127.0.0.1:{self.port}"
        env = os.environ.copy()
        env.update(
            DJANGO_SETTINGS_MODULE="qmtjq.settings",  # not the test settings pytest exported
            DATABASE_URL=f"sqlite:///{self.db_path}",
            SECRET_KEY="e2e-test-secret-key-only-for-this-test-run",
            DEBUG="False",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            QMTJQ_ADMIN_USERNAME="admin",
            QMTJQ_ADMIN_PASSWORD=ADMIN_PASSWORD,
            Q_WORKERS="1",
            PYTHONUNBUFFERED="1",
            UPDATE_CHECK_STATE_FILE=str(tmp_path / "update_check.json"),
        )
        env.update(extra_env)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "serve",
                "--port",
                str(self.port),
                "--jobs",
                jobs,
                *(["--threads", threads] if threads else []),
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"serve exited early with {self.proc.returncode}:\n{self.output}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/v1/auth/info", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        pytest.fail(f"serve did not answer within {START_TIMEOUT}s:\n{self.output}")

    def get(self, path: str, opener=None):
        opener = opener or urllib.request.build_opener()
        return opener.open(f"{self.base}{path}", timeout=10)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"serve did not stop within {STOP_TIMEOUT}s after SIGINT:\n{self.output}")
        self._reader.join(timeout=5)
        return code

    def kill(self):
        """Cleanup after a failed test: the server and, in cluster mode, the cluster's process group."""
        if self.proc.poll() is not None:
            return  # exited by itself: serve stopped its cluster on the way out
        self.proc.kill()
        self.proc.wait()
        match = re.search(r"django-q2 cluster started \(pid (\d+)\)", self.output)
        if match:
            try:
                os.killpg(int(match.group(1)), signal.SIGKILL)
            except OSError:
                pass

    def db_rows(self, sql: str, *params):
        with sqlite3.connect(self.db_path, timeout=10) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture
def serve(tmp_path):
    started: list[Serve] = []

    def start(jobs: str, threads: str | None = "2", **extra_env: str) -> Serve:
        s = Serve(tmp_path, jobs, threads, **extra_env)
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()


def _admin_login(server: Serve) -> str:
    """Log in through the admin form; return the final URL."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with server.get("/admin/login/", opener) as resp:
        assert resp.status == 200
        page = resp.read().decode("utf-8")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": "admin", "password": ADMIN_PASSWORD, "next": "/admin/"}
    ).encode()
    with opener.open(f"{server.base}/admin/login/?next=/admin/", data=body, timeout=10) as resp:
        assert resp.status == 200
        return resp.url


@pytest.mark.slow
@posix_only
def test_serve_inprocess_end_to_end(serve):
    from qmtjq.tests.test_updates import ReleaseServer

    releases = ReleaseServer()  # a local release endpoint announcing a newer version
    server = serve("inprocess", threads=None, UPDATE_CHECK_URL=releases.url)  # the default threads
    server.wait_ready()

    with server.get("/admin/login/") as resp:
        assert resp.status == 200
    for path in ("/static/css/qmtjq.css", "/static/admin/css/base.css"):
        with server.get(path) as resp:
            assert resp.status == 200, path
            assert resp.read()
    assert _admin_login(server).endswith("/admin/")

    assert server.db_rows(
        "SELECT func, minutes FROM django_q_schedule WHERE name = ?", "positions: purge seen tokens"
    ) == [("positions.tasks.seen_tokens_purge", 10)]
    # The schedule is due on creation, so the in-process runner runs it right away.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = server.db_rows(
            "SELECT success FROM django_q_task WHERE func = 'positions.tasks.seen_tokens_purge'"
        )
        if rows:
            break
        time.sleep(0.25)
    assert rows == [(1,)], server.output

    deadline = time.monotonic() + 10
    while "99.1.0 is available" not in server.output and time.monotonic() < deadline:
        time.sleep(0.2)
    with server.get("/admin/login/") as resp:
        assert f"qmtjq {qmtjq.__version__}" in resp.read().decode("utf-8")  # the admin footer
    assert server.stop() == 0, server.output
    releases.close()
    out = server.output
    assert f"qmtjq {qmtjq.__version__}" in out  # the banner
    assert f"qmtjq 99.1.0 is available (this is {qmtjq.__version__})" in out
    assert releases.hits == 1
    assert f"http://127.0.0.1:{server.port}/admin/" in out
    assert "Jobs: inprocess" in out
    assert "Database: SQLite" in out
    assert "2 threads per process" in out  # SQLite with granian: 2 threads per web process
    assert "Created admin user admin (password from QMTJQ_ADMIN_PASSWORD)" in out
    assert ADMIN_PASSWORD not in out
    assert "Stopped." in out
    assert "Traceback" not in out


def _group_size(pgid: int) -> int:
    out = subprocess.run(["ps", "-A", "-o", "pid=,pgid="], capture_output=True, text=True, check=True).stdout
    return sum(1 for line in out.splitlines() if line.split()[1:] == [str(pgid)])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - exists, owned by someone else
        return True
    return True


@pytest.mark.slow
@posix_only
def test_serve_cluster_child_is_stopped(serve):
    server = serve("cluster")
    server.wait_ready()
    match = re.search(r"django-q2 cluster started \(pid (\d+)\)", server.output)
    assert match, server.output
    pid = int(match.group(1))
    # The cluster runs in its own process group (pgid == its pid) with its workers.
    assert os.getpgid(pid) == pid
    # Wait until the cluster is really up: qcluster, sentinel, 1 worker, monitor, pusher.
    deadline = time.monotonic() + 30
    while _group_size(pid) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _group_size(pid) >= 5, server.output

    assert server.stop() == 0, server.output
    deadline = time.monotonic() + 5
    while _group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(pid), f"qcluster processes left behind:\n{server.output}"
    assert "Jobs: cluster" in server.output
    assert "Stopped." in server.output
    assert "Traceback" not in server.output
    assert "did not stop in time" not in server.output


# --- argument checks (no server started) ---------------------------------------


def test_cluster_mode_refused_on_windows(monkeypatch):
    monkeypatch.setattr(serve_command, "IS_WINDOWS", True)
    with pytest.raises(CommandError, match="not supported on Windows"):
        call_command("serve", jobs="cluster")


def test_threads_must_be_positive():
    with pytest.raises(CommandError, match="threads"):
        call_command("serve", threads=0, jobs="off")


def test_default_threads_follow_the_database_and_the_server():
    """SQLite writes one at a time (2 per granian process, 4 for the one waitress); a network database gets 8."""
    assert serve_command.default_threads(vendor="sqlite", web_server=serve_command.WEB_GRANIAN) == 2
    assert serve_command.default_threads(vendor="sqlite", web_server=serve_command.WEB_WAITRESS) == 4
    assert serve_command.default_threads(vendor="mysql", web_server=serve_command.WEB_GRANIAN) == 8


def test_the_web_processes_learn_their_thread_count(monkeypatch):
    """`python -m qmtjq.web` exports its --threads before granian starts its workers (the feed's cap reads it)."""
    from qmtjq import web

    monkeypatch.setenv(web.WEB_THREADS_ENV, "unset")  # recorded, so the test leaves the variable as it was
    monkeypatch.delenv(web.WEB_THREADS_ENV)
    seen = {}

    class Server:
        def serve(self):
            seen["threads"] = os.environ.get(web.WEB_THREADS_ENV)

    monkeypatch.setattr(web, "build_server", lambda **kwargs: Server())
    assert web.main(["--threads", "3"]) == 0
    assert seen == {"threads": "3"}

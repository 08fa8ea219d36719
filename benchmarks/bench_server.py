"""The benchmarks' server harness: fresh databases, a server subprocess measured as a process tree.

Used by benchmarks/ingest.py (qmtjq and the jq2qmt peer) and benchmarks/remote.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

REPO = Path(__file__).resolve().parent.parent
SECRET_KEY = "benchmark-only-secret-key-not-for-production-use-0123456789"


# --- Databases ------------------------------------------------------------------


class SqliteDb:
    name = "sqlite"

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="qmtjq-bench-"))
        self.url = f"sqlite:///{self.tmp / 'bench.sqlite3'}"

    def create(self) -> None:
        pass  # migrate creates the file

    def drop(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class MysqlDb:
    name = "mysql"

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        self.database = parts.path.lstrip("/")
        if not self.database.replace("_", "").isalnum():
            raise SystemExit(f"refusing odd database name {self.database!r} in {url}")
        self.connect_args = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 3306,
            "user": parts.username or "root",
            "passwd": parts.password or "",
        }

    def _execute(self, *statements: str) -> None:
        try:
            import MySQLdb
        except ImportError:
            raise RuntimeError(
                "mysqlclient is not installed: pip install -r requirements-mysql.txt"
            ) from None
        try:
            connection = MySQLdb.connect(**self.connect_args)
        except MySQLdb.OperationalError as exc:
            raise RuntimeError(f"cannot connect to MariaDB for {self.url}: {exc}") from None
        try:
            cursor = connection.cursor()
            for statement in statements:
                cursor.execute(statement)
        finally:
            connection.close()

    def create(self) -> None:
        self._execute(
            f"DROP DATABASE IF EXISTS `{self.database}`",
            f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        )

    def drop(self) -> None:
        try:
            self._execute(f"DROP DATABASE IF EXISTS `{self.database}`")
        except Exception as exc:  # cleanup must not hide the real result
            print(f"  (could not drop {self.database}: {exc})")


# --- Server -------------------------------------------------------------------------


def server_env(database_url: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE")}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=SECRET_KEY,
        DJANGO_SETTINGS_MODULE="qmtjq.settings",
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, utime + stime seconds) of a live process from Linux /proc, None when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == "Z":
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree_cpu(root: int) -> dict[int, float] | None:
    """CPU seconds of `root` and every live descendant (web worker processes), by pid (Linux only)."""
    if not Path("/proc").is_dir() or _proc_stat(root) is None:
        return None
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, (parent, _) in stats.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return {pid: stats[pid][1] for pid in tree if pid in stats}


class Server:
    """A server subprocess (qmtjq or the jq2qmt peer) in its own session, measured as a process tree."""

    def __init__(self, *, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl+C reaches us; we stop the server ourselves
        )

    def wait_ready(self, path: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.base + path, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not answer {path} within {timeout:.0f} s:\n{self.log_tail()}")

    def cpu_snapshot(self) -> dict[int, float] | None:
        return process_tree_cpu(self.process.pid)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.closed:
            self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # like Ctrl+C: serve stops its web workers
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        try:  # anything the server left behind in its session
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        self.log.close()


def cpu_delta(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
    """CPU seconds spent between two snapshots by processes alive at both (workers live through a run)."""
    if before is None or after is None:
        return None
    return sum(after[pid] - before[pid] for pid in after if pid in before)


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, input=stdin, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        command = " ".join(args[:3])
        raise RuntimeError(f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def keep_or_drop_log(server: Server, label: str) -> None:
    # Keep the log only if the server said more than its routine start-up lines.
    routine = (
        "Serving on",
        "Task queue depth",
        "Starting granian",
        "Listening at",
        "Spawning worker",
        "Started worker",
        "Shutting down granian",
        "Stopping worker",
        "qmtjq ",
        "Jobs",
        "Database:",
        "=====",
        "Web:",
        "Admin:",
        "Press Ctrl+C",
        "Stopping",
        "Stopped",
        "Operations to perform",
        "Apply all migrations",
        "Running migrations",
        "No migrations to apply",
        "Web processes:",
        "Schedule created",
        "admin user",
        "管理员账号",
        "只显示这一次",
        "shown only this once",
        "^^^",
        "Configuration allows spawning",  # granian's note about 8 threads on 2 CPUs
        "AXES: BEGIN",
        "No directory at:",
        "mw_instance = middleware",
        "更新持仓",  # jq2qmt prints one line per upload
        "加密认证已禁用",
    )
    lines = server.log_tail(100_000).splitlines()
    noise = [line for line in lines if line.strip() and not any(r in line for r in routine)]
    if noise:
        print(f"   {label}: server log kept ({len(noise)} unusual lines): {server.log_path}")
    else:
        server.log_path.unlink()

"""Upload benchmark: start the real server (waitress) and hammer /api/v1/positions/update.

    python benchmarks/ingest.py [--db sqlite|mysql|both] [--uploads N] [--concurrency 16] [--lines 50]
                                [--mode api_key|rsa_v2|both] [--threads 8] [--server-env KEY=VALUE]

For each database it creates a fresh, migrated database, one API client per
worker, starts `waitress qmtjq.wsgi:application` in a subprocess and runs
`--uploads` uploads per auth mode (`api_key`, then `rsa_v2`) from
`--concurrency` threads. Every upload changes the worker's target, so every
one really writes a snapshot. Latency is timed around the HTTP call only;
building and signing the request is client time.

Besides uploads/s and p50/p99/max latency it reports the server process's CPU
time per upload (Linux), which is what bounds throughput: waitress runs Django
in one process, so Python work is serialized by the GIL.

Exit status is non-zero when any upload failed (a non-200 answer or a
connection error); missed targets are only reported. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from positions.tokens import key_pair_generate, token_sign  # noqa: E402  (needs REPO on sys.path)


def cache_private_key_parsing(private_pems: list[bytes]) -> None:
    """Make token_sign's PEM parsing cheap in this (client) process.

    token_sign parses the private key PEM on every call, and cryptography's RSA
    key validation makes that ~50 ms of CPU with the GIL held. In a threaded
    client that stalls every other worker's HTTP call, so latencies and rates
    would measure the client, not the server. The cache returns the same key
    object, so the tokens are exactly what token_sign builds; only this
    benchmark process is affected. `--sign-uncached` turns it off.
    """
    import functools

    from cryptography.hazmat.primitives import serialization

    load = serialization.load_pem_private_key

    @functools.lru_cache(maxsize=1024)
    def load_cached(data, password=None, **kwargs):
        return load(data, password, **kwargs)

    def load_pem_private_key(data, password=None, **kwargs):
        if isinstance(data, bytes) and password is None and not kwargs:
            return load_cached(data)
        return load(data, password, **kwargs)

    serialization.load_pem_private_key = load_pem_private_key
    for pem in private_pems:  # parse now, not inside the first measured run
        load_cached(pem)


UPDATE_PATH = "/api/v1/positions/update"
INFO_PATH = "/api/v1/auth/info"
MODES = ("api_key", "rsa_v2")
TARGET_P99_MS = 100.0
TARGET_RATE = 200.0
SECRET_KEY = "benchmark-only-secret-key-not-for-production-use-0123456789"
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/qmtjq_bench"

# Run in a subprocess with the benchmark's DATABASE_URL: one API client per
# worker, unlimited rate (0), RSA public key attached so both modes work.
CLIENTS_SCRIPT = """
import json, sys
import django
django.setup()
from positions.services import api_client_create
out = []
for spec in json.load(sys.stdin):
    client, api_key = api_client_create(
        name=spec["name"], public_key_pem=spec["public_key"], rate_limit_per_minute=0
    )
    out.append({"client_id": client.client_id, "api_key": api_key})
print(json.dumps(out))
"""


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


class Server:
    def __init__(self, env: dict[str, str], threads: int, log_path: Path, app: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "waitress",
                f"--listen=127.0.0.1:{self.port}",
                f"--threads={threads}",
                app,
            ],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl+C reaches us; we stop the server ourselves
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.base + INFO_PATH, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not answer {INFO_PATH} within {timeout:.0f} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float | None:
        """utime + stime of the server process (Linux only)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.closed:
            self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# --- Load -----------------------------------------------------------------------------


@dataclass
class Worker:
    index: int
    client_id: str
    api_key: str
    private_pem: bytes
    strategy: str
    session: requests.Session = field(default_factory=requests.Session)
    sequence: int = 0  # bumps every upload so the target always changes
    sign_ms: float = 0.0  # wall time spent in token_sign (client time, not in the latency)


@dataclass
class RunResult:
    db: str
    mode: str
    uploads: int
    errors: int
    unchanged: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_ms: float | None
    client_cpu_ms: float
    sign_ms: float  # mean wall time of token_sign per upload (0 for api_key)
    first_errors: list[str]

    @property
    def rate(self) -> float:
        return self.uploads / self.seconds if self.seconds else 0.0

    def percentile(self, pct: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        rank = max(1, -(-len(ordered) * pct // 100))  # nearest rank
        return ordered[int(rank) - 1]


CODES = [f"{600000 + i:06d}.XSHG" if i % 2 == 0 else f"{1 + i:06d}.XSHE" for i in range(5000)]


def payload_bytes(worker: Worker, lines: int) -> bytes:
    worker.sequence += 1
    seq = worker.sequence
    positions = [
        {
            "code": CODES[i],
            "name": f"Stock {i}",
            "volume": 100 * (1 + (seq * 7 + i) % 500),
            "cost": round(5 + (seq + i) % 300 * 0.37, 2),
        }
        for i in range(lines)
    ]
    body = {
        "strategy_name": worker.strategy,
        "positions": positions,
        "total_value": 1_000_000 + seq,
        "cash": 12_345.67,
    }
    return json.dumps(body).encode("utf-8")


def upload_once(base: str, worker: Worker, mode: str, lines: int) -> tuple[int, float, bool, str]:
    """Returns (status, latency ms, changed, error text). Status 0 means no HTTP answer."""
    body = payload_bytes(worker, lines)
    headers = {"Content-Type": "application/json"}
    if mode == "api_key":
        headers["X-API-Key"] = worker.api_key
    else:
        signing = time.perf_counter()
        headers["X-Auth-Token"] = token_sign(
            worker.private_pem, worker.client_id, version=2, method="POST", path=UPDATE_PATH, body=body
        )
        worker.sign_ms += (time.perf_counter() - signing) * 1000
    started = time.perf_counter()
    try:
        response = worker.session.post(base + UPDATE_PATH, data=body, headers=headers, timeout=60)
    except requests.RequestException as exc:
        return 0, (time.perf_counter() - started) * 1000, False, f"{type(exc).__name__}: {exc}"
    latency = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        return response.status_code, latency, False, f"HTTP {response.status_code}: {response.text[:200]}"
    try:
        changed = bool(response.json().get("changed"))
    except ValueError:
        return 0, latency, False, f"HTTP 200 with a non-JSON body: {response.text[:200]}"
    return 200, latency, changed, ""


def run_mode(
    db: str, mode: str, base: str, workers: list[Worker], uploads: int, lines: int, server: Server
) -> RunResult:
    lock = threading.Lock()
    remaining = [uploads]
    latencies: list[float] = []
    errors: list[str] = []
    unchanged = [0]
    stop = threading.Event()

    def take() -> bool:
        with lock:
            if remaining[0] <= 0 or stop.is_set():
                return False
            remaining[0] -= 1
            return True

    def loop(worker: Worker) -> None:
        while take():
            status, latency, changed, error = upload_once(base, worker, mode, lines)
            with lock:
                if status == 200:
                    latencies.append(latency)
                    unchanged[0] += not changed
                else:
                    errors.append(error)

    threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in workers]
    for worker in workers:
        worker.sign_ms = 0.0
    cpu_before = server.cpu_seconds()
    client_before = time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # short joins keep Ctrl+C responsive
    except KeyboardInterrupt:
        stop.set()
        raise
    seconds = time.perf_counter() - started
    cpu_after = server.cpu_seconds()
    done = len(latencies) + len(errors)
    client_cpu_ms = (time.process_time() - client_before) * 1000 / max(done, 1)
    server_cpu_ms = (cpu_after - cpu_before) * 1000 / done if cpu_before is not None and done else None
    return RunResult(
        db,
        mode,
        done,
        len(errors),
        unchanged[0],
        seconds,
        latencies,
        server_cpu_ms,
        client_cpu_ms,
        sign_ms=sum(w.sign_ms for w in workers) / max(done, 1),
        first_errors=errors[:5],
    )


# --- Orchestration -------------------------------------------------------------------------


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, input=stdin, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        command = " ".join(args[:3])
        raise RuntimeError(f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def bench_database(
    database, args, keys: list[tuple[bytes, bytes]], extra_env: dict[str, str]
) -> list[RunResult]:
    print(f"\n== {database.name}: fresh database")
    database.create()
    server = None
    try:
        env = server_env(database.url, extra_env)
        manage(env, "manage.py", "migrate", "--noinput")
        specs = [
            {"name": f"bench worker {i}", "public_key": public.decode("ascii")}
            for i, (_, public) in enumerate(keys)
        ]
        output = manage(env, "-c", CLIENTS_SCRIPT, stdin=json.dumps(specs))
        created = json.loads(output.strip().splitlines()[-1])
        workers = [
            Worker(i, c["client_id"], c["api_key"], keys[i][0], f"bench-{database.name}-{i:02d}")
            for i, c in enumerate(created)
        ]
        log_path = Path(tempfile.mkstemp(prefix=f"qmtjq-bench-{database.name}-", suffix=".log")[1])
        server = Server(env, args.threads, log_path, args.app)
        server.wait_ready()
        print(f"   waitress on {server.base} (threads={args.threads}), log {log_path}")
        # Warm-up, not measured: creates each worker's strategy and loads code paths.
        warm = run_mode(database.name, "api_key", server.base, workers, len(workers) * 2, args.lines, server)
        if warm.errors:
            raise RuntimeError("warm-up uploads failed: " + "; ".join(warm.first_errors))
        results = []
        for mode in args.modes:
            result = run_mode(database.name, mode, server.base, workers, args.uploads, args.lines, server)
            print(
                f"   {mode:8s} {result.uploads} uploads in {result.seconds:.1f} s, {result.errors} errors"
                + (f", {result.unchanged} unexpectedly unchanged" if result.unchanged else "")
                + (f", token_sign {result.sign_ms:.1f} ms/upload (client)" if result.sign_ms else "")
            )
            for error in result.first_errors:
                print(f"      {error}")
            results.append(result)
        if server.process.poll() is not None:
            raise RuntimeError(f"server died:\n{server.log_tail()}")
        return results
    finally:
        if server is not None:
            server.stop()
            # Keep the log only if the server said more than "Serving on ..." and
            # "Task queue depth" (expected: more clients than waitress threads).
            routine = ("Serving on", "Task queue depth")
            lines = server.log_tail(100_000).splitlines()
            noise = [line for line in lines if not any(r in line for r in routine)]
            if noise:
                print(f"   server log kept ({len(noise)} lines): {server.log_path}")
            else:
                server.log_path.unlink()
        if not args.keep:
            database.drop()


def print_table(results: list[RunResult]) -> None:
    print()
    header = (
        f"{'db':7s} {'mode':8s} {'uploads':>7s} {'errors':>6s} {'uploads/s':>10s} "
        f"{'p50 ms':>7s} {'p99 ms':>7s} {'max ms':>7s} {'CPU ms/upload: server':>21s} {'client':>6s}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        p99 = r.percentile(99)
        latency = f"{r.percentile(50):7.1f} {p99:7.1f} {max(r.latencies_ms, default=float('nan')):7.1f}"
        server_cpu = f"{r.server_cpu_ms:21.1f}" if r.server_cpu_ms is not None else f"{'-':>21s}"
        flags = "  rate MISSED" if r.rate < TARGET_RATE else ""
        flags += "  p99 MISSED" if p99 >= TARGET_P99_MS else ""
        print(
            f"{r.db:7s} {r.mode:8s} {r.uploads:7d} {r.errors:6d} {r.rate:10.1f} "
            f"{latency} {server_cpu} {r.client_cpu_ms:6.1f}{flags}"
        )


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "mysql", "both"], default="both")
    parser.add_argument("--uploads", type=int, default=400, help="uploads per auth mode (default 400)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads, one API client each")
    parser.add_argument("--lines", type=int, default=50, help="positions per upload (default 50)")
    parser.add_argument(
        "--mode", choices=[*MODES, "both"], default="both", help="auth modes to run (default both)"
    )
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads (default 8)")
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("BENCH_MYSQL_URL", DEFAULT_MYSQL_URL),
        help=f"MariaDB database to drop and recreate (default {DEFAULT_MYSQL_URL})",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the server, e.g. CONN_MAX_AGE=60 (repeatable)",
    )
    parser.add_argument(
        "--app",
        default="qmtjq.wsgi:application",
        help="WSGI app for waitress, to compare an experimental variant (add its directory to "
        "the server's PYTHONPATH with --server-env)",
    )
    parser.add_argument(
        "--sign-uncached",
        action="store_true",
        help="let token_sign parse the private key PEM on every call (~50 ms of client CPU "
        "holding the GIL; makes rsa_v2 measure the client, not the server)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases afterwards")
    args = parser.parse_args()
    if not 1 <= args.lines <= len(CODES):
        parser.error(f"--lines must be 1-{len(CODES)}")
    if args.uploads < 1 or args.concurrency < 1:
        parser.error("--uploads and --concurrency must be at least 1")
    args.modes = MODES if args.mode == "both" else (args.mode,)
    extra_env = dict(item.split("=", 1) for item in args.server_env)

    # Make SIGTERM behave like Ctrl+C so the server subprocess is stopped either way.
    signal.signal(signal.SIGTERM, _interrupt)

    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; client and server share these CPUs"
    )
    print(
        f"load: {args.uploads} uploads per auth mode, {args.concurrency} concurrent clients, "
        f"{args.lines} lines per upload, waitress --threads={args.threads}"
        + (f", server env {extra_env}" if extra_env else "")
    )
    print(f"targets: p99 < {TARGET_P99_MS:.0f} ms with 16 concurrent clients, >= {TARGET_RATE:.0f} uploads/s")

    started = time.perf_counter()
    keys = [key_pair_generate() for _ in range(args.concurrency)]
    print(f"generated {len(keys)} RSA key pairs in {time.perf_counter() - started:.1f} s")
    if not args.sign_uncached:
        cache_private_key_parsing([private for private, _ in keys])
    print(
        "rsa_v2 tokens: token_sign per upload, "
        + (
            "parsing the PEM every time (--sign-uncached)"
            if args.sign_uncached
            else "parsed private keys cached"
        )
    )

    databases = []
    if args.db in ("sqlite", "both"):
        databases.append(SqliteDb())
    if args.db in ("mysql", "both"):
        databases.append(MysqlDb(args.mysql_url))

    results: list[RunResult] = []
    try:
        for database in databases:
            results += bench_database(database, args, keys, extra_env)
    except KeyboardInterrupt:
        print("\ninterrupted; server stopped")
        print_table(results)
        return 130
    except RuntimeError as exc:
        print(f"\nFAILED: {exc}")
        print_table(results)
        return 2
    print_table(results)
    failed = sum(r.errors for r in results)
    if failed:
        print(f"\n{failed} uploads failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

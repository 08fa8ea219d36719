"""Upload benchmark: start the real server and hammer /api/v1/positions/update.

    python benchmarks/ingest.py [--web-workers 1,2] [--peer DIR --peer-python PY] [--db sqlite|mysql|both]
                                [--uploads N] [--concurrency 16] [--lines 50] [--mode api_key|rsa_v2|both]
                                [--server serve|waitress] [--threads 2,8] [--peer-threads 8]
                                [--server-env KEY=VALUE]

For each database and each web-process count it creates a fresh, migrated
database, one API client per client thread, starts `manage.py serve
--web-workers N --jobs off` (or, with `--server waitress`, one waitress
process as before `serve --web-workers` existed) and runs `--uploads` uploads
from `--concurrency` closed-loop clients (each sends its next upload when the
previous one is answered). Every upload changes the client's target, so every
one really writes a snapshot. Latency is timed around the HTTP call only.

With `--peer DIR` (a checkout of the public jq2qmt repository) it first runs
jq2qmt on SQLite under waitress with the same load and prints the ratio of
uploads/s (see benchmarks/jq2qmt_peer.py).

Besides uploads/s, p50/p99/max latency and errors it reports the server's CPU
time per upload (Linux /proc: the server process and all its children, i.e.
every web worker), which is what bounds throughput.

Exit status is non-zero when any qmtjq upload failed (a non-200 answer or a
connection error). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
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
TARGET_CPU_MS = 4.0
TARGET_RATIO = 1.5
SECRET_KEY = "benchmark-only-secret-key-not-for-production-use-0123456789"
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/qmtjq_bench"

# Run in a subprocess with the benchmark's DATABASE_URL: one API client per
# worker, the --rate-limit per minute (default 0: unlimited), RSA public key
# attached so both modes work.
CLIENTS_SCRIPT = """
import json, sys
import django
django.setup()
from positions.services import api_client_create
out = []
for spec in json.load(sys.stdin):
    client, api_key = api_client_create(
        name=spec["name"], public_key_pem=spec["public_key"], rate_limit_per_minute=spec["rate_limit"]
    )
    out.append({"client_id": client.client_id, "api_key": api_key})
print(json.dumps(out))
"""

# Run after a qmtjq run with the same DATABASE_URL: what the database kept.
HISTORY_SCRIPT = """
import json
import django
django.setup()
from positions.models import TargetLine, TargetSnapshot, Upload
print(json.dumps({
    "snapshots": TargetSnapshot.objects.count(),
    "lines": TargetLine.objects.count(),
    "uploads": Upload.objects.count(),
}))
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


# --- Load -----------------------------------------------------------------------------


class KeepAliveClient:
    """One persistent HTTP/1.1 connection (http.client), posting like `requests.Session.post`.

    `requests` costs the client ~1 ms of CPU per upload with the GIL held; on
    a 2-CPU machine that CPU is taken from the server under test. Both servers
    (qmtjq and the jq2qmt peer) get the same client (`--client`). A failed
    call closes the connection and counts as an error; nothing is retried.
    """

    class Answer:
        def __init__(self, status: int, body: bytes) -> None:
            self.status_code, self.content = status, body

        @property
        def text(self) -> str:
            return self.content.decode("utf-8", "replace")

        def json(self):
            return json.loads(self.content)

    def __init__(self, *, connection_per_upload: bool = False) -> None:
        self.conn: http.client.HTTPConnection | None = None
        self.connection_per_upload = connection_per_upload

    def post(self, url: str, data: bytes, headers: dict[str, str], timeout: float):
        parts = urlsplit(url)
        if self.conn is None:
            self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        try:
            self.conn.request("POST", parts.path, body=data, headers=headers)
            answer = self.conn.getresponse()
            body = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = None
            raise requests.ConnectionError(f"{type(exc).__name__}: {exc}") from exc
        if answer.will_close or self.connection_per_upload:
            self.conn.close()
            self.conn = None
        return self.Answer(answer.status, body)


def load_client(kind: str):
    """The HTTP client of one load thread (`--client`)."""
    if kind == "requests":
        return requests.Session()
    return KeepAliveClient(connection_per_upload=kind == "connect")


@dataclass
class Worker:
    index: int
    client_id: str
    api_key: str
    private_pem: bytes
    strategy: str
    session: requests.Session | KeepAliveClient = field(default_factory=requests.Session)
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
    round: int = 1  # --repeat: which round of the interleaved runs

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
        changed = bool(response.json().get("changed", True))  # the jq2qmt peer does not say
    except ValueError:
        return 0, latency, False, f"HTTP 200 with a non-JSON body: {response.text[:200]}"
    return 200, latency, changed, ""


CLIENT_PROCESSES = 1  # main() sets it from --client-processes
CLIENT_KIND = "connect"  # main() sets it from --client


def _client_process(specs, base, mode, lines, client, counter, barrier, results) -> None:
    """One load process (--client-processes): its share of the closed-loop clients, in threads."""
    if mode == "rsa_v2":
        cache_private_key_parsing([spec["private_pem"] for spec in specs])
    workers = [
        Worker(
            spec["index"], spec["client_id"], spec["api_key"], spec["private_pem"], spec["strategy"],
            load_client(client), spec["sequence"],
        )
        for spec in specs
    ]
    lock = threading.Lock()
    latencies, errors, unchanged = [], [], [0]

    def take() -> bool:
        with counter.get_lock():
            if counter.value <= 0:
                return False
            counter.value -= 1
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
    barrier.wait()
    cpu_before = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(
        {
            "latencies": latencies,
            "errors": errors,
            "unchanged": unchanged[0],
            "cpu": time.process_time() - cpu_before,
            "sign_ms": sum(w.sign_ms for w in workers),
            "sequences": {w.index: w.sequence for w in workers},
        }
    )


def run_mode_processes(
    db: str, mode: str, base: str, workers: list[Worker], uploads: int, lines: int, server: Server
) -> RunResult:
    """The same closed loop from CLIENT_PROCESSES processes: one client process's GIL would otherwise
    delay reading answers that already arrived, and that wait would be counted as server latency."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no fork: the load threads are not copied mid-flight
    count = min(CLIENT_PROCESSES, len(workers))
    counter = context.Value("i", uploads)
    barrier = context.Barrier(count + 1)
    queue = context.Queue()
    groups = [workers[n::count] for n in range(count)]
    processes = []
    for group in groups:
        specs = [
            {
                "index": w.index,
                "client_id": w.client_id,
                "api_key": w.api_key,
                "private_pem": w.private_pem,
                "strategy": w.strategy,
                "sequence": w.sequence,
            }
            for w in group
        ]
        process = context.Process(
            target=_client_process, args=(specs, base, mode, lines, CLIENT_KIND, counter, barrier, queue), daemon=True
        )
        process.start()
        processes.append(process)
    barrier.wait(timeout=120)
    cpu_before = server.cpu_snapshot()
    started = time.perf_counter()
    answers = [queue.get(timeout=600) for _ in processes]
    seconds = time.perf_counter() - started
    cpu_after = server.cpu_snapshot()
    for process in processes:
        process.join(10)
    by_index = {w.index: w for w in workers}
    for answer in answers:
        for index, sequence in answer["sequences"].items():
            by_index[index].sequence = sequence  # the next run's targets still differ from these
    latencies = [ms for answer in answers for ms in answer["latencies"]]
    errors = [error for answer in answers for error in answer["errors"]]
    done = len(latencies) + len(errors)
    spent = cpu_delta(cpu_before, cpu_after)
    return RunResult(
        db,
        mode,
        done,
        len(errors),
        sum(answer["unchanged"] for answer in answers),
        seconds,
        latencies,
        spent * 1000 / done if spent is not None and done else None,
        sum(answer["cpu"] for answer in answers) * 1000 / max(done, 1),
        sign_ms=sum(answer["sign_ms"] for answer in answers) / max(done, 1),
        first_errors=errors[:5],
    )


def run_mode(
    db: str, mode: str, base: str, workers: list[Worker], uploads: int, lines: int, server: Server
) -> RunResult:
    if CLIENT_PROCESSES > 1:
        return run_mode_processes(db, mode, base, workers, uploads, lines, server)
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
    cpu_before = server.cpu_snapshot()
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
    cpu_after = server.cpu_snapshot()
    done = len(latencies) + len(errors)
    client_cpu_ms = (time.process_time() - client_before) * 1000 / max(done, 1)
    spent = cpu_delta(cpu_before, cpu_after)
    server_cpu_ms = spent * 1000 / done if spent is not None and done else None
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


def qmtjq_argv(args, web_workers: int, threads: int, port: int) -> list[str]:
    if args.server == "waitress":
        if web_workers != 1:
            raise SystemExit("--server waitress runs one process: use --web-workers 1")
        return [
            sys.executable,
            "-m",
            "waitress",
            f"--listen=127.0.0.1:{port}",
            f"--threads={threads or 4}",  # 0: waitress's own default
            args.app,
        ]
    return [
        sys.executable,
        "manage.py",
        "serve",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--web-workers={web_workers}",
        *([f"--threads={threads}"] if threads else []),  # 0: serve's own default for the database
        "--jobs=off",
        "--no-workers",
    ]


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


def load_runs(label: str, server: Server, workers: list[Worker], args, modes) -> tuple[list[RunResult], int]:
    """The measured runs, and how many uploads (warm-up included) should each have written a new snapshot."""
    # Warm-up, not measured: creates each worker's strategy and loads code paths in every process.
    warm = run_mode(label, "api_key", server.base, workers, len(workers) * 4, args.lines, server)
    if warm.errors:
        raise RuntimeError(f"{label}: warm-up uploads failed: " + "; ".join(warm.first_errors))
    results = []
    for mode in modes:
        result = run_mode(label, mode, server.base, workers, args.uploads, args.lines, server)
        print(
            f"   {label} {mode:8s} {result.uploads} uploads in {result.seconds:.1f} s, {result.errors} errors"
            + (f", {result.unchanged} unexpectedly unchanged" if result.unchanged else "")
            + (f", token_sign {result.sign_ms:.1f} ms/upload (client)" if result.sign_ms else "")
        )
        for error in result.first_errors:
            print(f"      {error}")
        results.append(result)
    if server.process.poll() is not None:
        raise RuntimeError(f"{label}: server died:\n{server.log_tail()}")
    written = sum(r.uploads - r.errors - r.unchanged for r in (warm, *results))
    return results, written


def check_history(label: str, env: dict[str, str], written: int, lines: int) -> None:
    """Full history kept: one snapshot with all its lines and one Upload row per answered upload."""
    kept = json.loads(manage(env, "-c", HISTORY_SCRIPT).strip().splitlines()[-1])
    expected = {"snapshots": written, "lines": written * lines, "uploads": written}
    missing = {key: (kept[key], want) for key, want in expected.items() if kept[key] < want}
    if missing:
        detail = ", ".join(f"{key} {got} of {want}" for key, (got, want) in missing.items())
        raise RuntimeError(f"{label}: history not kept: {detail}")
    print(
        f"   {label} history kept: {kept['snapshots']} snapshots, {kept['lines']} lines, {kept['uploads']} uploads"
    )


def bench_database(
    database, args, keys: list[tuple[bytes, bytes]], extra_env: dict[str, str], web_workers: int, threads: int
) -> list[RunResult]:
    label = f"qmtjq {database.name} {web_workers}p" + (
        (f" {threads}t" if threads else " dflt") if len(args.threads) > 1 else ""
    )
    print(f"\n== {label}: fresh database")
    database.create()
    server = None
    try:
        env = server_env(database.url, extra_env)
        manage(env, "manage.py", "migrate", "--noinput")
        specs = [
            {"name": f"bench worker {i}", "public_key": public.decode("ascii"), "rate_limit": args.rate_limit}
            for i, (_, public) in enumerate(keys)
        ]
        output = manage(env, "-c", CLIENTS_SCRIPT, stdin=json.dumps(specs))
        created = json.loads(output.strip().splitlines()[-1])
        workers = [
            Worker(
                i, c["client_id"], c["api_key"], keys[i][0], f"bench-{database.name}-{i:02d}", load_client(args.client)
            )
            for i, c in enumerate(created)
        ]
        log_path = Path(tempfile.mkstemp(prefix=f"qmtjq-bench-{database.name}-", suffix=".log")[1])
        port = free_port()
        server = Server(
            argv=qmtjq_argv(args, web_workers, threads, port), env=env, cwd=REPO, log_path=log_path, port=port
        )
        server.wait_ready(INFO_PATH)
        print(
            f"   {args.server} on {server.base}, {web_workers} web process(es) x "
            f"{threads or 'the default'} threads, log {log_path}"
        )
        results, written = load_runs(label, server, workers, args, args.modes)
        check_history(label, env, written, args.lines)
        return results
    finally:
        if server is not None:
            server.stop()
            keep_or_drop_log(server, label)
        if not args.keep:
            database.drop()


def bench_peer(args, keys) -> list[RunResult]:
    from jq2qmt_peer import PEER_API_KEY, PeerSetup

    label = "jq2qmt sqlite 1p"
    print(f"\n== {label}: {args.peer} under waitress (threads={args.peer_threads}), fresh SQLite")
    peer = PeerSetup(Path(args.peer), args.peer_python, args.peer_threads)
    server = None
    try:
        port = free_port()
        log_path = Path(tempfile.mkstemp(prefix="jq2qmt-bench-", suffix=".log")[1])
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
        server = Server(argv=peer.argv(port), env=peer.env(env), cwd=peer.src, log_path=log_path, port=port)
        server.wait_ready("/api/v1/auth/info")
        workers = [
            Worker(i, f"peer-{i}", PEER_API_KEY, keys[i][0], f"bench-peer-{i:02d}", load_client(args.client))
            for i in range(len(keys))
        ]
        return load_runs(label, server, workers, args, ("api_key",))[0]
    finally:
        if server is not None:
            server.stop()
            keep_or_drop_log(server, label)
        peer.drop()


def print_table(results: list[RunResult]) -> None:
    print()
    header = (
        f"{'server':18s} {'mode':8s} {'uploads':>7s} {'errors':>6s} {'uploads/s':>10s} "
        f"{'p50 ms':>7s} {'p99 ms':>7s} {'max ms':>7s} {'CPU ms/upload: server':>21s} {'client':>6s}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        p99 = r.percentile(99)
        latency = f"{r.percentile(50):7.1f} {p99:7.1f} {max(r.latencies_ms, default=float('nan')):7.1f}"
        server_cpu = f"{r.server_cpu_ms:21.1f}" if r.server_cpu_ms is not None else f"{'-':>21s}"
        flags = ""
        if r.db.startswith("qmtjq"):
            flags += "  p99 MISSED" if p99 > TARGET_P99_MS else ""
            flags += "  CPU MISSED" if r.server_cpu_ms is not None and r.server_cpu_ms > TARGET_CPU_MS else ""
        print(
            f"{r.db:18s} {r.mode:8s} {r.uploads:7d} {r.errors:6d} {r.rate:10.1f} "
            f"{latency} {server_cpu} {r.client_cpu_ms:6.1f}{flags}"
        )
    rounds = sorted({r.round for r in results})
    ratios: dict[str, list[float]] = {}
    for number in rounds:
        batch = [r for r in results if r.round == number]
        peers = [r for r in batch if r.db.startswith("jq2qmt")]
        if not peers or not peers[0].rate:
            continue
        peer = peers[0]
        title = f"round {number}: " if len(rounds) > 1 else ""
        print(f"\n{title}ratio to jq2qmt ({peer.rate:.1f} uploads/s, same run), aim >= {TARGET_RATIO:.1f}x:")
        for r in batch:
            if r.db.startswith("qmtjq") and r.mode == "api_key":
                ratio = r.rate / peer.rate
                ratios.setdefault(r.db, []).append(ratio)
                print(f"   {r.db:18s} {ratio:5.2f}x" + ("" if ratio >= TARGET_RATIO else "  MISSED"))
    if len(rounds) > 1:
        print_summary(results, ratios)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_summary(results: list[RunResult], ratios: dict[str, list[float]]) -> None:
    """Medians over the rounds, per server and mode, and the spread of the per-round ratios."""
    print(f"\nover {len({r.round for r in results})} rounds (median, min-max):")
    labels = list(dict.fromkeys((r.db, r.mode) for r in results))
    for db, mode in labels:
        runs = [r for r in results if r.db == db and r.mode == mode]
        rates = [r.rate for r in runs]
        p99s = [r.percentile(99) for r in runs]
        cpus = [r.server_cpu_ms for r in runs if r.server_cpu_ms is not None]
        errors = sum(r.errors for r in runs)
        line = (
            f"   {db:18s} {mode:8s} uploads/s {_median(rates):6.1f} ({min(rates):.0f}-{max(rates):.0f})  "
            f"p99 ms {_median(p99s):6.1f} ({min(p99s):.0f}-{max(p99s):.0f})  "
            f"server CPU ms {_median(cpus):4.1f}  errors {errors}"
        )
        if db in ratios and mode == "api_key":
            values = ratios[db]
            line += f"  ratio {_median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"
        print(line)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _counts(text: str, what: str, minimum: int = 1) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of {what} counts, e.g. 1,2") from None
    if not counts or min(counts) < minimum:
        raise argparse.ArgumentTypeError(f"{what} counts must be at least {minimum}")
    return counts


def _web_workers(text: str) -> list[int]:
    return _counts(text, "process")


def _threads(text: str) -> list[int]:
    return _counts(text, "thread", minimum=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "mysql", "both"], default="sqlite")
    parser.add_argument("--uploads", type=int, default=2000, help="uploads per run (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads, one API client each")
    parser.add_argument("--lines", type=int, default=50, help="positions per upload (default 50)")
    parser.add_argument(
        "--mode", choices=[*MODES, "both"], default="api_key", help="auth modes to run (default api_key)"
    )
    parser.add_argument(
        "--web-workers",
        type=_web_workers,
        default=[1, os.cpu_count() or 1],
        help="web processes to run qmtjq with, comma-separated (default: 1,<CPU count>)",
    )
    parser.add_argument(
        "--server",
        choices=["serve", "waitress"],
        default="serve",
        help="'serve' = manage.py serve --web-workers N (the real thing); "
        "'waitress' = waitress-serve in one process (the server before serve --web-workers)",
    )
    parser.add_argument(
        "--client",
        choices=["connect", "keepalive", "requests"],
        default="connect",
        help="HTTP client of the load threads (http.client, prebuilt bytes): 'connect' (default) = a new "
        "connection per upload, as jq2qmt's client (requests.post) and a reverse proxy without upstream "
        "keep-alive send; 'keepalive' = one connection per thread for the whole run (granian's processes "
        "split the 16 connections at random); 'requests' = a requests.Session (the first figures)",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=1,
        help="processes the closed-loop clients are spread over (default 1: all threads in this process; "
        "its GIL may delay reading answers that already arrived, counted as latency)",
    )
    parser.add_argument(
        "--threads",
        type=_threads,
        default=[0],
        help="threads per web process, or a comma-separated list run side by side in each round "
        "(default: serve's own, 2 on SQLite and 8 on MySQL with granian; 0 in a list = that default)",
    )
    parser.add_argument(
        "--peer-threads",
        type=int,
        default=8,
        help="waitress threads of the jq2qmt peer (default 8)",
    )
    parser.add_argument("--peer", metavar="DIR", help="a jq2qmt checkout: run it under the same load")
    parser.add_argument(
        "--peer-python",
        default=sys.executable,
        help="interpreter with jq2qmt's requirements and waitress (default: this one)",
    )
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
        help="WSGI app for --server waitress, to compare an experimental variant (add its directory to "
        "the server's PYTHONPATH with --server-env)",
    )
    parser.add_argument(
        "--sign-uncached",
        action="store_true",
        help="let token_sign parse the private key PEM on every call (~50 ms of client CPU "
        "holding the GIL; makes rsa_v2 measure the client, not the server)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of interleaved runs (jq2qmt, then qmtjq with each process count); with more than one, "
        "medians and the per-round ratios are printed at the end",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="each API client's rate limit per minute (default 0: unlimited, nothing counted); "
        "a limit no client reaches, e.g. 1000000, measures what counting costs",
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases afterwards")
    args = parser.parse_args()
    if not 1 <= args.lines <= len(CODES):
        parser.error(f"--lines must be 1-{len(CODES)}")
    if args.uploads < 1 or args.concurrency < 1 or args.repeat < 1:
        parser.error("--uploads, --concurrency and --repeat must be at least 1")
    if args.server == "waitress":
        args.web_workers = [1]
    args.modes = MODES if args.mode == "both" else (args.mode,)
    global CLIENT_PROCESSES, CLIENT_KIND
    CLIENT_PROCESSES = max(1, args.client_processes)
    CLIENT_KIND = args.client
    extra_env = dict(item.split("=", 1) for item in args.server_env)

    # Make SIGTERM behave like Ctrl+C so the server subprocess is stopped either way.
    signal.signal(signal.SIGTERM, _interrupt)

    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; client and server share these CPUs"
    )
    print(
        f"load: {args.uploads} uploads per run, {args.concurrency} closed-loop clients ({args.client}, {args.client_processes} processes), "
        f"{args.lines} lines per upload, "
        f"{','.join(str(t) if t else 'default' for t in args.threads)} threads per web process, "
        f"qmtjq via {args.server} with {args.web_workers} web process(es)"
        + (f", server env {extra_env}" if extra_env else "")
    )
    print(
        f"aims: <= {TARGET_CPU_MS:.0f} ms server CPU per upload, p99 <= {TARGET_P99_MS:.0f} ms, "
        f">= {TARGET_RATIO:.1f}x jq2qmt's uploads/s, 0 errors"
    )

    started = time.perf_counter()
    keys = [key_pair_generate() for _ in range(args.concurrency)]
    print(f"generated {len(keys)} RSA key pairs in {time.perf_counter() - started:.1f} s")
    if not args.sign_uncached:
        cache_private_key_parsing([private for private, _ in keys])

    databases = []
    if args.db in ("sqlite", "both"):
        databases.append(SqliteDb)
    if args.db in ("mysql", "both"):
        databases.append(lambda: MysqlDb(args.mysql_url))

    results: list[RunResult] = []
    try:
        # Rounds interleave the servers (jq2qmt, then qmtjq with each process
        # count): the machine's speed drifts by tens of percent over minutes,
        # so each ratio compares runs made next to each other.
        for round_number in range(1, args.repeat + 1):
            if args.repeat > 1:
                print(f"\n#### round {round_number} of {args.repeat}")
            batch: list[RunResult] = []
            if args.peer:
                batch += bench_peer(args, keys)
            for make_database in databases:
                for web_workers in args.web_workers:
                    for threads in args.threads:
                        batch += bench_database(make_database(), args, keys, extra_env, web_workers, threads)
            for result in batch:
                result.round = round_number
            results += batch
    except KeyboardInterrupt:
        print("\ninterrupted; server stopped")
        print_table(results)
        return 130
    except RuntimeError as exc:
        print(f"\nFAILED: {exc}")
        print_table(results)
        return 2
    print_table(results)
    failed = sum(r.errors for r in results if r.db.startswith("qmtjq"))
    if failed:
        print(f"\n{failed} uploads failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The load of benchmarks/ingest.py: closed-loop upload clients, in threads of one or more processes."""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from bench_server import REPO, Server, cpu_delta
from uploads import UPDATE_PATH, upload_body

sys.path.insert(0, str(REPO))

from positions.tokens import token_sign  # noqa: E402  (needs REPO on sys.path)


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


def payload_bytes(worker: Worker, lines: int) -> bytes:
    worker.sequence += 1
    return upload_body(worker.sequence, lines, worker.strategy)


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


@dataclass
class Tally:
    """What the load threads of one process saw: answered latencies, errors, unchanged answers."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unchanged: int = 0

    @classmethod
    def merged(cls, tallies: list[Tally]) -> Tally:
        return cls(
            [ms for t in tallies for ms in t.latencies],
            [error for t in tallies for error in t.errors],
            sum(t.unchanged for t in tallies),
        )


@dataclass
class Load:
    """One run of the closed loop: what it saw, its wall time, CPU seconds and signing time."""

    tally: Tally
    seconds: float
    server_cpu: float | None  # None where /proc is missing
    client_cpu: float
    sign_ms: float  # summed over the run's uploads


def closed_loop(workers: list[Worker], take, base: str, mode: str, lines: int) -> Tally:
    """One thread per worker; each sends its next upload when the previous one is answered, while
    `take()` grants one. Ctrl+C stops the threads after their upload in flight."""
    tally, lock, stop = Tally(), threading.Lock(), threading.Event()

    def loop(worker: Worker) -> None:
        while not stop.is_set() and take():
            status, latency, changed, error = upload_once(base, worker, mode, lines)
            with lock:
                if status == 200:
                    tally.latencies.append(latency)
                    tally.unchanged += not changed
                else:
                    tally.errors.append(error)

    threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # short joins keep Ctrl+C responsive
    except KeyboardInterrupt:
        stop.set()
        raise
    return tally


def _client_process(specs, base, mode, lines, client, counter, barrier, results) -> None:
    """One load process (--client-processes): its share of the closed-loop clients, in threads."""
    if mode == "rsa_v2":
        cache_private_key_parsing([spec["private_pem"] for spec in specs])
    workers = [Worker(**spec, session=load_client(client)) for spec in specs]

    def take() -> bool:
        with counter.get_lock():
            if counter.value <= 0:
                return False
            counter.value -= 1
            return True

    barrier.wait()
    cpu_before = time.process_time()
    tally = closed_loop(workers, take, base, mode, lines)
    results.put(
        {
            "tally": tally,
            "cpu": time.process_time() - cpu_before,
            "sign_ms": sum(w.sign_ms for w in workers),
            "sequences": {w.index: w.sequence for w in workers},
        }
    )


def _load_in_processes(
    base: str,
    mode: str,
    workers: list[Worker],
    uploads: int,
    lines: int,
    server: Server,
    count: int,
    client: str,
) -> Load:
    """The closed loop from `count` processes: one client process's GIL would otherwise delay
    reading answers that already arrived, and that wait would be counted as server latency."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no fork: the load threads are not copied mid-flight
    count = min(count, len(workers))
    counter = context.Value("i", uploads)
    barrier = context.Barrier(count + 1)
    queue = context.Queue()
    fields = ("index", "client_id", "api_key", "private_pem", "strategy", "sequence")
    processes = []
    for group in (workers[n::count] for n in range(count)):
        specs = [{name: getattr(w, name) for name in fields} for w in group]
        process = context.Process(
            target=_client_process,
            args=(specs, base, mode, lines, client, counter, barrier, queue),
            daemon=True,
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
    return Load(
        Tally.merged([answer["tally"] for answer in answers]),
        seconds,
        cpu_delta(cpu_before, cpu_after),
        sum(answer["cpu"] for answer in answers),
        sum(answer["sign_ms"] for answer in answers),
    )


def _load_in_threads(
    base: str, mode: str, workers: list[Worker], uploads: int, lines: int, server: Server
) -> Load:
    """The closed loop in threads of this process."""
    budget = iter(range(uploads))  # next() on a range iterator is atomic under the GIL

    def take() -> bool:
        return next(budget, None) is not None

    for worker in workers:
        worker.sign_ms = 0.0
    cpu_before = server.cpu_snapshot()
    client_before = time.process_time()
    started = time.perf_counter()
    tally = closed_loop(workers, take, base, mode, lines)
    seconds = time.perf_counter() - started
    cpu_after = server.cpu_snapshot()
    return Load(
        tally,
        seconds,
        cpu_delta(cpu_before, cpu_after),
        time.process_time() - client_before,
        sum(w.sign_ms for w in workers),
    )


def run_mode(
    db: str,
    mode: str,
    base: str,
    workers: list[Worker],
    uploads: int,
    lines: int,
    server: Server,
    *,
    client_processes: int = 1,
    client: str = "connect",
) -> RunResult:
    """`uploads` uploads from the workers' closed loop against `server`, timed and measured."""
    if client_processes > 1:
        load = _load_in_processes(base, mode, workers, uploads, lines, server, client_processes, client)
    else:
        load = _load_in_threads(base, mode, workers, uploads, lines, server)
    tally = load.tally
    done = len(tally.latencies) + len(tally.errors)
    return RunResult(
        db,
        mode,
        done,
        len(tally.errors),
        tally.unchanged,
        load.seconds,
        tally.latencies,
        load.server_cpu * 1000 / done if load.server_cpu is not None and done else None,
        load.client_cpu * 1000 / max(done, 1),
        sign_ms=load.sign_ms / max(done, 1),
        first_errors=tally.errors[:5],
    )

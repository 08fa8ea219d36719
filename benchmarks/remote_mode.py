"""Remote mode benchmark: upload on the server → order sent by a trading PC that talks HTTP through a delay.

    python benchmarks/remote_mode.py [--uploads 100] [--delay-ms 20] [--interval 0.5] [--seed N] [--keep]

Two SQLite databases in a temporary directory: the server's and the trading
PC's. The server is `waitress qmtjq.wsgi:application`; the PC is `manage.py
qmt_worker --account bench --server http://127.0.0.1:<proxy>` with its own
DATABASE_URL and the paper broker. Between them a TCP proxy in this process
delays every chunk by `--delay-ms` in each direction (20 ms each way = 40 ms
RTT, a home line to a cloud VPS). Uploads go to the server directly (JoinQuant
→ server is not part of this path). Each upload raises one code's target by
100 shares (one buy), lands at a random point of the worker's cycle, and the
next waits until the PC has sent that order. Latency: the PC's Order.sent_at −
the server's Upload.received_at (one machine, one clock), and the time until
the server's mirror shows the order (the report back).

Figures are printed, never asserted. `benchmarks/remote.py` (the shared-mode
part) may call `run_remote_mode(...)` to print both in one run.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import shutil
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_server import free_port  # noqa: E402
from latency import ACCOUNT, SETUP_SCRIPT, Child, child_env, django_setup, run_checked, wait_ready  # noqa: E402
from latency_planner import ms  # noqa: E402
from latency_upload import BENCH_PRICES, STRATEGY, UPDATE_PATH, percentile, target_payload  # noqa: E402

ORDER_WAIT = 15.0
POLL = 0.02
AIM_P99 = 1.5  # seconds at 40 ms RTT (issue 9)


class DelayProxy:
    """127.0.0.1:port → target, every chunk delivered `delay` seconds after it arrived, in order."""

    def __init__(self, target_port: int, delay: float):
        self.target_port, self.delay = target_port, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                chunks: queue.Queue = queue.Queue()
                threading.Thread(target=self._read, args=(source, chunks), daemon=True).start()
                threading.Thread(target=self._deliver, args=(sink, chunks), daemon=True).start()

    def _read(self, source: socket.socket, chunks: queue.Queue) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            chunks.put((time.monotonic() + self.delay, data))
            if not data:
                return

    @staticmethod
    def _deliver(sink: socket.socket, chunks: queue.Queue) -> None:
        while True:
            due, data = chunks.get()
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            try:
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


@dataclass
class RemoteResult:
    sent: list[float] = field(default_factory=list)  # PC Order.sent_at − server Upload.received_at
    mirrored: list[float] = field(default_factory=list)  # upload answered → order on the server's mirror
    missed: int = 0


def _pc_orders_sent(pc_db: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(pc_db) as db:
        return db.execute(
            "select id, key, sent_at from execution_order where sent_at is not null order by id"
        ).fetchall()


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=None)


def bench(
    base: str, api_key: str, pc_db: Path, worker: Child, uploads: int, interval: float, rng
) -> RemoteResult:
    from execution.models import Order
    from positions.models import Upload

    result = RemoteResult()
    volumes = {code: 100 for code in BENCH_PRICES}
    codes = list(BENCH_PRICES)
    session = requests.Session()
    headers = {"Content-Type": "application/json", "X-API-Key": api_key}
    seen = len(_pc_orders_sent(pc_db))
    for index in range(uploads):
        if not worker.alive():
            raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
        time.sleep(rng.uniform(0, interval))
        code = codes[index % len(codes)]
        volumes[code] += 100
        response = session.post(
            base + UPDATE_PATH, data=json.dumps(target_payload(volumes)).encode(), headers=headers, timeout=30
        )
        answered = time.perf_counter()
        if response.status_code != 200 or not response.json().get("changed"):
            raise RuntimeError(
                f"upload {index} not stored: HTTP {response.status_code} {response.text[:300]}"
            )
        received = Upload.objects.get(snapshot_id=response.json()["snapshot_id"]).received_at
        order, key = None, None
        while time.perf_counter() - answered < ORDER_WAIT:
            orders = _pc_orders_sent(pc_db)
            if len(orders) > seen:
                order, seen = orders[seen], len(orders)
                key = order[1]
                break
            time.sleep(POLL)
        if order is None:
            result.missed += 1
            seen = len(_pc_orders_sent(pc_db))
            continue
        result.sent.append((_parse(order[2]) - received.replace(tzinfo=None)).total_seconds())
        while time.perf_counter() - answered < ORDER_WAIT:
            if Order.objects.filter(key=key).exists():
                result.mirrored.append(time.perf_counter() - answered)
                break
            time.sleep(POLL)
    return result


def run_remote_mode(*, uploads: int, delay_ms: float, interval: float, seed: int, keep: bool) -> RemoteResult:
    tmp = Path(tempfile.mkdtemp(prefix="qmtjq-remote-"))
    server_url = f"sqlite:///{(tmp / 'server.sqlite3').as_posix()}"
    pc_db = tmp / "pc.sqlite3"
    env = child_env(server_url)
    children: list[Child] = []
    proxy = None
    try:
        run_checked(env, ["manage.py", "migrate", "--no-input"])
        pc_env = child_env(f"sqlite:///{pc_db.as_posix()}")
        run_checked(pc_env, ["manage.py", "migrate", "--no-input"])
        django_setup(server_url)
        run_checked(
            env,
            [
                "manage.py", "create_account", ACCOUNT, "--mode", "paper", "--account-id", "B1",
                "--cash", "100000000", "--subscribe", f"{STRATEGY}:ratio:1", "--no-trading-hours",
            ],
        )  # fmt: skip
        spec = {
            "account": ACCOUNT,
            "prices": BENCH_PRICES,
            "first_target": target_payload({code: 100 for code in BENCH_PRICES}),
        }
        api_key = json.loads(
            run_checked(env, ["-c", SETUP_SCRIPT], stdin=json.dumps(spec)).strip().splitlines()[-1]
        )["api_key"]
        worker_key = json.loads(run_checked(env, ["manage.py", "create_worker_client", ACCOUNT, "--json"]))[
            "api_key"
        ]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = Child(
            "server",
            ["-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=8", "qmtjq.wsgi:application"],
            env,
            tmp / "server.log",
        )
        children.append(server)
        wait_ready(server, base)
        proxy = DelayProxy(port, delay_ms / 1000)
        pc_env.update(QMTJQ_SERVER_URL=f"http://127.0.0.1:{proxy.port}", QMTJQ_WORKER_API_KEY=worker_key)
        worker = Child(
            "worker",
            ["manage.py", "qmt_worker", "--account", ACCOUNT, "--interval", f"{interval:g}"],
            pc_env,
            tmp / "worker.log",
        )
        children.append(worker)
        deadline = time.monotonic() + 90
        while len(_pc_orders_sent(pc_db) if pc_db.exists() else []) < len(BENCH_PRICES):
            if time.monotonic() > deadline or not worker.alive():
                raise RuntimeError(f"the PC placed no first orders:\n{worker.log_tail()}")
            time.sleep(0.2)
        time.sleep(2 * interval)
        result = bench(base, api_key, pc_db, worker, uploads, interval, random.Random(seed))
        worker.stop(interrupt_first=True)
        return result
    finally:
        for child in reversed(children):
            child.stop()
        if proxy is not None:
            proxy.close()
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def print_result(result: RemoteResult, *, uploads: int, delay_ms: float, interval: float) -> None:
    print(
        f"== remote mode: upload → order sent by the trading PC ({uploads} uploads, {delay_ms:g} ms each way "
        f"= {2 * delay_ms:g} ms RTT, worker interval {interval:g} s, feed poll 0.5 s)"
    )
    for name, values in (
        ("upload → PC sent the order", result.sent),
        ("→ on the server's mirror", result.mirrored),
    ):
        if values:
            print(
                f"  {name:28} p50 {ms(percentile(values, 50))}  p99 {ms(percentile(values, 99))}  "
                f"max {ms(max(values))}  (n={len(values)})"
            )
    print(f"  missed (no order within {ORDER_WAIT:g} s): {result.missed}")
    if result.sent:
        verdict = "meets" if percentile(result.sent, 99) <= AIM_P99 else "misses"
        print(f"  aim p99 ≤ {AIM_P99:g} s at 40 ms RTT: {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--delay-ms", type=float, default=20.0, help="added each way (default 20)")
    parser.add_argument("--interval", type=float, default=0.5, help="worker cycle interval (default 0.5 s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (databases, logs)")
    args = parser.parse_args()
    result = run_remote_mode(
        uploads=args.uploads, delay_ms=args.delay_ms, interval=args.interval, seed=args.seed, keep=args.keep
    )
    print_result(result, uploads=args.uploads, delay_ms=args.delay_ms, interval=args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())

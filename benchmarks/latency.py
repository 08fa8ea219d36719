"""Execution latency benchmark: upload → order, planner time, worker idle cost.

    python benchmarks/latency.py [--uploads 200] [--interval 1.0] [--idle-seconds 30]
                                 [--skip-latency] [--skip-planner] [--skip-idle]
                                 [--planner-runs 50] [--seed N] [--keep]

Everything runs against a fresh SQLite database in a temporary directory.

1. Upload accepted → order placed. Starts the real server (`waitress
   qmtjq.wsgi:application`) and a real worker (`manage.py qmt_worker --account
   bench --interval 1`) as subprocesses, for a paper account that follows
   strategy BENCH at ratio 1 (admin prices, trading hours off, no approval
   hold). Each upload raises one code's target by 100 shares, so it needs
   exactly one buy (buys only: the paper broker refuses to sell today's buys,
   T+1). Before each upload the benchmark sleeps a random fraction of the
   worker interval, so uploads land at random points of the worker's cycle as
   they do in production (without it every upload would arrive just after a
   cycle and wait a whole interval). The next upload waits until the order is
   placed. Latency is measured twice:
   - server: Order.sent_at − Upload.received_at (both stamped by the server
     and the worker on this machine's clock; no polling skew);
   - client: upload response arrived → order row seen, polling every 20 ms.
2. Planner time for 20 strategies × 300 lines: `planner.plan_round` on
   in-memory inputs, then the same inputs read from the database
   (`selectors.subscribed_targets`, `selectors.account_view`, admin quotes).
3. Worker idle cost: CPU % and RSS of the worker subprocess over
   `--idle-seconds` with no target change (Linux /proc; "n/a" elsewhere), then
   SQL queries and time per cycle of an in-process `Worker` (idle, with the
   periodic tasks due, and a cycle that places one order).

Figures are printed, never asserted. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from bench_server import free_port, server_env
from latency_planner import bench_planner
from latency_upload import BENCH_PRICES, STRATEGY, bench_latency, print_latency, target_payload
from latency_worker import bench_cycles, bench_idle

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

INFO_PATH = "/api/v1/auth/info"
ACCOUNT = "bench"

# Run in a subprocess after `migrate` and `create_account`: the API client,
# admin prices, no approval hold, a short order timeout, a first target.
SETUP_SCRIPT = """
import json, sys
from datetime import timedelta
from decimal import Decimal
import django
django.setup()
from execution.models import BrokerAccount, ManualQuote
from positions.services import api_client_create, snapshot_ingest
from positions.validation import parse_upload

spec = json.load(sys.stdin)
client, api_key = api_client_create(name="latency-bench", rate_limit_per_minute=0)
for code, price in spec["prices"].items():
    ManualQuote.objects.update_or_create(
        code=code, defaults={"last_price": Decimal(price), "prev_close": Decimal(price)}
    )
account = BrokerAccount.objects.get(name=spec["account"])
account.approval_threshold = None
account.order_timeout = timedelta(seconds=5)
account.save(update_fields=["approval_threshold", "order_timeout"])
snapshot_ingest(upload=parse_upload(spec["first_target"]), client=client, auth_type="api_key", remote_addr=None)
print(json.dumps({"api_key": api_key}))
"""


# --- small helpers --------------------------------------------------------------------








def child_env(database_url: str) -> dict[str, str]:
    return server_env(database_url, {"QUOTE_HTTP_ENABLED": "false"})


def run_checked(env: dict[str, str], args: list[str], *, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, input=stdin, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:3])} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


class Child:
    """A subprocess with its output in a log file; stopped politely, then firmly."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        extra = (
            {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
            if os.name == "nt"
            else {"start_new_session": True}  # Ctrl+C reaches only us; we stop the child
        )
        self.process = subprocess.Popen(
            [sys.executable, *args], cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT, **extra
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.closed:
            self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def cpu_seconds(self) -> float | None:
        """utime + stime (Linux /proc only)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def stop(self, *, interrupt_first: bool = False) -> None:
        if self.alive():
            if interrupt_first and os.name != "nt":
                self.process.send_signal(signal.SIGINT)  # the worker finishes its step, releases its lease
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            if self.alive():
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        if not self.log.closed:
            self.log.close()


def django_setup(database_url: str) -> None:
    """Point this process at the benchmark database (read-mostly; the children write)."""
    for key, value in child_env(database_url).items():
        if key in (
            "DATABASE_URL",
            "SECRET_KEY",
            "DJANGO_SETTINGS_MODULE",
            "ALLOWED_HOSTS",
            "LOG_LEVEL",
            "QUOTE_HTTP_ENABLED",
        ):
            os.environ[key] = value
    os.environ.pop("DEBUG", None)
    import django

    django.setup()


# --- waiting for the children ------------------------------------------------------------


def wait_ready(server: Child, base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"server exited:\n{server.log_tail()}")
        try:
            if requests.get(base + INFO_PATH, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server did not answer {INFO_PATH} within {timeout:.0f} s:\n{server.log_tail()}")


def wait_orders(account, count: int, worker: Child, timeout: float = 60) -> None:
    from execution.models import Order

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
        if Order.objects.filter(account=account, sent_at__isnull=False).count() >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"worker placed no first orders within {timeout:.0f} s:\n{worker.log_tail()}")


# --- orchestration -----------------------------------------------------------------------------


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--interval", type=float, default=1.0, help="qmt_worker --interval (seconds)")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--planner-runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-planner", action="store_true")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (database, logs)")
    args = parser.parse_args()
    if hasattr(signal, "SIGTERM"):
        # `kill` cleans up like Ctrl+C does: the finally below stops the server and the worker.
        signal.signal(signal.SIGTERM, _interrupt)

    # One generator per section: the planner case is the same whatever is skipped.
    latency_rng, planner_rng = random.Random(args.seed), random.Random(args.seed + 1)
    tmp = Path(tempfile.mkdtemp(prefix="qmtjq-latency-"))
    database_url = f"sqlite:///{(tmp / 'bench.sqlite3').as_posix()}"
    env = child_env(database_url)
    children: list[Child] = []
    need_worker = not (args.skip_latency and args.skip_idle)
    print(
        f"qmtjq execution benchmark — Python {sys.version.split()[0]}, {sys.platform}, {os.cpu_count()} CPUs"
        + (f", load {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "")
        + f", database {database_url}"
    )
    try:
        started = time.perf_counter()
        run_checked(env, ["manage.py", "migrate", "--no-input"])
        django_setup(database_url)
        print(f"  migrated in {time.perf_counter() - started:.1f} s")

        if need_worker:
            run_checked(
                env,
                [
                    "manage.py",
                    "create_account",
                    ACCOUNT,
                    "--mode",
                    "paper",
                    "--account-id",
                    "B1",
                    "--cash",
                    "100000000",
                    "--subscribe",
                    f"{STRATEGY}:ratio:1",
                    "--no-trading-hours",
                ],
            )
            spec = {
                "account": ACCOUNT,
                "prices": BENCH_PRICES,
                "first_target": target_payload({code: 100 for code in BENCH_PRICES}),
            }
            api_key = json.loads(
                run_checked(env, ["-c", SETUP_SCRIPT], stdin=json.dumps(spec)).strip().splitlines()[-1]
            )["api_key"]
            from execution.models import BrokerAccount

            account = BrokerAccount.objects.get(name=ACCOUNT)
            worker = Child(
                "worker",
                ["manage.py", "qmt_worker", "--account", ACCOUNT, "--interval", f"{args.interval:g}"],
                env,
                tmp / "worker.log",
            )
            children.append(worker)
            wait_orders(account, len(BENCH_PRICES), worker)  # the first target is placed
            print(f"  worker pid {worker.pid} placed the first {len(BENCH_PRICES)} orders")

        if not args.skip_latency:
            print(
                f"\n== 1. upload accepted → order placed ({args.uploads} uploads, worker interval "
                f"{args.interval:g} s, paper account)"
            )
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
            time.sleep(args.interval)  # let the worker settle the first orders' events
            result = bench_latency(base, api_key, account, worker, args.uploads, args.interval, latency_rng)
            print_latency(result, args.interval, args.uploads)
            server.stop()

        if not args.skip_planner:
            # In this process, on another account of the same database; the worker idles meanwhile.
            print("\n== 2. planner time (20 strategies × 300 lines, ~300 holdings)")
            bench_planner(planner_rng, args.planner_runs)

        if not args.skip_idle:
            print(f"\n== 3. worker idle cost ({args.idle_seconds:g} s, no target change)")
            time.sleep(min(2.0, args.interval * 2))  # the last order's events are applied
            bench_idle(worker, args.idle_seconds)
        if need_worker:
            worker.stop(interrupt_first=True)
            if not args.skip_idle:
                bench_cycles(ACCOUNT, args.interval, strategy=STRATEGY, prices=BENCH_PRICES)
        print(f"\ndone in {time.perf_counter() - started:.0f} s")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted")
        return 130
    finally:
        for child in reversed(children):
            child.stop()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may never have been set up
            pass
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

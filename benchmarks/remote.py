"""A trading PC far from its server: what a WAN link costs the worker (issue 9).

    python benchmarks/remote.py [--mode shared|remote] [--delay-ms 20] [--uploads 100] [--lines 20] [--repeat 3]
                                [--mysql-url mysql://root@127.0.0.1:3306/qmtjq_bench_remote]
                                [--no-direct] [--repo PATH] [--keep]

Modes (one section each; `--mode` picks one):

- `shared`: the worker uses the server's MariaDB directly, through
  `benchmarks/delay_proxy.py` adding `--delay-ms` each way (20 ms = 40 ms
  round trip). A fresh paper account follows a `--lines`-line target (one buy
  per line, admin prices, no approval hold, hours off); each repeat resets the
  account's ledger and paper books, then runs `manage.py qmt_worker --account
  NAME --once` (the command, via `call_command`, in a child process) until it
  converges. Printed per run: wall seconds of the child process (Python and
  Django start included), seconds inside the command, SQL queries (counted in
  the child), rounds, queries per round, and the network round trips the proxy
  saw (queries plus transaction control and the connection handshake). With
  `--no-direct` the run without the proxy (the database on this machine) is
  skipped. Aim: converged in ≤ 8 s at 40 ms RTT.

- `remote`: the trading PC runs `qmt_worker --server` with its own SQLite
  database against the server (waitress, its own SQLite) through a delay
  proxy; prints upload → order sent p50/p99 over `--uploads` uploads and the
  time until the server's mirror shows it (`benchmarks/remote_mode.py`).
  Aim: p99 ≤ 1.5 s at 40 ms RTT.

The database is dropped and created first and dropped at the end unless
`--keep`. `--repo` runs everything from another checkout of the project (for
example an export of an older commit, to compare). Figures are printed, never
asserted; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_server import MysqlDb, server_env  # noqa: E402
from delay_proxy import DelayProxy  # noqa: E402

ACCOUNT = "remote-bench"
STRATEGY = "REMOTE_BENCH"
AIM_SHARED_SECONDS = 8.0

# Run once after `migrate`: the paper account, admin prices, the target.
SETUP_SCRIPT = """
import json, sys
from decimal import Decimal
import django
django.setup()
from execution.models import ManualQuote
from execution.services.accounts import SubscriptionSpec, account_create
from positions.services import api_client_create, snapshot_ingest
from positions.validation import parse_upload

spec = json.load(sys.stdin)
account = account_create(
    name=spec["account"], mode="paper", account_id="RB1", starting_cash=Decimal("10000000"),
    subscriptions=[SubscriptionSpec(spec["strategy"], "ratio", Decimal("1"))], enforce_trading_hours=False,
)
account.approval_threshold = None
account.save(update_fields=["approval_threshold"])
for code in spec["codes"]:
    ManualQuote.objects.update_or_create(code=code, defaults={"last_price": Decimal("10.00")})
client, _ = api_client_create(name="remote-bench", rate_limit_per_minute=0)
payload = {"strategy_name": spec["strategy"], "positions": [{"code": c, "volume": 1000, "cost": 10.0} for c in spec["codes"]]}
snapshot_ingest(upload=parse_upload(payload), client=client, auth_type="api_key", remote_addr=None)
"""

# Before each run: the account owns nothing again (its target stays).
RESET_SCRIPT = """
import sys
import django
django.setup()
from execution import models as m
account = m.BrokerAccount.objects.get(name=sys.argv[1])
for model in (m.Order, m.Fill, m.Round, m.Holding, m.AccountState, m.EquityPoint, m.ManagedCode,
              m.PaperOrder, m.PaperPosition, m.WorkerLease):
    model.objects.filter(account=account).delete()
# The book stays (as on any start after the first), with its starting cash again.
m.PaperBook.objects.filter(account=account).update(cash=account.paper_starting_cash, frozen_cash=0)
"""

# The worker under test: the real command, with the SQL it runs counted.
WORKER_SCRIPT = """
import json, sys, time
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from execution.models import Order, Round
queries = []
def count(execute, sql, params, many, context):
    queries.append(sql)
    return execute(sql, params, many, context)
connection.execute_wrappers.append(count)
started = time.monotonic()
code = 0
try:
    call_command("qmt_worker", "--account", sys.argv[1], "--once", "--interval", sys.argv[2])
except SystemExit as exc:
    code = exc.code
seconds = time.monotonic() - started
total = len(queries)
connection.execute_wrappers.remove(count)
print("RESULT " + json.dumps({
    "exit": code, "seconds": seconds, "queries": total,
    "rounds": Round.objects.filter(account__name=sys.argv[1]).count(),
    "orders": Order.objects.filter(account__name=sys.argv[1]).count(),
}))
"""



def child_env(database_url: str) -> dict[str, str]:
    return server_env(database_url, {"QUOTE_HTTP_ENABLED": "false"})


def run_python(repo: Path, env: dict[str, str], args: list[str], *, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=repo, env=env, input=stdin, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])[:60]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def via(url: str, port: int) -> str:
    """The same database URL, pointed at the proxy's port on this machine."""
    parts = urlsplit(url)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{port}"))


# --- shared mode ----------------------------------------------------------------------------


@dataclass
class SharedRun:
    delay_ms: float
    wall: float
    seconds: float
    queries: int
    rounds: int
    orders: int
    round_trips: int | None
    exit: int


def shared_run(repo: Path, url: str, delay_ms: float | None, interval: float) -> SharedRun:
    env = child_env(url)
    run_python(repo, env, ["-c", RESET_SCRIPT, ACCOUNT])
    proxy = None
    if delay_ms is not None:
        parts = urlsplit(url)
        proxy = DelayProxy(upstream=(parts.hostname or "127.0.0.1", parts.port or 3306), delay_ms=delay_ms).start()
        env = child_env(via(url, proxy.port))
    try:
        started = time.monotonic()
        out = run_python(repo, env, ["-c", WORKER_SCRIPT, ACCOUNT, str(interval)])
        wall = time.monotonic() - started
    finally:
        if proxy is not None:
            proxy.stop()
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    return SharedRun(
        delay_ms=delay_ms or 0.0,
        wall=wall,
        seconds=result["seconds"],
        queries=result["queries"],
        rounds=result["rounds"],
        orders=result["orders"],
        round_trips=proxy.round_trips if proxy else None,
        exit=result["exit"] or 0,
    )


def shared_mode(args: argparse.Namespace) -> int:
    repo = args.repo.resolve()
    db = MysqlDb(args.mysql_url)
    print(f"shared mode: worker ↔ MariaDB, {args.lines}-line target, paper broker, code from {repo}")
    db.create()
    try:
        env = child_env(args.mysql_url)
        run_python(repo, env, ["manage.py", "migrate", "--noinput"])
        codes = [f"6{n:05d}.SH" for n in range(args.lines)]
        spec = {"account": ACCOUNT, "strategy": STRATEGY, "codes": codes}
        run_python(repo, env, ["-c", SETUP_SCRIPT], stdin=json.dumps(spec))
        delays = ([None] if args.direct else []) + [args.delay_ms]
        runs: list[SharedRun] = []
        print(
            f"{'link':>14} | {'wall s':>6} | {'command s':>9} | {'queries':>7} | {'rounds':>6} | "
            f"{'queries/round':>13} | {'round trips':>11} | exit"
        )
        for delay in delays:
            for _ in range(args.repeat):
                run = shared_run(repo, args.mysql_url, delay, args.interval if args.interval is not None else 0.05)
                runs.append(run)
                link = "direct" if delay is None else f"+{delay:g} ms/way"
                trips = "-" if run.round_trips is None else str(run.round_trips)
                print(
                    f"{link:>14} | {run.wall:6.2f} | {run.seconds:9.2f} | {run.queries:7d} | {run.rounds:6d} | "
                    f"{run.queries / max(run.rounds, 1):13.1f} | {trips:>11} | {run.exit}"
                )
                if run.orders != args.lines or run.exit != 0:
                    print(f"  unexpected: {run.orders} orders, exit {run.exit}")
        slow = [r.wall for r in runs if r.delay_ms == args.delay_ms]
        median = statistics.median(slow)
        verdict = "ok" if median <= AIM_SHARED_SECONDS else "MISSED"
        print(
            f"median at +{args.delay_ms:g} ms each way ({2 * args.delay_ms:g} ms RTT): {median:.2f} s wall "
            f"(aim ≤ {AIM_SHARED_SECONDS:g} s: {verdict})"
        )
    finally:
        if not args.keep:
            db.drop()
    return 0


def remote_mode(args: argparse.Namespace) -> int:
    """Worker ↔ server over HTTP through a delay proxy: `benchmarks/remote_mode.py` measures it."""
    sys.path.insert(0, str(HERE))
    from remote_mode import print_result, run_remote_mode

    interval = args.interval if args.interval is not None else 0.5
    result = run_remote_mode(
        uploads=args.uploads, delay_ms=args.delay_ms, interval=interval, seed=1, keep=args.keep
    )
    print_result(result, uploads=args.uploads, delay_ms=args.delay_ms, interval=interval)
    return 0


MODES = {"shared": shared_mode, "remote": remote_mode}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="shared")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="added each way (default 20 = 40 ms RTT)")
    parser.add_argument("--lines", type=int, default=20, help="target lines, one order each (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per link (default 3)")
    parser.add_argument(
        "--interval", type=float, default=None, help="qmt_worker --interval (default 0.05 shared, 0.5 remote)"
    )
    parser.add_argument("--uploads", type=int, default=100, help="remote mode: uploads measured (default 100)")
    parser.add_argument(
        "--mysql-url", default="mysql://root@127.0.0.1:3306/qmtjq_bench_remote", help="dropped and created"
    )
    parser.add_argument("--no-direct", dest="direct", action="store_false", help="skip the run without delay")
    parser.add_argument("--repo", type=Path, default=HERE.parent, help="checkout whose code runs")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    return MODES[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())

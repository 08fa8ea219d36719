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
import logging
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import requests
from bench_server import free_port, server_env

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

UPDATE_PATH = "/api/v1/positions/update"
INFO_PATH = "/api/v1/auth/info"
ACCOUNT = "bench"
STRATEGY = "BENCH"
# The codes the latency run trades, with their admin prices.
BENCH_PRICES = {
    "600000.SH": "10.00",
    "600036.SH": "35.00",
    "601318.SH": "45.00",
    "000001.SZ": "12.00",
    "000858.SZ": "150.00",
}
ORDER_WAIT = 10.0  # an upload without an order after this long counts as missed
POLL = 0.02
AIM_LATENCY_P99 = 1.5  # seconds
AIM_PLANNER_MS = 50.0

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


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 200 values is the 198th smallest)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"




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


# --- 1. upload → order -----------------------------------------------------------------


@dataclass
class LatencyResult:
    server: list[float] = field(default_factory=list)  # Order.sent_at − Upload.received_at
    client: list[float] = field(default_factory=list)  # response → order row seen
    http: list[float] = field(default_factory=list)  # upload request round trip
    stored_to_sent: list[float] = field(default_factory=list)  # Round.created_at → Order.sent_at
    missed: int = 0
    unexpected: list[str] = field(default_factory=list)


def target_payload(volumes: dict[str, int]) -> dict:
    return {
        "strategy_name": STRATEGY,
        "positions": [
            {"code": code, "volume": volume, "cost": float(BENCH_PRICES[code])}
            for code, volume in volumes.items()
        ],
    }


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


def bench_latency(
    base: str, api_key: str, account, worker: Child, uploads: int, interval: float, rng: random.Random
) -> LatencyResult:
    from execution.models import Order
    from positions.models import Upload

    result = LatencyResult()
    volumes = {code: 100 for code in BENCH_PRICES}  # the first target, placed by the setup
    codes = list(BENCH_PRICES)
    session = requests.Session()
    headers = {"Content-Type": "application/json", "X-API-Key": api_key}
    last_order_id = (
        Order.objects.filter(account=account).order_by("-id").values_list("id", flat=True).first() or 0
    )
    for index in range(uploads):
        if not worker.alive():
            raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
        time.sleep(rng.uniform(0, interval))  # land anywhere in the worker's cycle
        code = codes[index % len(codes)]
        volumes[code] += 100
        body = json.dumps(target_payload(volumes)).encode()
        started = time.perf_counter()
        response = session.post(base + UPDATE_PATH, data=body, headers=headers, timeout=30)
        answered = time.perf_counter()
        result.http.append(answered - started)
        if response.status_code != 200 or not response.json().get("changed"):
            raise RuntimeError(
                f"upload {index} was not stored: HTTP {response.status_code} {response.text[:300]}"
            )
        upload = Upload.objects.get(snapshot_id=response.json()["snapshot_id"])
        order = None
        while time.perf_counter() - answered < ORDER_WAIT:
            order = (
                Order.objects.filter(account=account, id__gt=last_order_id, sent_at__isnull=False)
                .select_related("round")
                .order_by("id")
                .first()
            )
            if order is not None:
                break
            time.sleep(POLL)
        seen = time.perf_counter()
        if order is None:
            result.missed += 1
            last_order_id = (
                Order.objects.filter(account=account).order_by("-id").values_list("id", flat=True).first()
            )
            continue
        result.client.append(seen - answered)
        result.server.append((order.sent_at - upload.received_at).total_seconds())
        result.stored_to_sent.append((order.sent_at - order.round.created_at).total_seconds())
        extra = Order.objects.filter(account=account, id__gt=order.id).count()
        if (order.code, order.side, order.volume) != (code, "buy", 100) or extra:
            result.unexpected.append(
                f"upload {index}: expected buy 100 {code}, got {order.side} {order.volume} {order.code}"
                + (f" and {extra} more order(s)" if extra else "")
            )
        if order.round.targets.get(STRATEGY) != upload.target_id:
            result.unexpected.append(f"upload {index}: order from round on snapshot {order.round.targets}")
        last_order_id = (
            Order.objects.filter(account=account).order_by("-id").values_list("id", flat=True).first()
        )
        if (index + 1) % 50 == 0:
            print(
                f"  {index + 1}/{uploads} uploads, server p50 so far {ms(statistics.median(result.server))}"
            )
    return result


def print_latency(result: LatencyResult, interval: float, uploads: int) -> None:
    print(
        f"\n  {len(result.server)} of {uploads} uploads produced their order; missed (> {ORDER_WAIT:g} s): "
        f"{result.missed}"
    )
    rows = [
        ("upload accepted → order sent (server clocks)", result.server),
        ("upload response → order seen (client, 20 ms poll)", result.client),
        ("  of which round stored → order sent", result.stored_to_sent),
        ("upload HTTP round trip", result.http),
    ]
    print(f"  {'':52} {'p50':>11} {'p99':>11} {'max':>11} {'min':>11}")
    for label, values in rows:
        if values:
            print(
                f"  {label:52} {ms(percentile(values, 50))} {ms(percentile(values, 99))} "
                f"{ms(max(values))} {ms(min(values))}"
            )
    for line in result.unexpected[:10]:
        print(f"  UNEXPECTED: {line}")
    if result.server:
        p99 = percentile(result.server, 99)
        verdict = "meets" if p99 <= AIM_LATENCY_P99 else "MISSES"
        print(f"  aim p99 ≤ {AIM_LATENCY_P99:g} s: {verdict} (p99 {p99:.3f} s)")
        mean = statistics.fmean(result.server)
        print(
            f"  mean {mean:.3f} s: waiting for the next cycle averages ≈ interval/2 = {interval / 2:.3f} s, "
            f"so ≈ {ms(mean - interval / 2).strip()} is the worker's own work (min above: the work alone)"
        )


# --- 2. planner --------------------------------------------------------------------------


@dataclass
class PlannerCase:
    strategies: list[tuple[str, Decimal, list[tuple[str, int, Decimal]]]]  # name, ratio, lines
    holdings: list[tuple[str, int]]
    prices: dict[str, Decimal]
    cash: Decimal


def planner_case(
    rng: random.Random, n_strategies: int = 20, n_lines: int = 300, n_holdings: int = 300
) -> PlannerCase:
    pool = [f"{600000 + i:06d}.SH" for i in range(1000)] + [f"{i:06d}.SZ" for i in range(1, 1000)]
    prices = {code: Decimal(rng.randint(300, 8000)) / 100 for code in pool}
    ratios = [Decimal("0.5"), Decimal("1"), Decimal("1.5"), Decimal("2"), Decimal("0.3")]
    strategies = []
    for n in range(n_strategies):
        codes = rng.sample(pool, n_lines)
        lines = [(code, 100 * rng.randint(1, 50), prices[code]) for code in codes]
        strategies.append((f"PLAN{n:02d}", ratios[n % len(ratios)], lines))
    targeted = sorted({code for _, _, lines in strategies for code, _, _ in lines})
    untargeted = sorted(set(pool) - set(targeted))
    held = rng.sample(targeted, min(n_holdings * 5 // 6, len(targeted)))
    held += rng.sample(untargeted, min(n_holdings - len(held), len(untargeted)))  # managed: sold off
    holdings = [(code, 100 * rng.randint(1, 80)) for code in sorted(held)]
    return PlannerCase(strategies, holdings, prices, cash=Decimal("1000000000"))


def planner_inputs_memory(case: PlannerCase, now):
    from execution import planner

    subs = [
        planner.SubscribedTarget(
            strategy_id=n + 1,
            strategy_name=name,
            mode="ratio",
            ratio=ratio,
            snapshot_id=n + 1,
            confirmed_at=now,
            lines=tuple(planner.TargetLine(code, volume, cost) for code, volume, cost in lines),
        )
        for n, (name, ratio, lines) in enumerate(case.strategies)
    ]
    holdings = {
        code: planner.Holding(code, volume, volume, case.prices[code], case.prices[code])
        for code, volume in case.holdings
    }
    market_value = sum((case.prices[code] * volume for code, volume in case.holdings), Decimal(0))
    view = planner.AccountView(
        cash=case.cash,
        total_asset=case.cash + market_value,
        holdings=holdings,
        managed_codes=frozenset(holdings),
    )
    quotes = {}
    for code, price in case.prices.items():
        up, down = (
            (price * Decimal("1.1")).quantize(Decimal("0.01")),
            (price * Decimal("0.9")).quantize(Decimal("0.01")),
        )
        quotes[code] = planner.Quote(code, price, up_stop=up, down_stop=down, source="bench")
    return subs, view, quotes, planner.AccountPolicy(approval_threshold=None)


@dataclass
class Timing:
    wall: list[float]
    cpu: list[float]  # this process's CPU time: what the code costs when the machine is busy


def timed(func, runs: int, warmup: int = 3) -> tuple[Timing, object]:
    result = None
    for _ in range(warmup):
        result = func()
    timing = Timing([], [])
    for _ in range(runs):
        cpu, started = time.process_time(), time.perf_counter()
        result = func()
        timing.wall.append(time.perf_counter() - started)
        timing.cpu.append(time.process_time() - cpu)
    return timing, result


def print_timing(label: str, timing: Timing, note: str = "") -> None:
    wall = timing.wall
    print(
        f"  {label:38} min {ms(min(wall))}  p50 {ms(statistics.median(wall))}  max {ms(max(wall))}"
        f"  (CPU p50 {ms(statistics.median(timing.cpu)).strip()})" + (f"  {note}" if note else "")
    )


def bench_planner(rng: random.Random, runs: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from execution import planner, selectors
    from execution.models import AccountState, Holding, ManagedCode, ManualQuote
    from execution.quotes import ManualQuoteProvider
    from execution.services.accounts import SubscriptionSpec, account_create
    from positions.services import api_client_create, snapshot_ingest
    from positions.validation import parse_upload

    case = planner_case(rng)
    now = timezone.now()
    subs, view, quotes, policy = planner_inputs_memory(case, now)
    lines = sum(len(s.lines) for s in subs)
    samples, plan = timed(
        lambda: planner.plan_round(subscriptions=subs, account=view, quotes=quotes, policy=policy, now=now),
        runs,
    )
    buys = sum(o.side == "buy" for o in plan.orders)
    print(
        f"  {len(subs)} strategies × {lines // len(subs)} lines ({lines} lines, {len(plan.target)} codes in the "
        f"account target), {len(view.holdings)} holdings, {len(quotes)} quotes; {runs} runs"
    )
    print_timing(
        "plan_round (in memory)",
        samples,
        f"→ {plan.status}, {buys} buys + {len(plan.orders) - buys} sells, {len(plan.skips)} skips",
    )
    p50 = statistics.median(samples.wall) * 1000
    print(
        f"  aim < {AIM_PLANNER_MS:g} ms: {'meets' if p50 < AIM_PLANNER_MS else 'MISSES'} (p50 {p50:.1f} ms)"
    )

    # The same case stored in the database, read the way round_run reads it.
    print("  storing the same case in the database ...")
    account = account_create(
        name="planbench",
        mode="paper",
        account_id="PB",
        starting_cash=case.cash,
        subscriptions=[SubscriptionSpec(name, "ratio", ratio) for name, ratio, _ in case.strategies],
        enforce_trading_hours=False,
    )
    client, _ = api_client_create(name="planner-bench", rate_limit_per_minute=0)
    for name, _, strategy_lines in case.strategies:
        payload = {
            "strategy_name": name,
            "positions": [{"code": c, "volume": v, "cost": float(p)} for c, v, p in strategy_lines],
        }
        snapshot_ingest(upload=parse_upload(payload), client=client, auth_type="api_key", remote_addr=None)
    AccountState.objects.create(account=account, cash=case.cash, total_asset=view.total_asset, updated_at=now)
    Holding.objects.bulk_create(
        Holding(
            account=account,
            code=c,
            volume=v,
            can_use_volume=v,
            avg_cost=case.prices[c],
            last_price=case.prices[c],
            updated_at=now,
        )
        for c, v in case.holdings
    )
    ManagedCode.objects.bulk_create(ManagedCode(account=account, code=c) for c, _ in case.holdings)
    ManualQuote.objects.bulk_create(
        (ManualQuote(code=c, last_price=p, prev_close=p) for c, p in case.prices.items()),
        ignore_conflicts=True,
    )
    now = timezone.now()

    account.approval_threshold = None  # as for the in-memory case: plan, never hold
    account.save(update_fields=["approval_threshold"])

    def from_db():
        return selectors.subscribed_targets(account=account), selectors.account_view(account=account, now=now)

    with CaptureQueriesContext(connection) as queries:
        from_db()
    n_queries = len(queries)
    samples_db, (subs_db, view_db) = timed(from_db, runs)
    print_timing(
        "planner inputs from DB",
        samples_db,
        f"(subscribed_targets + account_view, {n_queries} queries, "
        f"{sum(len(s.lines) for s in subs_db)} lines, {len(view_db.holdings)} holdings)",
    )
    sub_samples, _ = timed(lambda: selectors.subscribed_targets(account=account), runs)
    view_samples, _ = timed(lambda: selectors.account_view(account=account, now=now), runs)
    print_timing("  of which subscribed_targets", sub_samples)
    print_timing("  of which account_view", view_samples)
    codes = sorted({line.code for s in subs_db for line in s.lines} | set(view_db.holdings))
    quote_samples, quotes_db = timed(lambda: ManualQuoteProvider().get(codes), runs)
    print_timing(f"admin quotes from DB ({len(codes)} codes)", quote_samples)
    policy_db = selectors.account_policy(account=account)
    plan_samples, plan_db = timed(
        lambda: planner.plan_round(
            subscriptions=subs_db, account=view_db, quotes=quotes_db, policy=policy_db, now=now
        ),
        runs,
    )
    print_timing(
        "plan_round on the DB inputs", plan_samples, f"→ {plan_db.status}, {len(plan_db.orders)} orders"
    )


# --- 3. idle worker ------------------------------------------------------------------------


def bench_idle(worker: Child, seconds: float) -> None:
    cpu0, rss0, wall0 = worker.cpu_seconds(), worker.rss_mb(), time.perf_counter()
    time.sleep(seconds)
    cpu1, rss1, wall1 = worker.cpu_seconds(), worker.rss_mb(), time.perf_counter()
    if not worker.alive():
        raise RuntimeError(f"worker exited during the idle run:\n{worker.log_tail()}")
    if cpu0 is None or cpu1 is None:
        print(f"  worker idle {seconds:g} s: CPU and RSS n/a (needs Linux /proc)")
        return
    print(
        f"  worker subprocess idle {wall1 - wall0:.1f} s: CPU {cpu1 - cpu0:.2f} s = "
        f"{(cpu1 - cpu0) / (wall1 - wall0) * 100:.1f} % of one core; RSS {rss0:.1f} → {rss1:.1f} MB"
    )


def bench_cycles(account_name: str, interval: float) -> None:
    """SQL queries and time per cycle of an in-process Worker on the benchmark account."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from execution.models import BrokerAccount, Order, WorkerLease
    from execution.runtime import broker_for, quote_source_for
    from execution.worker import Worker, WorkerConfig
    from positions.models import ApiClient, Strategy
    from positions.services import snapshot_ingest
    from positions.validation import parse_upload

    # Expected on Linux, printed once by the quote chain in this process; not news here.
    logging.getLogger("execution.quotes").setLevel(logging.ERROR)
    account = BrokerAccount.objects.get(name=account_name)
    # A worker stopped without Ctrl+C (Windows) leaves its lease: expire it.
    WorkerLease.objects.filter(account=account).update(expires_at=timezone.now() - timedelta(seconds=1))
    quote_source = quote_source_for(account)
    worker = Worker(
        account=account,
        broker=broker_for(account, quote_source=quote_source),
        quote_source=quote_source,
        config=WorkerConfig(interval=interval),
        say=lambda line: None,
    )
    worker.start()
    try:
        worker.cycle()  # first cycle: sees the targets as new, checks convergence

        def measure(prepare=None, repeat: int = 5) -> tuple[list[int], list[float]]:
            counts, times = [], []
            for _ in range(repeat):
                if prepare:
                    prepare()
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    worker.cycle()
                    times.append(time.perf_counter() - started)
                counts.append(len(queries))
            return counts, times

        def report(label: str, counts: list[int], times: list[float]) -> None:
            spread = f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
            print(f"  {label:46} {spread:>5} queries  p50 {ms(statistics.median(times))}")

        report("idle cycle (nothing due)", *measure())
        report(
            "idle cycle with state refresh due (10 s)",
            *measure(lambda: worker._timers.last.pop("state", None)),
        )
        report("idle cycle with everything due", *measure(worker._timers.last.clear))

        client = ApiClient.objects.get(name="latency-bench")
        snapshot = Strategy.objects.get(name=STRATEGY).current_snapshot
        volumes = dict(snapshot.lines.values_list("code", "volume"))
        counts, times = [], []
        for n in range(3):
            code = list(BENCH_PRICES)[n % len(BENCH_PRICES)]
            volumes[code] += 100
            payload = {
                "strategy_name": STRATEGY,
                "positions": [
                    {"code": c, "volume": v, "cost": float(BENCH_PRICES[c])} for c, v in volumes.items()
                ],
            }
            worker.cycle()  # applies the previous order's events (the paper broker fills at once)
            snapshot_ingest(
                upload=parse_upload(payload), client=client, auth_type="api_key", remote_addr=None
            )
            before = Order.objects.count()
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                worker.cycle()
                times.append(time.perf_counter() - started)
            counts.append(len(queries))
            if Order.objects.count() != before + 1:
                print(f"  (expected one order from the round cycle, got {Order.objects.count() - before})")
        report("cycle that plans and places one order", counts, times)
    finally:
        worker.stop()


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
                bench_cycles(ACCOUNT, args.interval)
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

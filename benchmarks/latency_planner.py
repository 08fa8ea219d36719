"""The planner part of benchmarks/latency.py: plan_round on a generated 20-strategy case, in memory
and read from the database the way round_run reads it, with the timing helpers the script shares."""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from decimal import Decimal

AIM_PLANNER_MS = 50.0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


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

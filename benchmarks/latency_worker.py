"""The idle-worker part of benchmarks/latency.py: a worker's CPU and memory when idle, and the SQL
queries and time of its cycles (idle, with timers due, and one that plans and places an order)."""

from __future__ import annotations

import logging
import statistics
import time
from datetime import timedelta

from latency_planner import ms


def bench_idle(worker, seconds: float) -> None:
    """CPU and memory of the worker subprocess (latency.Child) while it has nothing to do."""
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


def bench_cycles(account_name: str, interval: float, *, strategy: str, prices: dict) -> None:
    """SQL queries and time per cycle of an in-process Worker on the benchmark account, whose
    `strategy` targets the codes of `prices`."""
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
        snapshot = Strategy.objects.get(name=strategy).current_snapshot
        volumes = dict(snapshot.lines.values_list("code", "volume"))
        counts, times = [], []
        for n in range(3):
            code = list(prices)[n % len(prices)]
            volumes[code] += 100
            payload = {
                "strategy_name": strategy,
                "positions": [
                    {"code": c, "volume": v, "cost": float(prices[c])} for c, v in volumes.items()
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

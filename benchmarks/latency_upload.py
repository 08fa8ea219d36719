"""The upload → order part of benchmarks/latency.py: how long from an accepted upload to the order
the worker sends (server clock and client clock), with the uploads landing at random points of the
worker's cycle."""

from __future__ import annotations

import json
import random
import statistics
import time
from dataclasses import dataclass, field

import requests
from latency_planner import ms

UPDATE_PATH = "/api/v1/positions/update"
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


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 200 values is the 198th smallest)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


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


def bench_latency(
    base: str, api_key: str, account, worker, uploads: int, interval: float, rng: random.Random
) -> LatencyResult:
    """`uploads` uploads, each a new target; `worker` is the running qmt_worker (latency.Child)."""
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

"""The tables benchmarks/ingest.py prints: every run, the per-round ratios to jq2qmt, the medians."""

from __future__ import annotations

import statistics

from ingest_load import RunResult

TARGET_P99_MS = 100.0
TARGET_CPU_MS = 4.0
TARGET_RATIO = 1.5


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

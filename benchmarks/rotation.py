"""Rotation speed: one take-profit/stop-loss pass over 500 holdings, and one rotation run with top-N 50.

    python benchmarks/rotation.py [--holdings 500] [--top-n 50] [--repeat 20]

Uses a fresh SQLite database in a temp folder (network excluded: prices are
admin-entered quotes, the selection is an uploaded list). Aims: TP/SL pass
< 100 ms, rotation run < 200 ms. Prints figures; asserts nothing.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def setup_django(db_path: Path) -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    os.environ["DJANGO_SETTINGS_MODULE"] = "qmtjq.settings"
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bond_codes(count: int) -> list[str]:
    # SH 110xxx/113xxx and SZ 123xxx/127xxx/128xxx are convertible bonds.
    prefixes = [("113", "SH"), ("110", "SH"), ("123", "SZ"), ("127", "SZ"), ("128", "SZ")]
    codes = []
    for prefix, exchange in prefixes:
        for number in range(1000):
            codes.append(f"{prefix}{number:03d}.{exchange}")
            if len(codes) == count:
                return codes
    raise ValueError("too many codes")


def timed(fn, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def report(label: str, samples: list[float], aim_ms: float) -> None:
    p50 = statistics.median(samples)
    verdict = "ok" if p50 < aim_ms else "MISSED"
    print(
        f"{label:<44} min {min(samples):7.1f}  p50 {p50:7.1f}  max {max(samples):7.1f} ms   aim < {aim_ms:g} ms {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--holdings", type=int, default=500)
    parser.add_argument("--top-n", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        setup_django(Path(folder) / "bench.sqlite3")
        from django.utils import timezone

        from execution.models import AccountState, Holding, ManualQuote
        from execution.services.accounts import account_create
        from rotation.models import RotationRun, Selection
        from rotation.services import SelectedBond, rotation_create, run_execute, selection_store, tp_sl_check

        now = timezone.now()
        codes = bond_codes(args.holdings + 100)
        held_codes, candidates = codes[: args.holdings], codes
        account = account_create(name="bench", mode="paper", account_id="B", enforce_trading_hours=False)
        AccountState.objects.create(
            account=account, cash=Decimal("5000000"), total_asset=Decimal("10000000"), updated_at=now
        )
        ManualQuote.objects.bulk_create(ManualQuote(code=code, last_price=Decimal("120")) for code in codes)
        Holding.objects.bulk_create(
            Holding(
                account=account,
                code=code,
                volume=100,
                can_use_volume=100,
                avg_cost=Decimal("119"),
                last_price=Decimal("120"),
                market_value=Decimal("12000"),
                updated_at=now,
            )
            for code in held_codes
        )

        # TP/SL: a rotation holding `--holdings` bonds, ratios that do not trigger (a full pass, no writes).
        tp_rotation = rotation_create(
            name="tpsl",
            account=account,
            top_n=args.holdings,
            take_profit_ratio=Decimal("0.5"),
            stop_loss_ratio=Decimal("0.5"),
        )
        from positions.codes import to_jq
        from positions.models import TargetSnapshot
        from positions.services import target_write
        from positions.validation import TargetPosition

        target_write(
            strategy=tp_rotation.strategy,
            positions=tuple(TargetPosition(c, to_jq(c), "", 100, Decimal("119")) for c in held_codes),
            source=TargetSnapshot.Source.ROTATION,
        )
        samples = timed(lambda: tp_sl_check(now=now, dry_run=True), args.repeat)
        report(f"TP/SL pass over {args.holdings} holdings", samples, 100)

        # Rotation run: top-N from a 100-bond uploaded selection; each run's list is shifted
        # by half the cap, so every timed run sells and buys (a real change of target).
        tp_rotation.enabled = False
        tp_rotation.save()
        run_rotation = rotation_create(name="rot", account=account, top_n=args.top_n)
        today = timezone.localdate()
        samples = []
        for index in range(args.repeat):
            start = (index * args.top_n // 2) % 100
            window = (candidates[100:] + candidates[:100])[start : start + 100]
            selection_store(
                rotation=run_rotation,
                trade_date=today,
                bonds=[SelectedBond(c) for c in window],
                source=Selection.Source.CSV,
            )
            slot = now.replace(microsecond=0) + timezone.timedelta(seconds=index + 1)
            run = RotationRun.objects.create(
                rotation=run_rotation, slot=slot, trigger=RotationRun.Trigger.MANUAL
            )
            began = time.perf_counter()
            result = run_execute(run=run, now=now)
            samples.append((time.perf_counter() - began) * 1000)
            assert result.status == RotationRun.Status.DONE, result.message
        changed = sum(1 for row in result.decision if row["action"] in ("buy", "sell"))
        print(f"(last run: {changed} buys/sells in its decision)")
        report(f"rotation run, top-N {args.top_n} of 100 selected", samples, 200)


if __name__ == "__main__":
    main()

"""`python manage.py generate_orders --orders 1000000 --account bench [--holdings 300]`: history at scale."""

import json
import time

from django.core.management.base import BaseCommand, CommandError

from execution.models import BrokerAccount
from execution.services.accounts import account_create
from execution.services.order_history import (
    OrderHistoryRefused,
    holdings_generate,
    order_history_check,
    order_history_generate,
)


class Command(BaseCommand):
    help = (
        "Write made-up finished orders (in rounds, with fills and status events) spread over years "
        "into paper accounts, for benchmarks and demos. Refuses live accounts. Missing accounts are "
        "created as paper accounts with the worker and trading off."
    )

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, required=True, help="How many orders to write.")
        parser.add_argument(
            "--account",
            action="append",
            required=True,
            metavar="NAME",
            help="Paper account to fill (repeatable: orders are spread over all of them).",
        )
        parser.add_argument(
            "--holdings",
            type=int,
            default=0,
            help="Also replace the first account's holdings by this many lines (with state and equity curve).",
        )
        parser.add_argument("--years", type=float, default=3, help="Spread the orders over this many years.")
        parser.add_argument("--seed", type=int, default=1, help="Random seed (same seed, same history).")
        parser.add_argument("--chunk", type=int, default=5000, help="Orders per INSERT batch and commit.")
        parser.add_argument("--json", action="store_true", help="Print the row counts as JSON.")

    def handle(self, *args, orders, account, holdings, years, seed, chunk, json: bool, **options):
        if orders < 0 or holdings < 0 or chunk < 1 or years <= 0:
            raise CommandError("--orders and --holdings must be >= 0, --chunk >= 1, --years > 0")
        names = list(dict.fromkeys(account))
        existing = {a.name: a for a in BrokerAccount.objects.filter(name__in=names)}
        try:
            order_history_check(accounts=existing.values())
        except OrderHistoryRefused as exc:
            raise CommandError(str(exc))
        accounts = [existing.get(name) or self._paper_account(name) for name in names]
        started = time.monotonic()

        def progress(done: int) -> None:
            if not json and done and (done % 100_000 < chunk or done == orders):
                self.stdout.write(f"  {done:,} orders ({time.monotonic() - started:.0f} s)")

        counts = order_history_generate(
            accounts=accounts, orders=orders, years=years, seed=seed, chunk=chunk, progress=progress
        )
        held = holdings_generate(account=accounts[0], count=holdings, seed=seed) if holdings else 0
        summary = {
            "accounts": names,
            "rounds": counts.rounds,
            "orders": counts.orders,
            "fills": counts.fills,
            "events": counts.events,
            "holdings": held,
            "seconds": round(time.monotonic() - started, 1),
        }
        if json:
            self.stdout.write(_dumps(summary))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Wrote {counts.orders:,} orders, {counts.rounds:,} rounds, {counts.fills:,} fills, "
                    f"{counts.events:,} events and {held} holdings in {summary['seconds']} s."
                )
            )

    @staticmethod
    def _paper_account(name: str) -> BrokerAccount:
        account = account_create(name=name, mode=BrokerAccount.Mode.PAPER, account_id=f"GEN-{name}"[:64])
        account.enabled = account.trading_enabled = False  # history only: no worker trades it
        account.save(update_fields=["enabled", "trading_enabled"])
        return account


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)

"""`python manage.py check_tp_sl [--dry-run] [--json]`: one take-profit/stop-loss pass now."""

import json

from django.core.management.base import BaseCommand
from django.utils import timezone

from execution.calendar import can_place_orders
from rotation import services


class Command(BaseCommand):
    help = (
        "Check every enabled rotation's held bonds against take-profit/stop-loss now (profit vs cost basis) "
        "and print each trigger (rotation, code, kind, price, cost, ratio). Unlike the scheduled job it "
        "also runs outside trading sessions; a trigger then waits for the next session to trade."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Only print what would trigger: write no target, record no event, notify nobody.",
        )
        parser.add_argument("--json", action="store_true", help="Print the triggers as a JSON list.")

    def handle(self, *args, **options):
        dry_run = options["dry_run"]
        now = timezone.now()
        triggers = services.tp_sl_check(now=now, dry_run=dry_run)
        if options["json"]:
            # Prices and ratios are Decimals: keep their exact text.
            self.stdout.write(json.dumps(triggers, default=str, ensure_ascii=False, indent=2))
            return
        open_now, reason = can_place_orders(now)
        if not open_now:
            self.stdout.write(f"note: not in a trading session ({reason}); prices may be stale")
        if not triggers:
            self.stdout.write("nothing triggered")
            return
        prefix = "would trigger" if dry_run else "triggered"
        for trigger in triggers:
            line = (
                f"{prefix}: {trigger['rotation']} {trigger['code']} {trigger['kind']} "
                f"price {trigger['price']} cost {trigger['cost']} ratio {trigger['ratio']}"
            )
            if trigger.get("refill"):
                line += f" refill {trigger['refill']}"
            self.stdout.write(line)

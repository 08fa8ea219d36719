"""`python manage.py run_rotation NAME [--dry-run] [--date YYYY-MM-DD]`: run one rotation now and show its decision."""

import sys
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rotation.models import RotationRun, RotationStrategy
from rotation.services import RotationError, rotation_run_now


class Command(BaseCommand):
    help = "Run a rotation now and print the decision table (code, name, action, volume, reason). Exit 1 if it failed."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Rotation strategy name.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Decide and print; write no target, record no run."
        )
        parser.add_argument("--date", help="Trade date of the selection to use (default today).")

    def handle(self, *args, name, dry_run, date: str | None, **options):
        rotation = RotationStrategy.objects.select_related("account", "strategy").filter(name=name).first()
        if rotation is None:
            raise CommandError(f"no rotation strategy named {name!r}")
        trade_date = None
        if date:
            try:
                trade_date = _parse_date(date)
            except ValueError:
                raise CommandError(f"--date {date!r}: use YYYY-MM-DD")
        try:
            run, decision, message = rotation_run_now(
                rotation=rotation, now=timezone.now(), trade_date=trade_date, dry_run=dry_run
            )
        except RotationError as exc:
            raise CommandError(str(exc))
        rows = decision.rows if decision is not None else None
        if run is not None:
            rows = run.decision
            self.stdout.write(f"run #{run.pk} {run.status}: {run.message}".rstrip(": "))
        if rows is None:
            self.stderr.write(f"not run: {message}")
            sys.exit(1)
        self._table(rows if isinstance(rows[0] if rows else {}, dict) else [r.as_dict() for r in rows])
        if run is not None and run.status == RotationRun.Status.FAILED:
            sys.exit(1)

    def _table(self, rows: list[dict]) -> None:
        if not rows:
            self.stdout.write("(no bonds)")
            return
        self.stdout.write(f"{'code':<11} {'name':<10} {'action':<5} {'volume':>7}  reason")
        for row in rows:
            self.stdout.write(
                f"{row['code']:<11} {row['name'][:10]:<10} {row['action']:<5} {row['volume']:>7}  {row['reason']}"
            )


def _parse_date(text: str) -> date:
    return date.fromisoformat(text)

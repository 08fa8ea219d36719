"""`python manage.py create_account NAME --mode paper|live --account-id ID ...` for scripted setup."""

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from execution.services.accounts import SubscriptionSpec, account_create


def parse_subscription(text: str) -> SubscriptionSpec:
    """STRATEGY, STRATEGY:ratio:R or STRATEGY:capital:C (the strategy name may itself contain ':')."""
    parts = text.rsplit(":", 2)
    if len(parts) == 3 and parts[1] in ("ratio", "capital"):
        name, scaling, amount = parts
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise CommandError(f"--subscribe {text!r}: {amount!r} is not a number")
        if not value.is_finite() or value < 0:
            raise CommandError(f"--subscribe {text!r}: the amount must be a non-negative number")
        return SubscriptionSpec(name, scaling, value)
    return SubscriptionSpec(text, "ratio", Decimal(1))


class Command(BaseCommand):
    help = "Create a broker account (paper or live) with its subscriptions."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Account name used with qmt_worker --account.")
        parser.add_argument("--mode", choices=["paper", "live"], required=True)
        parser.add_argument("--account-id", required=True, help="Broker account id (资金账号).")
        parser.add_argument("--cash", help="Paper starting cash (default 1,000,000).")
        parser.add_argument(
            "--subscribe",
            action="append",
            default=[],
            metavar="STRATEGY[:ratio:R|:capital:C]",
            help="Follow a strategy (repeatable). Default scaling ratio 1.",
        )
        parser.add_argument(
            "--no-trading-hours", action="store_true", help="Paper only: trade outside hours (demos)."
        )
        parser.add_argument("--userdata", default="", help="MiniQMT userdata_mini path (live).")

    def handle(self, *args, name, mode, account_id, cash, subscribe, no_trading_hours, userdata, **options):
        if mode == "live" and no_trading_hours:
            raise CommandError(
                "--no-trading-hours is for paper accounts only; live accounts always enforce hours"
            )
        if cash is not None and mode != "paper":
            raise CommandError("--cash is for paper accounts only")
        try:
            starting_cash = Decimal(cash) if cash is not None else None
        except InvalidOperation:
            raise CommandError(f"--cash {cash!r} is not a number")
        if starting_cash is not None and (not starting_cash.is_finite() or starting_cash <= 0):
            raise CommandError("--cash must be a positive amount")
        specs = [parse_subscription(text) for text in subscribe]
        try:
            account = account_create(
                name=name,
                mode=mode,
                account_id=account_id,
                starting_cash=starting_cash,
                subscriptions=specs,
                enforce_trading_hours=not no_trading_hours,
                userdata_mini_path=userdata,
            )
        except ValidationError as exc:
            details = exc.message_dict if hasattr(exc, "error_dict") else {"account": exc.messages}
            raise CommandError("; ".join(f"{field}: {' '.join(errors)}" for field, errors in details.items()))
        self.stdout.write(f"Created {account} with {len(specs)} subscription(s).")
        if account.is_paper:
            self.stdout.write(
                "Trading switch is ON for this paper account. Run: python manage.py qmt_worker --account "
                + name
            )
        else:
            self.stdout.write("Trading switch is OFF for live accounts: turn it on in admin when ready.")

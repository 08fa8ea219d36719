"""Fill the trading calendar from exchange_calendars or MiniQMT's xtdata, or add a year by hand."""

import json
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from execution import calendar


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option}: {text!r} is not a date; use YYYY-MM-DD")


def _holidays(values: list[str]) -> set[date]:
    """`2027-01-01` or a range `2027-02-05..2027-02-12`, inclusive."""
    days = set()
    for value in values:
        first_text, _sep, last_text = value.partition("..")
        first = _date(first_text, "--holiday")
        last = _date(last_text, "--holiday") if last_text else first
        if last < first:
            raise CommandError(f"--holiday: {value!r} ends before it starts")
        days.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return days


class Command(BaseCommand):
    help = (
        "Store trading days: from exchange_calendars XSHG (default), from MiniQMT's xtdata "
        "(--from-xtdata, on the trading PC), or a whole year by hand (--add-year with --holiday). "
        "Prints how many days changed, the date the calendar is known until, and any warning."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--from-xtdata",
            action="store_true",
            help="Use xtdata.get_trading_dates (needs xtquant and a running MiniQMT).",
        )
        parser.add_argument("--start", help="First date, YYYY-MM-DD (default: January 1 of last year).")
        parser.add_argument(
            "--end",
            help="Last date, YYYY-MM-DD (default: December 31 of next year for exchange_calendars, "
            "whatever xtdata knows for --from-xtdata).",
        )
        parser.add_argument(
            "--add-year",
            type=int,
            metavar="YEAR",
            help="Store YEAR as admin rows: weekdays open, weekends and every --holiday closed.",
        )
        parser.add_argument(
            "--holiday",
            action="append",
            default=[],
            metavar="DATE[..DATE]",
            help="With --add-year: a weekday the exchanges are closed (repeatable; ranges inclusive).",
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print exactly one JSON object."
        )

    def handle(self, *args, from_xtdata, start, end, add_year, holiday, as_json, **options):
        today = timezone.localdate(timezone=calendar.SHANGHAI)
        if add_year is not None:
            if from_xtdata or start or end:
                raise CommandError("--add-year cannot be combined with --from-xtdata, --start or --end")
            try:
                stored = calendar.calendar_year_add(year=add_year, holidays=_holidays(holiday))
            except ValueError as exc:
                raise CommandError(f"--holiday: {exc}")
            source = f"--add-year {add_year}"
        else:
            if holiday:
                raise CommandError("--holiday needs --add-year")
            default_start, default_end = calendar.default_refresh_range(today)
            start_date = _date(start, "--start") if start else default_start
            end_date = _date(end, "--end") if end else None
            if end_date is not None and end_date < start_date:
                raise CommandError(f"--end {end_date} is before --start {start_date}")
            if from_xtdata:
                stored = self._refresh_from_xtdata(start_date, end_date)
                source = "xtdata"
            else:
                try:
                    stored = calendar.calendar_seed_from_exchange_calendars(
                        start=start_date, end=end_date or default_end
                    )
                except calendar.CalendarSourceError as exc:
                    raise CommandError(str(exc))
                source = "exchange_calendars (XSHG)"
        known_until = calendar.calendar_known_until()
        warning = calendar.calendar_warning(today)
        disagreements = list(getattr(stored, "disagreements", ()))
        if as_json:
            payload = {
                "source": source,
                "stored": int(stored),
                "known_until": known_until.isoformat() if known_until else None,
                "warning": warning,
                "disagreements": disagreements,
            }
            self.stdout.write(json.dumps(payload, ensure_ascii=False))
            return
        self.stdout.write(f"{stored} days added or changed from {source}.")
        self.stdout.write(f"Trading calendar known until: {known_until or 'nothing stored'}.")
        if disagreements:
            self.stdout.write(
                self.style.WARNING(
                    f"Sources disagree on {len(disagreements)} day(s) (noted on each row in admin):"
                )
            )
            for line in disagreements:
                self.stdout.write(f"  {line}")
        if warning:
            self.stdout.write(self.style.WARNING(f"WARNING: {warning}"))

    def _refresh_from_xtdata(self, start: date, end: date | None) -> calendar.CalendarStored:
        try:
            from xtquant import xtdata
        except Exception as exc:  # ImportError, or its Windows-only native parts failing to load
            raise CommandError(
                f"xtquant is not usable here ({exc}); --from-xtdata works on the trading PC with MiniQMT."
            )
        try:
            return calendar.calendar_refresh_from_xtdata(xtdata_module=xtdata, start=start, end=end)
        except calendar.CalendarSourceError as exc:
            raise CommandError(str(exc))

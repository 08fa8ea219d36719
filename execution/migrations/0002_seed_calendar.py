"""Seed the trading calendar 2015-01-01..2026-12-31 from exchange_calendars (XSHG) when it is installed.

Self-contained on purpose (no app imports), so later code changes cannot break
it. Without exchange_calendars nothing is seeded; `manage.py calendar_refresh`
or the admin fills the table later, and the worker refuses to trade until then.
"""

import warnings
from datetime import date, timedelta

from django.db import migrations

START = date(2015, 1, 1)
END = date(2026, 12, 31)


def seed(apps, schema_editor):
    try:
        import exchange_calendars
        from exchange_calendars.exchange_calendar_xshg import XSHGExchangeCalendar
    except ImportError:
        return
    first = max(START, XSHGExchangeCalendar.bound_min().date())
    last = min(END, XSHGExchangeCalendar.bound_max().date())
    if first > last:
        return
    with warnings.catch_warnings():
        # Newer pandas warns about deprecations inside the library; not ours to act on.
        warnings.simplefilter("ignore", DeprecationWarning)
        xshg = exchange_calendars.get_calendar("XSHG", start=first.isoformat(), end=last.isoformat())
    # The calendar is built for [first, last]: its sessions are exactly the open days in it.
    open_days = {session.date() for session in xshg.sessions}
    TradingDay = apps.get_model("execution", "TradingDay")
    db_alias = schema_editor.connection.alias
    existing = set(TradingDay.objects.using(db_alias).values_list("date", flat=True))
    rows = []
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        if day not in existing:
            rows.append(TradingDay(date=day, is_open=day in open_days, source="exchange_calendars"))
    TradingDay.objects.using(db_alias).bulk_create(rows, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [("execution", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

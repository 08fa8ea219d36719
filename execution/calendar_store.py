"""Storing one calendar source's view of the trading days (DESIGN §4): the merge rule and its reports.

A day that any source (exchange_calendars, xtdata, an admin row) closes stays
closed unless an admin opened it; each disagreement is logged, noted on the
row (visible in admin) and returned with the count of rows changed.
"""

import logging
from collections.abc import Iterable
from datetime import date

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import TradingDay

logger = logging.getLogger("execution.calendar")
Source = TradingDay.Source


class CalendarStored(int):
    """How many rows a refresh added or changed (it is that int), plus the days its sources disagree on."""

    disagreements: tuple[str, ...]

    def __new__(cls, stored: int, disagreements: Iterable[str] = ()):
        result = super().__new__(cls, stored)
        result.disagreements = tuple(disagreements)
        return result


def _label(source: str) -> str:
    return str(Source(source).label)


def _disagreement(day: date, *, opened_by: str, closed_by: str, kept_open: bool) -> str:
    return _("%(date)s: %(open)s says open, %(closed)s says closed: kept %(kept)s") % {
        "date": day,
        "open": _label(opened_by),
        "closed": _label(closed_by),
        "kept": _("open (an admin opened it)") if kept_open else _("closed"),
    }


def _closers(row: TradingDay | None) -> set[str]:
    """The sources that close this row's day now (an admin row decides alone: none)."""
    if row is None or row.is_open or row.source == Source.ADMIN:
        return set()
    return {name for name in row.closed_by.split(",") if name} or {row.source}


def _joined(closers: set[str]) -> str:
    return ",".join(sorted(closers))


def _days_store(
    days: dict[date, bool], *, source: str, closed_elsewhere: dict[date, str] | None = None
) -> CalendarStored:
    """Store one source's view of `days`: a day any source closes stays closed unless an admin opened it.

    `closed_elsewhere` names, per day, another source that (asked just now)
    says closed. Admin rows are overwritten only by the admin; a refresh
    reopens a day only when it was the one that closed it. Each disagreement
    is logged, written to the row's note (admin) and returned. Identical rows
    are left alone so `updated_at` shows real changes.
    """
    if not days:
        return CalendarStored(0)
    closed_elsewhere = closed_elsewhere or {}
    now = timezone.now()
    disagreements = []
    with transaction.atomic():
        existing = {
            row.date: row
            for row in TradingDay.objects.select_for_update().filter(date__range=(min(days), max(days)))
        }
        to_create, to_update = [], []

        def write(row, is_open: bool, row_source: str, note: str, closed_by: str = "") -> None:
            if (row.is_open, row.source, row.note, row.closed_by) != (is_open, row_source, note, closed_by):
                row.is_open, row.source, row.note, row.updated_at = is_open, row_source, note, now
                row.closed_by = closed_by
                to_update.append(row)

        for day, is_open in sorted(days.items()):
            row = existing.get(day)
            if source == Source.ADMIN:
                if row is None:
                    to_create.append(TradingDay(date=day, is_open=is_open, source=source))
                else:
                    write(row, is_open, source, row.note if row.source == Source.ADMIN else "")
                continue
            if row is not None and row.source == Source.ADMIN:
                if row.is_open != is_open:
                    disagreements.append(
                        _disagreement(
                            day,
                            opened_by=Source.ADMIN if row.is_open else source,
                            closed_by=source if row.is_open else Source.ADMIN,
                            kept_open=row.is_open,
                        )
                    )
                continue
            closers = _closers(row)
            if is_open:
                # This source takes back its own closure only; every other closer still holds.
                closers.discard(source)
                if day in closed_elsewhere:
                    closers.add(closed_elsewhere[day])
                if closers:
                    kept_by = row.source if row is not None and row.source in closers else None
                    closer = closed_elsewhere.get(day) or kept_by or min(closers)
                    text = _disagreement(day, opened_by=source, closed_by=closer, kept_open=False)
                    disagreements.append(text)
                    if row is None:
                        to_create.append(
                            TradingDay(
                                date=day,
                                is_open=False,
                                source=closer,
                                note=text[:200],
                                closed_by=_joined(closers),
                            )
                        )
                    else:
                        write(row, False, kept_by or closer, text[:200], _joined(closers))
                    continue
                if row is None:
                    to_create.append(TradingDay(date=day, is_open=True, source=source))
                elif row.is_open and row.source == Source.XTDATA and source == Source.EXCHANGE_CALENDARS:
                    write(row, True, row.source, "")  # the broker's own calendar keeps its rows
                else:
                    write(row, True, source, "")
                continue
            # This source says closed: closed, whoever said open before.
            closers.add(source)
            if row is None:
                to_create.append(TradingDay(date=day, is_open=False, source=source, closed_by=source))
                continue
            text = ""
            if row.is_open and row.source != source:
                text = _disagreement(day, opened_by=row.source, closed_by=source, kept_open=False)
                disagreements.append(text)
            keep_xtdata = not row.is_open and row.source == Source.XTDATA
            # A day already closed keeps the note of the disagreement that kept it closed.
            note = text[:200] if text else (row.note if not row.is_open else "")
            write(row, False, row.source if keep_xtdata else source, note, _joined(closers))
        # A row created meanwhile by someone else (e.g. an admin) wins: ignore the conflict.
        TradingDay.objects.bulk_create(to_create, batch_size=1000, ignore_conflicts=True)
        TradingDay.objects.bulk_update(
            to_update, ["is_open", "source", "note", "closed_by", "updated_at"], batch_size=500
        )
    for text in disagreements:
        logger.warning("trading calendar sources disagree: %s", text)
    return CalendarStored(len(to_create) + len(to_update), disagreements)

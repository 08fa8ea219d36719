"""Order lists that stay fast with millions of rows: bounded counts and keyset (cursor) pages.

COUNT(*) over a million orders and OFFSET 500000 both read every row they
skip. A page here is found by a cursor, the (created_at, id) of the row at its
edge, so the database seeks through the (account, created_at, id) and
created_at indexes instead; rows are counted exactly only up to COUNT_LIMIT
(a filter on a column outside the index costs a row read per counted row).
Page numbers (`?page=`, OFFSET) keep working for short lists and old links.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q, QuerySet

from qmtjq.validation import DB_INT_MAX, PAGE_MAX, InputError

COUNT_LIMIT = 1_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# n = the page after (older rows), p = the page before (newer rows); then page number, µs since epoch, id.
_CURSOR = re.compile(r"^([np])([0-9]{1,7})\.([0-9]{1,17})\.([0-9]{1,19})$")
_MAX_MICROS = int((datetime(9999, 1, 1, tzinfo=UTC) - _EPOCH) / timedelta(microseconds=1))


@dataclass(frozen=True)
class Cursor:
    forward: bool  # True: rows older than the edge row
    page: int
    created_at: datetime
    pk: int


@dataclass(frozen=True)
class OrderPage:
    rows: list
    number: int
    count: int  # exact when count_exact, else COUNT_LIMIT: "more than" that
    count_exact: bool
    next_cursor: str | None
    previous_cursor: str | None
    size: int

    @property
    def num_pages(self) -> int | None:
        return max(1, -(-self.count // self.size)) if self.count_exact else None


def cursor_encode(*, page: int, created_at: datetime, pk: int, forward: bool = True) -> str:
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{'n' if forward else 'p'}{page}.{micros}.{pk}"


def cursor_decode(text: str, field: str = "cursor") -> Cursor:
    """A cursor from a Next/Previous link, or an InputError naming the field."""
    match = _CURSOR.match(text)
    if not match:
        raise InputError(f"{field}: not a cursor from a next/previous link")
    direction, page, micros, pk = match.groups()
    if not 1 <= int(page) <= PAGE_MAX or int(micros) > _MAX_MICROS or not 0 < int(pk) <= DB_INT_MAX:
        raise InputError(f"{field}: not a cursor from a next/previous link")
    return Cursor(direction == "n", int(page), _EPOCH + timedelta(microseconds=int(micros)), int(pk))


def count_bounded(queryset: QuerySet, *, limit: int | None = None) -> tuple[int, bool]:
    """(count, exact): counts at most limit + 1 rows, so a huge table costs what a short one does."""
    limit = COUNT_LIMIT if limit is None else limit
    # values("pk"): annotations shown on the page (e.g. a per-row subquery) are not computed to count.
    found = queryset.order_by().values("pk")[: limit + 1].count()
    return (found, True) if found <= limit else (limit, False)


def _older(cursor: Cursor) -> Q:
    # created_at <= edge is the range the index seeks on; the rest breaks ties by id.
    return Q(created_at__lte=cursor.created_at) & (Q(created_at__lt=cursor.created_at) | Q(pk__lt=cursor.pk))


def _newer(cursor: Cursor) -> Q:
    return Q(created_at__gte=cursor.created_at) & (Q(created_at__gt=cursor.created_at) | Q(pk__gt=cursor.pk))


def order_page_get(
    *,
    queryset: QuerySet,
    size: int,
    page: int = 1,
    cursor: Cursor | None = None,
    clamp: bool = False,
    deep_pages: bool = True,
) -> OrderPage:
    """One page of rows newest first (by created_at, then id), from a cursor or a page number.

    clamp (pages for people): a page number past the end shows the last page, and on a list
    longer than COUNT_LIMIT page numbers stop there (OFFSET would read every skipped row):
    Next links, which carry a cursor, go on from there.
    deep_pages=False (the API): on such a list a page number past that bound is an InputError
    pointing to the cursor, instead of an OFFSET that reads every skipped row.
    """
    newest_first = queryset.order_by("-created_at", "-id")
    count, exact = count_bounded(queryset)
    last_page_by_number = max(1, -(-COUNT_LIMIT // size))  # the last page starting inside the count
    if not deep_pages and cursor is None and not exact and page > last_page_by_number:
        raise InputError(
            f"page: this list has more than {COUNT_LIMIT} rows; page numbers stop at {last_page_by_number}, "
            "follow the next links (cursor=...) beyond"
        )
    if clamp:
        page = min(page, max(1, -(-count // size)) if exact else COUNT_LIMIT // size)
    number = page
    if cursor is not None and cursor.forward:
        rows = list(newest_first.filter(_older(cursor))[: size + 1])
        number, has_previous = cursor.page, True
    elif cursor is not None:
        rows = list(queryset.filter(_newer(cursor)).order_by("created_at", "id")[: size + 1])
        has_previous = len(rows) > size
        rows = rows[:size][::-1]
        if has_previous:
            number = max(cursor.page, 2)
            rows.append(None)  # the edge row is on a later page: there is a next page
        else:  # back at the newest rows: that is page 1, full
            rows, number = list(newest_first[: size + 1]), 1
    else:
        rows = list(newest_first[(page - 1) * size : page * size + 1])
        has_previous = page > 1
    has_next = len(rows) > size
    rows = rows[:size]
    if exact and rows:  # rows that arrived after the count; a page past the end adds none
        count = max(count, (number - 1) * size + len(rows))
    return OrderPage(
        rows=rows,
        number=number,
        count=count,
        count_exact=exact,
        next_cursor=cursor_encode(page=number + 1, created_at=rows[-1].created_at, pk=rows[-1].pk)
        if has_next and rows
        else None,
        previous_cursor=cursor_encode(page=number - 1, created_at=rows[0].created_at, pk=rows[0].pk, forward=False)
        if has_previous and rows and number > 1
        else None,
        size=size,
    )

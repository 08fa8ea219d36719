"""The code → name table: filled from uploads, rotation selections and xtdata instrument details."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.db import connection

from .models import SecurityName

SOURCE_UPLOAD = "upload"
SOURCE_SELECTION = "selection"
SOURCE_XTDATA = "xtdata"
NAME_LENGTH = SecurityName._meta.get_field("name").max_length


@dataclass(frozen=True)
class NamesChange:
    """What storing a set of names would write: rows to add and rows whose name differs."""

    to_create: dict[str, str] = field(default_factory=dict)
    changed: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.to_create or self.changed)


def security_names_upsert(*, names: Mapping[str, str], source: str) -> int:
    """Store the given names (empty ones ignored); rows already holding the same name are not rewritten."""
    return security_names_store(security_names_pending(names=names), source=source)


def security_names_pending(*, names: Mapping[str, str]) -> NamesChange:
    """Read only: which of the given names are new or differ from the stored ones (empty ones ignored).

    The upload path reads this before it takes its write lock; almost every
    name is already stored, so the write is usually nothing.
    """
    wanted = {
        code: name.strip()[:NAME_LENGTH] for code, name in names.items() if code and (name or "").strip()
    }
    if not wanted:
        return NamesChange()
    # Tuples, not model instances: every upload runs this for all its lines (issue 12).
    existing = _stored_names(list(wanted))
    return NamesChange(
        to_create={c: n for c, n in wanted.items() if c not in existing},
        changed={c: n for c, n in wanted.items() if c in existing and existing[c] != n},
    )


def security_names_store(change: NamesChange, *, source: str) -> int:
    """Write a change read by `security_names_pending`; a row another writer added meanwhile is kept."""
    if change.to_create:
        SecurityName.objects.bulk_create(
            [SecurityName(code=c, name=n, source=source) for c, n in change.to_create.items()],
            ignore_conflicts=True,
        )
    if change.changed:
        rows = list(SecurityName.objects.filter(code__in=list(change.changed)))
        for row in rows:
            row.name, row.source = change.changed[row.code], source
        SecurityName.objects.bulk_update(rows, ["name", "source"])
    return len(change.to_create) + len(change.changed)


def _stored_names(codes: list[str]) -> dict[str, str]:
    table = connection.ops.quote_name(SecurityName._meta.db_table)
    found: dict[str, str] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(codes), 500):  # stay far below every backend's parameter limit
            chunk = codes[start : start + 500]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(f"SELECT code, name FROM {table} WHERE code IN ({marks})", chunk)  # noqa: S608
            found.update(cursor.fetchall())
    return found


def security_names_get(codes: Iterable[str]) -> dict[str, str]:
    """{code: name} for the codes known; one query."""
    codes = {code for code in codes if code}
    if not codes:
        return {}
    return dict(SecurityName.objects.filter(code__in=codes).values_list("code", "name"))

"""The code → name table: filled from uploads, rotation selections and xtdata instrument details."""

from collections.abc import Iterable, Mapping

from django.db import connection

from .models import SecurityName

SOURCE_UPLOAD = "upload"
SOURCE_SELECTION = "selection"
SOURCE_XTDATA = "xtdata"
NAME_LENGTH = SecurityName._meta.get_field("name").max_length


def security_names_upsert(*, names: Mapping[str, str], source: str) -> int:
    """Store the given names (empty ones ignored); rows already holding the same name are not rewritten."""
    wanted = {
        code: name.strip()[:NAME_LENGTH] for code, name in names.items() if code and (name or "").strip()
    }
    if not wanted:
        return 0
    # Tuples, not model instances: every upload runs this for all its lines and
    # almost every name is already stored (issue 12: fewer ORM objects on the upload path).
    existing = _stored_names(list(wanted))
    to_create = [SecurityName(code=c, name=n, source=source) for c, n in wanted.items() if c not in existing]
    changed = {c: n for c, n in wanted.items() if c in existing and existing[c] != n}
    if to_create:
        SecurityName.objects.bulk_create(to_create, ignore_conflicts=True)
    if changed:
        rows = list(SecurityName.objects.filter(code__in=list(changed)))
        for row in rows:
            row.name, row.source = changed[row.code], source
        SecurityName.objects.bulk_update(rows, ["name", "source"])
    return len(to_create) + len(changed)


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

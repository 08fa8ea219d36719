"""The code → name table: filled from uploads, rotation selections and xtdata instrument details."""

from collections.abc import Iterable, Mapping

from .models import SecurityName

SOURCE_UPLOAD = "upload"
SOURCE_SELECTION = "selection"
SOURCE_XTDATA = "xtdata"
NAME_LENGTH = SecurityName._meta.get_field("name").max_length


def security_names_upsert(*, names: Mapping[str, str], source: str) -> int:
    """Store the given names (empty ones ignored); rows already holding the same name are not rewritten."""
    wanted = {code: name.strip()[:NAME_LENGTH] for code, name in names.items() if code and (name or "").strip()}
    if not wanted:
        return 0
    existing = {row.code: row for row in SecurityName.objects.filter(code__in=list(wanted))}
    to_create, to_update = [], []
    for code, name in wanted.items():
        row = existing.get(code)
        if row is None:
            to_create.append(SecurityName(code=code, name=name, source=source))
        elif row.name != name:
            row.name, row.source = name, source
            to_update.append(row)
    SecurityName.objects.bulk_create(to_create, ignore_conflicts=True)
    SecurityName.objects.bulk_update(to_update, ["name", "source"])
    return len(to_create) + len(to_update)


def security_names_get(codes: Iterable[str]) -> dict[str, str]:
    """{code: name} for the codes known; one query."""
    codes = {code for code in codes if code}
    if not codes:
        return {}
    return dict(SecurityName.objects.filter(code__in=codes).values_list("code", "name"))

"""The Simplified Chinese catalog is complete, compiled, and covers the source strings."""

import re
from pathlib import Path

import polib
from django.utils import translation

BASE_DIR = Path(__file__).resolve().parents[2]
PO = BASE_DIR / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
SOURCE_DIRS = ["qmtjq", "positions", "execution", "rotation", "templates"]


def test_every_entry_translated_and_not_fuzzy():
    po = polib.pofile(str(PO))
    assert not [e.msgid for e in po.untranslated_entries()]
    assert not [e.msgid for e in po.fuzzy_entries()]


def test_compiled_catalog_matches_po():
    """The committed .mo is what the .po says (no gettext tools needed at run time)."""
    po = {e.msgid: e.msgstr for e in polib.pofile(str(PO)) if not e.obsolete}
    mo = {e.msgid: e.msgstr for e in polib.mofile(str(MO))}
    assert mo == po


def _source_strings() -> set[str]:
    found = set()
    for folder in SOURCE_DIRS:
        for path in (BASE_DIR / folder).rglob("*"):
            if "tests" in path.parts or "clients" in path.parts or "migrations" in path.parts:
                continue
            if path.suffix == ".py":
                found |= set(re.findall(r"\b_\(\s*\"([^\"\\]+)\"\s*[,)]", path.read_text(encoding="utf-8")))
            elif path.suffix == ".html":
                text = path.read_text(encoding="utf-8")
                found |= set(re.findall(r'{% translate "([^"]+)"', text))
                found |= set(re.findall(r"{% translate '([^']+)'", text))
    return found


def test_catalog_covers_source_strings():
    """Run `manage.py makemessages -l zh_Hans` and translate when this fails."""
    catalog = {e.msgid for e in polib.pofile(str(PO))}
    strings = _source_strings()
    assert len(strings) > 50
    assert not sorted(strings - catalog)


def test_chinese_is_active_by_default_and_english_available():
    with translation.override("zh-hans"):
        assert translation.gettext("Target positions") == "目标持仓"
    with translation.override("en"):
        assert translation.gettext("Target positions") == "Target positions"

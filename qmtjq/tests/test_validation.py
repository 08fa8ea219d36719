"""The shared input checks: JSON decoding, text fields and query parameters."""

import pytest
from django.http import QueryDict

from qmtjq.validation import (
    DB_INT_MAX,
    InputError,
    json_parse,
    query_page,
    query_params_check,
    text_check,
    whole_number_text,
)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff",
        b"{",
        b"[" * 100_000,
        b"1" * 5000,
        b'{"a": NaN}',
        b'{"a": -Infinity}',
        b'"\\ud800"',
        b'{"a": ["ok", {"b": "\\udfff"}]}',
        b'{"\\ud800x": 1}',
    ],
)
def test_json_parse_turns_every_decoder_failure_into_input_error(raw):
    """Nothing the decoder can raise escapes as anything but InputError."""
    with pytest.raises(InputError):
        json_parse(raw)


def test_json_parse_names_the_path_of_an_unencodable_string():
    with pytest.raises(InputError, match=r"bonds\[1\]\.name"):
        json_parse(b'{"bonds": [{"name": "a"}, {"name": "\\ud800"}]}')


def test_json_parse_keeps_valid_text():
    assert json_parse('{"名": "\\ud83d\\ude00"}'.encode()) == {"名": "😀"}


@pytest.mark.parametrize("value", ["\ud800", "a\x00", "a\nb", "a\u2029b"])
def test_text_check_rejects_unencodable_and_control_text(value):
    with pytest.raises(InputError, match="field"):
        text_check(value, "field")


@pytest.mark.parametrize("value", ["a\u202eb", "a\u200bb", "\ufeffa", "a\u2060b"])
def test_text_check_rejects_invisible_characters_in_names_only(value):
    """Format characters (Cf) are refused in names; other text may carry them (e.g. emoji joiners)."""
    with pytest.raises(InputError, match="invisible"):
        text_check(value, "name", name=True)
    assert text_check(value, "note") == value


def test_text_check_allows_newlines_when_multiline():
    assert text_check("a\nb", "body", multiline=True) == "a\nb"


@pytest.mark.parametrize("text", ["²", "١٢", "1.0", "-1", "", "1e3", "9" * 5000, str(DB_INT_MAX + 1)])
def test_whole_number_text_accepts_only_ascii_digits_in_range(text):
    with pytest.raises(InputError):
        whole_number_text(text, "id")


def test_whole_number_text_in_range():
    assert whole_number_text(str(DB_INT_MAX), "id") == DB_INT_MAX


@pytest.mark.parametrize(("query", "page"), [("", 1), ("page=", 1), ("page=3", 3)])
def test_query_page(query, page):
    assert query_page(QueryDict(query)) == page


@pytest.mark.parametrize("query", ["page=0", "page=%C2%B2", "page=10000001"])
def test_query_page_rejects(query):
    with pytest.raises(InputError, match="page"):
        query_page(QueryDict(query))


def test_query_params_check_names_the_parameter():
    with pytest.raises(InputError, match="flt"):
        query_params_check(QueryDict("flt=%00"))


def test_text_check_fast_path_refuses_exactly_the_forbidden_categories():
    """Every code point, alone and inside a printable name: refused iff its category is forbidden (the
    str.isprintable shortcut must never let a control, invisible or surrogate character through)."""
    import sys
    import unicodedata

    forbidden = {"Cc", "Zl", "Zp", "Cf", "Cs"}
    wrong = []
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        try:
            text_check(f"a{char}b", "name", name=True)
            accepted = True
        except InputError:
            accepted = False
        if accepted == (unicodedata.category(char) in forbidden):
            wrong.append(hex(point))
    assert not wrong, wrong[:20]


def test_text_check_fast_path_still_checks_the_length():
    """A printable text longer than the limit is refused, at the limit accepted."""
    assert text_check("x" * 64, "name", max_length=64, name=True) == "x" * 64
    with pytest.raises(InputError, match="at most 64"):
        text_check("x" * 65, "name", max_length=64, name=True)

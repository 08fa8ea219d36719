"""Securities code normalization and classification (DESIGN §3)."""

import re

import pytest

from positions import codes
from positions.codes import InstrumentClass


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("600000.XSHG", "600000.SH"),
        ("sh600000", "600000.SH"),
        ("SH600000", "600000.SH"),
        ("600000.sh", "600000.SH"),
        ("600000", "600000.SH"),
        (" 600000.SH ", "600000.SH"),
        ("000001.XSHE", "000001.SZ"),
        ("sz000001", "000001.SZ"),
        ("000001", "000001.SZ"),
        ("430047.BJ", "430047.BJ"),
        ("bj430047", "430047.BJ"),
        ("830799", "830799.BJ"),
        ("920001", "920001.BJ"),
        ("870001", "870001.BJ"),
        ("688981", "688981.SH"),
        ("900901", "900901.SH"),
        ("510300", "510300.SH"),
        ("110059", "110059.SH"),
        ("111001", "111001.SH"),
        ("113050", "113050.SH"),
        ("118001", "118001.SH"),
        ("204001", "204001.SH"),
        ("300750", "300750.SZ"),
        ("200002", "200002.SZ"),
        ("159915", "159915.SZ"),
        ("161005", "161005.SZ"),
        ("123001", "123001.SZ"),
        ("127001", "127001.SZ"),
        ("128001", "128001.SZ"),
        ("131810", "131810.SZ"),
        ("112001.XSHE", "112001.SZ"),
    ],
)
def test_normalize_accepts_documented_forms(raw, canonical):
    """Every input form of DESIGN §3 maps to the canonical QMT code."""
    assert codes.normalize(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("112001", "cannot tell the exchange"),  # SZ corporate bond: ambiguous bare code
        ("700001", "cannot tell the exchange"),
        ("130001", "cannot tell the exchange"),
        ("600000.XHKG", "unknown exchange suffix"),
        ("00700", "Hong Kong"),
        ("00700.HK", "Hong Kong"),
        ("6000", "not a securities code"),
        ("6000000", "not a securities code"),
        ("abc", "not a securities code"),
        ("", "empty"),
        (600000, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_normalize_rejects_ambiguous_and_malformed(raw, reason):
    """Ambiguous or malformed codes are rejected with a reason, never guessed."""
    with pytest.raises(codes.CodeError, match=reason):
        codes.normalize(raw)


@pytest.mark.parametrize(
    ("canonical", "jq"),
    [("600000.SH", "600000.XSHG"), ("000001.SZ", "000001.XSHE"), ("430047.BJ", "430047.BJ")],
)
def test_to_jq(canonical, jq):
    assert codes.to_jq(canonical) == jq


@pytest.mark.parametrize(
    ("code", "klass"),
    [
        ("600000.SH", InstrumentClass.MAIN_BOARD),
        ("000001.SZ", InstrumentClass.MAIN_BOARD),
        ("688981.SH", InstrumentClass.STAR),
        ("689009.SH", InstrumentClass.STAR),
        ("300750.SZ", InstrumentClass.CHINEXT),
        ("430047.BJ", InstrumentClass.BJ),
        ("113050.SH", InstrumentClass.CONVERTIBLE_BOND),
        ("123001.SZ", InstrumentClass.CONVERTIBLE_BOND),
        ("128001.SZ", InstrumentClass.CONVERTIBLE_BOND),
        ("510300.SH", InstrumentClass.FUND),
        ("159915.SZ", InstrumentClass.FUND),
        ("204001.SH", InstrumentClass.NEVER_TRADED),
        ("131810.SZ", InstrumentClass.NEVER_TRADED),
        ("732001.SH", InstrumentClass.NEVER_TRADED),
        ("787001.SH", InstrumentClass.NEVER_TRADED),
    ],
)
def test_instrument_class(code, klass):
    assert codes.instrument_class(code) is klass


@pytest.mark.parametrize(
    ("code", "never"),
    [("204001.SH", True), ("131810.SZ", True), ("730001.SH", True), ("00700", True), ("600000.SH", False)],
)
def test_never_traded(code, never):
    """Reverse repo, IPO subscription and HK-connect codes are ignored on both sides."""
    assert codes.is_never_traded(code) is never


@pytest.mark.parametrize(
    "raw",
    [
        "\uff16\uff10\uff10\uff10\uff10\uff10",  # full-width ６０００００
        "\uff16\uff10\uff10\uff10\uff10\uff10.SH",
        "sh\uff16\uff10\uff10\uff10\uff10\uff10",
        "\u0666\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic ٦٠٠٠٠٠
        "\u0966\u0966\u0966\u0966\u0966\u0967.SZ",  # Devanagari
        "60000\u0660",  # one non-ASCII digit is enough
        "\uff10\uff10\uff17\uff10\uff10",  # full-width HK-looking code
    ],
)
def test_normalize_rejects_non_ascii_digits(raw):
    """Codes with non-ASCII digits are refused, never stored as codes that silently never trade."""
    with pytest.raises(codes.CodeError, match="ASCII digits"):
        codes.normalize(raw)


@pytest.mark.parametrize(
    ("code", "klass"),
    [
        ("508000.SH", InstrumentClass.OTHER),  # SH REIT
        ("180101.SZ", InstrumentClass.OTHER),  # SZ REIT
        ("132001.SH", InstrumentClass.OTHER),  # exchangeable bond
        ("510300.SH", InstrumentClass.FUND),
    ],
)
def test_classes_the_product_does_not_trade(code, klass):
    """REITs and exchangeable bonds are not funds or convertible bonds (DESIGN §4)."""
    assert codes.instrument_class(code) is klass


def test_never_traded_checks_ascii_digits():
    """A broker-reported code with non-ASCII digits is never treated as a tradable code."""
    assert codes.is_never_traded("\uff16\uff10\uff10\uff10\uff10\uff10.SH")


@pytest.mark.parametrize(
    "raw", ["600000.XSHG", "sz000001", "600000", " 000001.XSHE ", "112001", "00700", "６00000", "", "abc"]
)
def test_normalize_pair_agrees_with_normalize_every_time(raw):
    """The remembered form gives the same code (or the same error) as normalize, on first and later calls."""
    for _ in range(3):
        try:
            expected = (codes.normalize(raw), codes.to_jq(codes.normalize(raw)))
        except codes.CodeError as exc:
            with pytest.raises(codes.CodeError, match=re.escape(str(exc))):
                codes.normalize_pair(raw)
        else:
            assert codes.normalize_pair(raw) == expected


@pytest.mark.parametrize("raw", [None, 600000, ["600000.SH"], {"code": "600000.SH"}, 6.0, True])
def test_normalize_pair_refuses_what_is_not_a_string_with_a_code_error(raw):
    """Unhashable or non-string codes are a CodeError (a 400 upstream), never a TypeError from the cache."""
    with pytest.raises(codes.CodeError):
        codes.normalize_pair(raw)

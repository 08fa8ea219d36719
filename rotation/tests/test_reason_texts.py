"""Rotation decision reasons are stored as a text code with parameters next to the English reason
and rendered in the reader's language (qmtjq.display.decision_reason); old rows stay readable."""

from decimal import Decimal as D

import pytest
from django.urls import reverse
from django.utils import translation

from execution.planner import Quote
from qmtjq import display
from rotation.decisions import Candidate, decide
from rotation.tests.test_pages import (  # noqa: F401 (fixture)
    cells,
    rotation,  # noqa: F401 (fixture)
    row_of,
    run,
    user_client,
)
from rotation.texts import ROTATION_TEXTS


def _decision(**kwargs):
    selection = [Candidate("113050.SH", "南银转债", 1, D("100")), Candidate("123001.SZ", "蓝晓转债", 2, D("100"))]
    return decide(
        selection=selection, held={}, cash=D("100000"), top_n=1, sizing="equal", amount_per_bond=None,
        quotes={"113050.SH": Quote(code="113050.SH", last=D("100"))}, **kwargs,
    )


def test_decision_rows_store_a_code_and_parameters_next_to_the_english():
    rows = {row["code"]: row for row in (r.as_dict() for r in _decision().rows)}
    assert rows["113050.SH"]["reason"] == "rank 1"
    assert (rows["113050.SH"]["text"], rows["113050.SH"]["params"]) == ("rank", {"rank": 1})
    assert rows["123001.SZ"]["reason"] == "beyond the top 1"
    assert (rows["123001.SZ"]["text"], rows["123001.SZ"]["params"]) == ("beyond_top", {"n": 1})


@pytest.mark.parametrize(
    "language, expected",
    [("en", ["rank 12", "beyond the top 3", "left the selection; suspended now, the worker sells when it trades again"]),
     ("zh-hans", ["排名第 12", "排名在前 3 之外", "已移出入选名单；当前停牌，恢复交易后由 worker 卖出"])],
)
def test_reasons_render_from_their_parameters(language, expected):
    rows = [
        {"reason": "not used", "text": "rank", "params": {"rank": 12}},
        {"reason": "not used", "text": "beyond_top", "params": {"n": 3}},
        {"reason": "not used", "text": "left_selection+sells_when_trading", "params": {}},
    ]
    with translation.override(language):
        assert [display.decision_reason(row) for row in rows] == expected


def test_old_rows_without_a_code_use_the_stored_reason():
    with translation.override("zh-hans"):
        assert display.decision_reason({"reason": "rank 2"}) == "排名第 2"
        assert display.decision_reason({"reason": "free text"}) == "free text"
        assert display.decision_reason({"reason": "kept", "text": "no_such", "params": {}}) == "kept"


def test_every_rotation_text_has_a_chinese_translation():
    with translation.override("zh-hans"):
        missing = [key for key, english in ROTATION_TEXTS.items() if translation.gettext(english) == english]
    assert not missing


@pytest.mark.django_db
@pytest.mark.parametrize("language, expected", [("en", "ranked beyond the top 3"), ("zh-hans", "排名在前 3 之外")])
def test_rotation_page_shows_reasons_in_the_readers_language(user_client, rotation, language, expected):  # noqa: F811
    run(rotation, 1, [{"code": "113050.SH", "name": "南银转债", "action": "sell", "volume": 100,
                       "reason": "stored english", "text": "ranked_beyond_top", "params": {"n": 3}}])
    html = user_client.get(reverse("rotation:rotation-list"), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert cells(row_of(html, "113050.SH", table="decision"))[-1] == expected


def test_cooldown_reason_is_coded_and_renders_in_chinese():
    from rotation.texts import rotation_text

    cooling = {"123001.SZ": rotation_text("cooldown_take_profit", day="2026-12-01", days=2)}
    rows = {row["code"]: row for row in (r.as_dict() for r in _decision(cooling=cooling).rows)}
    row = rows["123001.SZ"]
    assert row["reason"] == "take-profit sold it on 2026-12-01: not bought back within 2 trading day(s) (cooldown)"
    with translation.override("zh-hans"):
        assert display.decision_reason(row) == "止盈已于 2026-12-01 卖出：2 个交易日内不买回（冷却期）"

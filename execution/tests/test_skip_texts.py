"""Skip details are stored as a text code with parameters (plus the English, for logs and old readers)
and rendered in the reader's language with the reader's number formats; old rows stay readable."""

import pytest
from django.utils import translation

from execution.planner import SkipReason, plan_round
from execution.planner.texts import SKIP_TEXTS
from execution.tests.test_planner import NOW, POLICY, quotes, sub, view
from qmtjq import display


def _plan(*, cash="1000000", holdings=(), target=()):
    return plan_round(
        subscriptions=[sub(target)], account=view(cash=cash, holdings=holdings, managed=[h[0] for h in holdings]),
        quotes=quotes(("600000.SH", "10.00")), policy=POLICY, now=NOW,
    )


def test_cash_skip_is_stored_with_a_code_and_parameters():
    plan = _plan(cash="5000", target=[("600000.SH", 1000, "10")])
    skip = next(s for s in plan.skips if s.reason == SkipReason.CASH)
    assert skip.text == "cash_covers"
    assert skip.params == {"cash": "5000.00", "n": 500}
    assert skip.detail == SKIP_TEXTS["cash_covers"] % {"cash": skip.params["cash"], "n": skip.params["n"]}


def test_t_plus_1_skip_is_stored_with_a_code_and_parameters():
    plan = _plan(holdings=[("600000.SH", 1000, 300)], target=[("600000.SH", 0, "10")])
    skip = next(s for s in plan.skips if s.reason == SkipReason.T_PLUS_1)
    assert (skip.text, skip.params) == ("t1_sellable", {"n": 300})
    assert skip.detail == "only 300 sellable now (T+1/frozen)"


@pytest.mark.parametrize("language, expected_part", [("zh-hans", "12,345.60"), ("en", "cash 12,345.60 covers 1,200")])
def test_structured_detail_renders_in_the_readers_language(language, expected_part):
    skip = {"code": "600000.SH", "reason": "cash", "detail": "stored english that is not used",
            "text": "cash_covers", "params": {"cash": "12345.6", "n": 1200}}
    with translation.override(language):
        shown = display.skip_detail(skip)
        expected = translation.gettext(SKIP_TEXTS["cash_covers"]) % {"cash": "12,345.60", "n": "1,200"}
    assert shown == expected and expected_part in shown
    if language == "zh-hans":
        assert "cash" not in shown


def test_old_rows_without_a_code_use_the_stored_text():
    old = {"code": "600000.SH", "reason": "t_plus_1", "detail": "only 300 sellable now (T+1/frozen)", "volume": 700}
    with translation.override("zh-hans"):
        assert display.skip_detail(old) == display.text(old["detail"]) != old["detail"]


def test_unknown_code_or_bad_parameters_fall_back_to_the_stored_english():
    for skip in (
        {"detail": "kept as stored", "text": "no_such_text", "params": {}},
        {"detail": "kept as stored", "text": "cash_covers", "params": {"cash": "1"}},  # "n" missing
        {"detail": "kept as stored", "text": "cash_covers", "params": "not a dict"},
    ):
        assert display.skip_detail(skip) == "kept as stored"


def test_every_skip_text_has_a_chinese_translation():
    with translation.override("zh-hans"):
        missing = [key for key, english in SKIP_TEXTS.items() if translation.gettext(english) == english]
    assert not missing


@pytest.mark.django_db
def test_round_page_renders_skips_from_their_parameters(client, django_user_model):
    from execution.models import Round
    from execution.services.accounts import account_create

    account = account_create(name="p9", mode="paper", account_id="P9")
    round_ = Round.objects.create(
        account=account, trigger="target_changed", status=Round.Status.PLACED,
        skips=[{"code": "600000.SH", "reason": "cash", "volume": 600, "detail": "cash 5000.00 covers 400",
                "text": "cash_covers", "params": {"cash": "5000.00", "n": 4000}}],
    )
    client.force_login(django_user_model.objects.create_user("v", password="pw-for-tests-only"))
    page = client.get(f"/rounds/{round_.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "cash 5,000.00 covers 4,000" in page  # from the parameters, not the stored "covers 400"

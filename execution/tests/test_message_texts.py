"""Round messages that used to be English matched by pattern at render time (a refused round, the
"same orders were rejected" block, held codes, scale problems) are stored as text codes with
parameters and read in the reader's language, parts joined the reader's way; old rows stay readable."""

import dataclasses
import re
from decimal import Decimal as D

import pytest
from django.test import override_settings
from django.utils import translation

from execution.brokers.paper import PaperBroker
from execution.models import Round
from execution.planner import PlanStatus, plan_round
from execution.planner.texts import HOLD_TEXTS, ROUND_TEXTS, SKIP_TEXTS
from execution.runtime import quote_source_for
from execution.services.holds import Held, plan_without_held
from execution.tests.conftest import upload_target
from execution.tests.test_planner import NOW, POLICY, quotes, sub, view
from execution.tests.test_worker import run_once
from qmtjq import display

SEP = {"zh-hans": "；", "en": "; "}


def _page(client, django_user_model, url, language):
    user = django_user_model.objects.filter(username="viewer").first()
    client.force_login(user or django_user_model.objects.create_user("viewer", password="pw-for-tests-only"))
    return client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()


def _refused_twice(account):
    """The broker refuses the only order (it sees the stock suspended): a failed round, then a blocked one."""
    upload_target("S", [("600000.SH", 1000, "10")])
    planner_quotes = quote_source_for(account)

    def broker_quotes(codes):
        return {code: dataclasses.replace(q, suspended=True) for code, q in planner_quotes(codes).items()}

    run_once(account, broker=PaperBroker(account, quote_source=broker_quotes), quote_source=planner_quotes)
    return Round.objects.get(status=Round.Status.FAILED), Round.objects.get(status=Round.Status.BLOCKED)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "language, words, foreign",
    [
        ("zh-hans", "经纪商拒绝了同样的订单", "rejected by the broker"),
        ("en", "the same orders were rejected by the broker", "经纪商"),
    ],
)
def test_rejected_again_block_reads_in_the_readers_language(
    paper_account, client, django_user_model, language, words, foreign
):
    """The status row and the round page say "the same orders were rejected" in the reader's language."""
    failed, blocked = _refused_twice(paper_account)
    # The stored English stays what logs, fingerprints and folding use.
    assert blocked.message.startswith("the same orders were rejected by the broker (600000.SH: ")
    assert blocked.message_params["text"] == "rejected_again"
    assert failed.message_params == {
        "parts": [{"text": "order_refused", "params": {"code": "600000.SH", "detail": "600000.SH is suspended"}}]
    }
    for url in ("/", f"/rounds/{blocked.pk}/"):
        page = _page(client, django_user_model, url, language)
        assert words in page and foreign not in page, url


def test_failed_round_parts_render_status_labels_and_join_the_readers_way():
    row = Round(
        message="600000.SH: rejected; 600001.SH: send failed",
        message_params={
            "parts": [
                {"text": "order_refused_status", "params": {"code": "600000.SH", "status": 57}},
                {"text": "order_refused", "params": {"code": "600001.SH", "detail": "send failed: timeout"}},
            ]
        },
    )
    with translation.override("zh-hans"):
        assert display.round_message(row) == "600000.SH: 废单 (57)；600001.SH: 发送失败：timeout"
    with translation.override("en"):
        assert display.round_message(row) == "600000.SH: rejected (57); 600001.SH: send failed: timeout"


def test_old_failed_and_rejected_rows_still_render():
    """Rows stored before the codes: the stored English through the old patterns, parts joined the reader's way."""
    old = Round(message="600000.SH: send failed: boom; 600001.SH: MiniQMT disconnected", message_params={})
    with translation.override("zh-hans"):
        shown = display.round_message(old)
    assert shown == "600000.SH: 发送失败：boom；600001.SH: MiniQMT 已断开"
    nested_old = Round(
        message="the same orders were rejected by the broker (x); waiting …",
        message_params={"text": "rejected_again", "params": {"previous": {"stored": "600000.SH: 已报"}, "minutes": 10}},
    )
    with translation.override("zh-hans"):
        assert "600000.SH: 已报" in display.round_message(nested_old)


HELD = {
    "600000.SH": Held(
        "3 orders in a row timed out without any fill (last at 10.05): not re-sent today",
        {"text": "unfilled_rounds", "params": {"rounds": 3, "price": "10.05"}},
    )
}


def _held_plan(held):
    plan = plan_round(
        subscriptions=[sub([("600000.SH", 1000, "10")])], account=view(cash="1000000"),
        quotes=quotes(("600000.SH", "10.00")), policy=POLICY, now=NOW,
    )
    assert plan.status is PlanStatus.PLACE
    plan_without_held(plan, held)
    return plan


@pytest.mark.parametrize(
    "language, message, skip",
    [
        (
            "zh-hans",
            "600000.SH 已暂停交易：连续 3 次委托超时且无任何成交（最后价格 10.05）：今日不再重发",
            "已暂停交易：连续 3 次委托超时且无任何成交（最后价格 10.05）：今日不再重发",
        ),
        (
            "en",
            "600000.SH held: 3 orders in a row timed out without any fill (last at 10.05): not re-sent today",
            "held: 3 orders in a row timed out without any fill (last at 10.05): not re-sent today",
        ),
    ],
)
def test_held_codes_read_in_the_readers_language(language, message, skip):
    plan = _held_plan(HELD)
    assert plan.status is PlanStatus.BLOCKED
    assert plan.message == "600000.SH held: " + HELD["600000.SH"].reason
    with translation.override(language):
        assert display.round_message(Round(message=plan.message, message_params=plan.message_params)) == message
        assert display.skip_detail(dataclasses.asdict(plan.skips[-1])) == skip


def test_holds_from_before_the_codes_show_their_stored_reason():
    plan = _held_plan({"600000.SH": Held("旧的原因", {})})
    with translation.override("en"):
        assert display.round_message(Round(message=plan.message, message_params=plan.message_params)) == (
            "600000.SH held: 旧的原因"
        )
        assert display.skip_detail(dataclasses.asdict(plan.skips[-1])) == "held: 旧的原因"


@pytest.mark.parametrize(
    "language, expected",
    [
        ("zh-hans", "订阅策略“S”的比例为 0：比例必须大于 0"),
        ("en", "subscription to strategy 'S' has ratio 0: a ratio must be above 0"),
    ],
)
def test_scale_problem_blocks_with_a_coded_message(language, expected):
    plan = plan_round(
        subscriptions=[dataclasses.replace(sub([("600000.SH", 1000, "10")]), strategy_name="S", ratio=D("0"))],
        account=view(cash="1000000"), quotes={}, policy=POLICY, now=NOW,
    )
    assert plan.status is PlanStatus.BLOCKED
    assert plan.message == "subscription to strategy 'S' has ratio 0: a ratio must be above 0"
    assert plan.message_params == {"text": "ratio_not_positive", "params": {"name": "S", "ratio": "0"}}
    with translation.override(language):
        assert display.round_message(Round(message=plan.message, message_params=plan.message_params)) == expected


def test_every_new_text_has_a_chinese_translation():
    with translation.override("zh-hans"):
        missing = [
            english
            for texts in (ROUND_TEXTS, HOLD_TEXTS, SKIP_TEXTS)
            for english in texts.values()
            if translation.gettext(english) == english and re.sub(r"%\(\w+\)s|[: ]", "", english)
        ]
        assert translation.pgettext("list separator", "; ") == "；"
    assert not missing


@pytest.mark.django_db
@override_settings(LANGUAGE_CODE="zh-hans")
def test_refusal_notifications_read_in_the_product_language_and_fold_by_english(paper_account):
    """A worker whose active language is English still writes the notifications in LANGUAGE_CODE;
    their fold keys stay on the stored English."""
    from qmtjq.models import Notification

    with translation.override("en"):
        failed, blocked = _refused_twice(paper_account)
    rows = list(Notification.objects.all())
    bodies = " ".join(n.title + " " + n.body for n in rows)
    assert "经纪商拒绝了同样的订单" in bodies and "委托被拒" in bodies
    assert "rejected by the broker" not in bodies and "Round failed" not in bodies
    keys = set(Notification.objects.values_list("key", flat=True))
    assert f"p1:{failed.message}" in keys and f"p1:{blocked.message}" in keys

"""Round messages are stored as a text code with parameters (Round.message_params) next to the English
and rendered in the reader's language with the reader's number formats; old rows stay readable."""

import re
from decimal import Decimal

import pytest
from django.utils import translation

from execution.planner import PlanStatus, plan_round
from execution.planner.texts import ROUND_TEXTS
from execution.tests.test_planner import NOW, POLICY, quotes, sub, view
from qmtjq import display

HOLD_ENGLISH = "round trades 5010.00, 0.5% of total assets, above the approval threshold 0.0%"


def test_a_held_round_stores_its_message_as_a_code_and_parameters():
    import dataclasses

    policy = dataclasses.replace(POLICY, approval_threshold=Decimal("0"))
    plan = plan_round(
        subscriptions=[sub([("600000.SH", 1000, "10")])], account=view(cash="1000000"),
        quotes=quotes(("600000.SH", "10.00")), policy=policy, now=NOW,
    )
    assert plan.status is PlanStatus.HOLD
    assert plan.message_params["text"] == "approval_hold"
    assert set(plan.message_params["params"]) == {"value", "share", "threshold"}
    # The English stays what logs, the CLI and older readers know.
    assert plan.message.startswith("round trades ") and "of total assets, above the approval threshold 0.0%" in plan.message


def test_a_blocked_plan_stores_its_reason_as_a_code():
    plan = plan_round(subscriptions=[], account=view(cash="1000"), quotes={}, policy=POLICY, now=NOW)
    assert plan.status is PlanStatus.BLOCKED
    assert plan.message == "the account subscribes to no strategy"
    assert plan.message_params == {"text": "no_subscription", "params": {}}


class _Row:
    def __init__(self, message, message_params):
        self.message, self.message_params = message, message_params


HELD = _Row(
    "stored english that is not used",
    {"text": "approval_hold", "params": {"value": "1234567.5", "share": "0.3126", "threshold": "0.3000"}},
)


@pytest.mark.parametrize(
    "language, expected",
    [
        ("en", "round trades 1,234,567.50, 31.3% of total assets, above the approval threshold 30%"),
        ("zh-hans", "本轮交易 1,234,567.50，占总资产 31.3%，超过审批阈值 30%"),
    ],
)
def test_held_message_renders_from_its_parameters(language, expected):
    with translation.override(language):
        assert display.round_message(HELD) == expected


def test_old_rows_without_parameters_use_the_stored_text():
    with translation.override("zh-hans"):
        assert display.round_message(_Row(HOLD_ENGLISH, {})) == "本轮交易 5,010.00，占总资产 0.5%，超过审批阈值 0.0%"
        assert display.round_message(_Row("some free text", {})) == "some free text"


def test_unknown_code_or_bad_parameters_fall_back_to_the_stored_english():
    for coded in ({"text": "no_such", "params": {}}, {"text": "approval_hold", "params": {"value": "1"}}, "junk"):
        assert display.round_message(_Row("kept as stored", coded)) == "kept as stored"


def test_stale_target_renders_the_time_in_local_format():
    row = _Row("x", {"text": "target_stale", "params": {"name": "cb", "at": "2026-12-02 01:00:00+00:00"}})
    with translation.override("zh-hans"):
        shown = display.round_message(row)
    assert shown == "策略“cb”的目标已过期（上次确认 2026-12-02 09:00:00）"


def test_every_round_text_has_a_chinese_translation():
    with translation.override("zh-hans"):
        missing = [
            key
            for key, english in ROUND_TEXTS.items()
            if translation.gettext(english) == english and re.sub(r"%\(\w+\)s|[: ]", "", english)
        ]
    assert not missing


@pytest.mark.django_db
@pytest.mark.parametrize(
    "language, expected",
    [
        ("en", "round trades 5,010.00, 0.5% of total assets, above the approval threshold 0%"),
        ("zh-hans", "本轮交易 5,010.00，占总资产 0.5%，超过审批阈值 0%"),
    ],
)
def test_held_banner_and_round_page_render_from_the_parameters(client, django_user_model, language, expected):
    from execution.models import Round
    from execution.services.accounts import account_create

    account = account_create(name="h1", mode="paper", account_id="H1")
    round_ = Round.objects.create(
        account=account, trigger="target_changed", status=Round.Status.HELD, message=HOLD_ENGLISH,
        message_params={"text": "approval_hold", "params": {"value": "5010.00", "share": "0.005", "threshold": "0.0000"}},
    )
    client.force_login(django_user_model.objects.create_user("v", password="pw-for-tests-only"))
    for url in ("/", f"/rounds/{round_.pk}/"):
        page = client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert expected in page, url


@pytest.mark.django_db
def test_remote_report_carries_the_message_parameters_and_accepts_older_reports():
    from execution.models import Round
    from execution.remote.mirror import _round_values
    from execution.remote.outbox import _round_out
    from execution.remote.parse import report_parse
    from execution.services.accounts import account_create

    account = account_create(name="h2", mode="paper", account_id="H2")
    row = Round.objects.create(account=account, trigger="target_changed", status=Round.Status.HELD,
                               message=HOLD_ENGLISH, message_params=HELD.message_params)
    wire = _round_out(row)
    parsed = report_parse({"rounds": [wire]}).rounds[0]
    assert _round_values(parsed)["message_params"] == HELD.message_params
    del wire["message_params"]  # a trading PC that predates the codes
    assert report_parse({"rounds": [wire]}).rounds[0].message_params == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "language, words",
    [("zh-hans", "本轮交易"), ("en", "round trades")],
)
def test_held_round_notification_reads_in_the_servers_language(paper_account, settings, language, words):
    """The notification of a held round says why in the product's language (LANGUAGE_CODE), not the
    stored English, whatever language the worker's thread has active."""
    from execution.tests.conftest import upload_target
    from execution.tests.test_worker import run_once
    from qmtjq.models import Notification

    settings.LANGUAGE_CODE = language
    paper_account.approval_threshold = Decimal("0.001")
    paper_account.save(update_fields=["approval_threshold"])
    upload_target("S", [("600000.SH", 1000, "10")])
    with translation.override("en" if language == "zh-hans" else "zh-hans"):
        run_once(paper_account)
    note = Notification.objects.get(event="round_held")
    assert words in note.body and "%" in note.body
    if language == "zh-hans":
        assert "round trades" not in note.body

"""Rotation run messages (why a run failed or was skipped) are stored as a text code with parameters
(RotationRun.message_params) next to the English and read in the reader's language; notifications about
runs are written in LANGUAGE_CODE and fold on the English as before; old runs stay readable."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from qmtjq import display
from rotation.models import RotationRun
from rotation.services import run_execute
from rotation.tests.test_pages import rotation, run, user_client  # noqa: F401 (fixtures)
from rotation.texts import ROTATION_RUN_TEXTS


def _failed_without_selection(rotation):  # noqa: F811
    claimed = RotationRun.objects.create(rotation=rotation, slot=timezone.now(), trigger=RotationRun.Trigger.MANUAL)
    return run_execute(run=claimed, now=timezone.now())


@pytest.mark.django_db
@pytest.mark.parametrize(
    "language, words, foreign",
    [("zh-hans", "没有选债结果：请先上传", "upload one (CSV or API)"), ("en", "upload one (CSV or API) first", "没有选债结果")],
)
def test_failed_run_reads_in_the_readers_language(rotation, user_client, language, words, foreign):  # noqa: F811
    failed = _failed_without_selection(rotation)
    assert failed.status == RotationRun.Status.FAILED
    assert failed.message.startswith("no selection for ") and failed.message.endswith("; nothing changed")
    assert failed.message_params["text"] == "no_selection"
    page = user_client.get(
        reverse("rotation:rotation-detail", args=[rotation.name]), HTTP_ACCEPT_LANGUAGE=language
    ).content.decode()
    assert words in page and foreign not in page


@pytest.mark.django_db
def test_failed_run_notification_reads_in_the_product_language(rotation, settings):  # noqa: F811
    from qmtjq.models import Notification

    settings.LANGUAGE_CODE = "zh-hans"
    with translation.override("en"):
        failed = _failed_without_selection(rotation)
    note = Notification.objects.get(event="rotation_failed")
    assert note.title == "轮动 cb-rot 运行失败"
    assert "没有选债结果" in note.body and "upload one" not in note.body
    assert note.key == f"cb-rot:{failed.message}"  # folded by the stored English, as before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "language, words",
    [("zh-hans", "已跳过：计划于"), ("en", "Skipped: the scheduled run of")],
)
def test_late_skip_is_stored_as_a_code_and_notified_in_the_product_language(rotation, settings, language, words):  # noqa: F811
    from qmtjq.models import Notification
    from rotation.jobs import _run_skip_late

    settings.LANGUAGE_CODE = language
    late = RotationRun.objects.create(
        rotation=rotation, slot=timezone.now() - timedelta(hours=2), trigger=RotationRun.Trigger.SCHEDULE
    )
    with translation.override("en" if language == "zh-hans" else "zh-hans"):
        _run_skip_late(run=late, now=timezone.now())
    late.refresh_from_db()
    assert late.message.startswith("Skipped: the scheduled run of ")  # English whoever ran the job
    assert late.message_params["text"] == "late_skip"
    with translation.override(language):
        assert display.run_message(late).startswith(words)
    assert Notification.objects.get(event="rotation_failed").body.startswith(words)


@pytest.mark.django_db
def test_old_runs_without_codes_show_the_stored_text(rotation):  # noqa: F811
    budget = (
        "account cb follows other strategies too (S): rotation cb-rot needs a capital budget "
        "(an amount or a share of total assets) before it runs"
    )
    old = run(rotation, 5, [], status=RotationRun.Status.FAILED, message=budget)
    free = run(rotation, 6, [], status=RotationRun.Status.FAILED, message="Factor Cat said no")
    with translation.override("zh-hans"):
        assert display.run_message(old).startswith("账户 cb 同时跟随其他策略（S）")
        assert display.run_message(free) == "Factor Cat said no"


def test_every_run_text_has_a_chinese_translation():
    with translation.override("zh-hans"):
        missing = [key for key, english in ROTATION_RUN_TEXTS.items() if translation.gettext(english) == english]
    assert not missing


"""The take-profit/stop-loss notice is written in LANGUAGE_CODE (whatever language the job's thread has
active), with the tick's decimals, and folds on the same key as before."""

import pytest
from django.utils import translation

from qmtjq.models import Notification
from rotation.services import tp_sl_check
from rotation.tests.test_cooldown import DAY, A, C, account, at, rotation, take_profit_on_a, trading_days  # noqa: F401


@pytest.mark.parametrize(
    "language, title, words",
    [
        ("zh-hans", f"cb-rot：止盈 {A}", ["价格 144.000，成本 120.000（+20%）", f"已补入 {C} × "]),
        ("en", f"cb-rot: take-profit {A}", ["price 144.000 vs cost 120.000 (+20%)", f"refilled with {C} × "]),
    ],
)
def test_take_profit_notification_reads_in_the_product_language(rotation, settings, language, title, words):  # noqa: F811
    settings.LANGUAGE_CODE = language
    take_profit_on_a(rotation)
    with translation.override("en" if language == "zh-hans" else "zh-hans"):
        tp_sl_check(now=at(DAY, 14))
    note = Notification.objects.get(event="tp_sl_triggered")
    assert note.title == title
    assert all(word in note.body for word in words), note.body
    assert note.key == f"cb-rot:{A}:take_profit"

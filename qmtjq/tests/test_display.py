"""Numbers, times, durations and stored English texts render in one format and in the reader's language."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from django.utils import translation

from qmtjq import display


def test_money_prices_volumes_and_percentages():
    """Money has separators and 2 decimals, prices the tick's decimals, ratios are percentages."""
    assert display.money(D("1234567.891")) == "1,234,567.89"
    assert display.signed_money(D("12.5")) == "+12.50" and display.money(None) == "—"
    assert display.price(D("10.1"), "600000.SH") == "10.10"
    assert display.price(D("120.1"), "113050.SH") == "120.100"
    assert display.price(D("1.234"), "510300.SH") == "1.234"
    assert display.volume(1234500) == "1,234,500"
    assert display.percent(D("0.5")) == "50%" and display.percent(D("0.12346")) == "12.35%"


def test_times_in_time_zone_and_durations_in_words():
    """Datetimes show in TIME_ZONE (Asia/Shanghai) as one format; durations as '3 天'."""
    assert display.when(datetime(2026, 3, 2, 1, 30, tzinfo=UTC)) == "2026-03-02 09:30:00"
    with translation.override("zh-hans"):
        assert display.duration(timedelta(days=3)) == "3 天"
        assert display.duration(timedelta(seconds=90)) == "1 分钟 30 秒"
    with translation.override("en"):
        assert display.duration(timedelta(days=1)) == "1 day"


def test_stored_english_texts_render_in_chinese():
    """Planner, rotation and broker texts are rendered from their parameters in the reader's language."""
    with translation.override("zh-hans"):
        assert display.text("increase to target") == "加仓至目标"
        assert display.text("rank 1") == "排名第 1"
        assert display.text("ranked beyond the top 3") == "排名在前 3 之外"
        assert display.text("cash 1234.50 covers 100") == "现金 1,234.50 仅够买 100"
        assert display.text("已成 (56)") == "已成 (56)"
        assert display.text("报价类型 11") == "报价类型 11"
        assert display.text("600000.SH: MiniQMT disconnected; odd lot kept until it can go whole") == (
            "600000.SH: MiniQMT 已断开；零股保留，直到可以整体卖出"
        )
        assert display.status_word("held_for_approval") == "等待审批"
    with translation.override("en"):
        assert display.text("报价类型 11") == "price type 11"
    assert display.text("something new") == "something new"


def test_new_planner_texts_render_in_chinese():
    """Block and skip texts of the money-safety rules are shown in the reader's language."""
    from django.utils import translation

    from qmtjq.display import text

    with translation.override("zh-hans"):
        assert "按资金缩放" in text(
            "capital scaling of strategy 'S' needs its total_value: the target has no total_value and no line has a cost"
        )
        assert "卖出 700" in text("750 is not a valid sell volume with 250 reserved: 700 sold, the rest kept")
        assert "离场委托已发出" in text(
            "exits sent, the other orders wait for approval: round trades 50000.00, 41.7% of total assets, "
            "above the approval threshold 20.0%"
        )
        assert "不交易" in text("132001.SH is not traded by qmtjq (other)")

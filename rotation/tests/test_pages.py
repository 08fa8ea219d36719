"""The /rotation/ pages: rotations with today's selection, holdings against cost with TP/SL lines, and runs."""

import re
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.urls import reverse
from django.utils import timezone

from execution.models import Holding
from execution.services.accounts import account_create
from positions.models import TargetSnapshot
from positions.services import target_write
from positions.validation import TargetPosition
from rotation.models import RotationRun, RotationStrategy, Selection, SelectionItem, TpSlEvent
from rotation.services import rotation_create

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


@pytest.fixture
def user_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("viewer", password="pw-for-tests-only"))
    return client


@pytest.fixture
def rotation(db):
    account = account_create(name="cb", mode="paper", account_id="CB1", enforce_trading_hours=False)
    rotation = rotation_create(
        name="cb-rot", account=account, take_profit_ratio=D("0.15"), stop_loss_ratio=D("0.08")
    )
    hold(rotation, {"113050.SH": 100, "123001.SZ": 50})
    now = timezone.now()
    Holding.objects.create(
        account=account,
        code="113050.SH",
        volume=120,  # 20 more than the rotation's target: another strategy holds some too
        can_use_volume=120,
        avg_cost=D("100"),
        last_price=D("110"),
        updated_at=now,
    )
    Holding.objects.create(
        account=account,
        code="123001.SZ",
        volume=50,
        can_use_volume=50,
        avg_cost=D("125.5"),
        last_price=D("120.48"),
        updated_at=now,
    )
    return rotation


def hold(rotation, lines: dict[str, int]) -> None:
    positions = tuple(TargetPosition(code, code, "", volume, D(100)) for code, volume in lines.items())
    target_write(strategy=rotation.strategy, positions=positions, source=TargetSnapshot.Source.ROTATION)


def selection(rotation, items, trade_date=None):
    chosen = Selection.objects.create(
        rotation=rotation, trade_date=trade_date or timezone.localdate(), source=Selection.Source.API
    )
    for rank, (code, name) in enumerate(items, start=1):
        SelectionItem.objects.create(selection=chosen, rank=rank, code=code, name=name)
    return chosen


def run(rotation, minutes_ago: int, rows, status=RotationRun.Status.DONE, message=""):
    return RotationRun.objects.create(
        rotation=rotation,
        slot=timezone.now() - timedelta(minutes=minutes_ago),
        trigger=RotationRun.Trigger.SCHEDULE,
        status=status,
        decision=rows,
        message=message,
    )


def row_of(html: str, code: str, table: str = "rotation-holdings") -> str:
    section = html.split(f'class="grid {table}"')[1].split("</table>")[0]
    return section.split(f'data-code="{code}"')[1].split("</tr>")[0]


def cells(row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_pages_need_a_login(client, rotation):
    """Anonymous visitors are sent to the login page."""
    for url in (reverse("rotation:rotation-list"), reverse("rotation:rotation-detail", args=["cb-rot"])):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"]


def test_holdings_show_profit_against_cost_and_the_tp_sl_prices(user_client, rotation):
    """Cost 100, last 110 → +10.00%, take-profit at 115.000 (+15%), stop-loss at 92.000 (−8%)."""
    html = user_client.get(reverse("rotation:rotation-list"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert cells(row_of(html, "113050.SH")) == [
        "113050.SH",
        "",
        "100",
        "120",
        "100.0000",
        "110.0000",
        "+10.00%",
        "115.000",
        "92.000",
    ]
    # 120.48 vs 125.5 is a 4.00% loss; the lines round to the bond tick of 0.001.
    assert cells(row_of(html, "123001.SZ"))[6:] == ["-4.00%", "144.325", "115.460"]
    assert "15% / 8%" in html


def test_ratios_from_the_record_and_zero_means_off(user_client, rotation):
    """Without overrides the record's ratios apply (15 = 15%); a ratio of 0 shows "off" instead of a price."""
    RotationStrategy.objects.filter(pk=rotation.pk).update(
        take_profit_ratio=None,
        stop_loss_ratio=None,
        factorcat_parameters={"profitTargetRatio": 15, "stopLossRatio": 0},
    )
    html = user_client.get(reverse("rotation:rotation-list"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert cells(row_of(html, "113050.SH"))[7:] == ["115.000", "off"]
    assert "15% / off" in html


def test_todays_selection_is_listed_in_rank_order(user_client, rotation):
    """Today's latest list is shown ranked with names; an older day's list is not today's."""
    selection(rotation, [("110059.SH", "浦发转债")], trade_date=timezone.localdate() - timedelta(days=1))
    selection(rotation, [("123001.SZ", "蓝标转债"), ("113050.SH", "南银转债")])
    html = user_client.get(reverse("rotation:rotation-list"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    listed = re.findall(r'<li data-code="([^"]+)">', html)
    assert listed == ["123001.SZ", "113050.SH"]
    assert "蓝标转债" in html and "浦发转债" not in html
    assert cells(row_of(html, "113050.SH"))[1] == "南银转债"  # holdings take the selection's names


def test_no_selection_today_is_said(user_client, rotation):
    html = user_client.get(reverse("rotation:rotation-list"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "No selection for today yet." in html


def test_runs_show_their_decision_tables_latest_five_on_the_list(user_client, rotation):
    """The list shows the five latest runs with their decisions and statuses; the detail page shows more."""
    for minutes in range(1, 8):
        run(
            rotation,
            minutes,
            [
                {
                    "code": "113050.SH",
                    "name": "南银转债",
                    "action": "keep",
                    "volume": 100,
                    "reason": f"run {minutes}",
                }
            ],
        )
    failed = run(rotation, 0, [], status=RotationRun.Status.FAILED, message="no selection for today")
    html = user_client.get(reverse("rotation:rotation-list"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert html.count("data-run=") == 5
    assert f'data-run="{failed.pk}"' in html and "no selection for today" in html and "failed" in html
    decision = row_of(html, "113050.SH", table="decision")
    assert cells(decision) == ["113050.SH", "南银转债", "keep", "100", "—", "run 1"]
    assert "run 5" not in html

    detail = user_client.get(reverse("rotation:rotation-detail", args=["cb-rot"]), HTTP_ACCEPT_LANGUAGE="en")
    assert detail.content.decode().count("data-run=") == 8


def test_tp_sl_events_are_listed(user_client, rotation):
    TpSlEvent.objects.create(
        rotation=rotation,
        kind="take_profit",
        code="113050.SH",
        price=D("115.5"),
        cost=D("100"),
        ratio=D("0.15"),
    )
    html = user_client.get(reverse("rotation:rotation-list"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    event = html.split('class="grid tp-sl-events"')[1].split("</table>")[0]
    assert "take-profit" in event and "+15.50%" in event and "15%" in event


def test_everything_from_users_and_servers_is_escaped(user_client, rotation):
    """Bond names, Factor Cat strategy names, reasons and messages containing HTML render as text."""
    name = "<img src=x onerror=alert(1)>"
    RotationStrategy.objects.filter(pk=rotation.pk).update(
        name=name, source="factorcat", factorcat_strategy_name=XSS, factorcat_history_id=1
    )
    selection(rotation, [("113050.SH", XSS)])
    run(
        rotation,
        1,
        [{"code": "113050.SH", "name": XSS, "action": XSS, "volume": 10, "reason": XSS}],
        message=XSS,
    )
    for url in (reverse("rotation:rotation-list"), reverse("rotation:rotation-detail", args=[name])):
        response = user_client.get(url)
        html = response.content.decode()
        assert response.status_code == 200
        assert XSS not in html and name not in html
        assert (
            "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        )


def test_chinese_by_default(user_client, rotation):
    """Without a language preference the page is Simplified Chinese."""
    html = user_client.get(reverse("rotation:rotation-list")).content.decode()
    assert '<html lang="zh-hans">' in html and "持仓" in html and "代码" in html


def test_unknown_rotation_is_404(user_client, rotation):
    assert user_client.get(reverse("rotation:rotation-detail", args=["nope"])).status_code == 404


def test_list_queries_do_not_grow_with_rotations(
    user_client, rotation, django_assert_max_num_queries, monkeypatch
):
    """Holdings, selections and runs are fetched per page, not per rotation (the calendar lookup aside)."""
    from rotation import views

    monkeypatch.setattr(views, "next_slot", None)
    for number in range(2, 6):
        other = rotation_create(name=f"rot-{number}", account=rotation.account)
        hold(other, {"110059.SH": 10})
        run(other, 1, [{"code": "110059.SH", "name": "", "action": "buy", "volume": 10, "reason": "rank 1"}])
        selection(other, [("110059.SH", "浦发转债")])
    with django_assert_max_num_queries(12):
        response = user_client.get(reverse("rotation:rotation-list"))
    assert response.status_code == 200 and response.content.decode().count('class="card rotation"') == 5


def test_next_run_comes_from_the_trading_calendar(user_client, rotation):
    """With the calendar loaded the next slot is shown; weekends are skipped (here: closed days)."""
    from execution.calendar import SHANGHAI
    from execution.models import TradingDay

    today = timezone.localdate()
    TradingDay.objects.filter(date__range=(today - timedelta(days=40), today + timedelta(days=80))).delete()
    TradingDay.objects.bulk_create(
        TradingDay(
            date=today + timedelta(days=offset), is_open=(today + timedelta(days=offset)).weekday() < 5
        )
        for offset in range(-40, 80)
    )
    html = user_client.get(reverse("rotation:rotation-list"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    shown = re.search(r'<dd class="next-run">([^<]+)</dd>', html)[1]
    slot = timezone.make_aware(timezone.datetime.strptime(shown, "%Y-%m-%d %H:%M"))
    assert slot > timezone.now() and slot.astimezone(SHANGHAI).weekday() < 5
    assert slot.astimezone(SHANGHAI).strftime("%H:%M") == "14:50"

"""Execution admin: every page opens, log-like rows stay read-only, and each action works only once confirmed."""

from datetime import date, timedelta
from decimal import Decimal as D

import factory
import pytest
from django.contrib import messages
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.forms import CheckboxInput
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from execution.admin.accounts import BrokerAccountForm
from execution.models import (
    AccountState,
    BrokerAccount,
    EquityPoint,
    Fill,
    Holding,
    ManualQuote,
    Order,
    OrderEvent,
    OrderStatus,
    PaperBook,
    PaperOrder,
    PaperPosition,
    PaperTrade,
    Round,
    TradingDay,
    WorkerLease,
)

pytestmark = pytest.mark.django_db


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BrokerAccount

    name = factory.Sequence(lambda n: f"acct{n}")
    account_id = factory.Sequence(lambda n: f"8800{n:04d}")


class RoundFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Round

    account = factory.SubFactory(AccountFactory)
    trigger = Round.Trigger.TARGET
    status = Round.Status.PLACED
    skips = [{"code": "000001.SZ", "reason": "no quote", "detail": "", "volume": 100}]


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    account = factory.SubFactory(AccountFactory)
    code = "600000.SH"
    side = Order.Side.BUY
    volume = 1000
    limit_price = D("10.02")
    status = OrderStatus.REPORTED
    broker_order_id = factory.Sequence(lambda n: 7000 + n)


class FillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Fill

    order = factory.SubFactory(OrderFactory)
    account = factory.SelfAttribute("order.account")
    trade_id = factory.Sequence(lambda n: f"T{n}")
    code = factory.SelfAttribute("order.code")
    side = factory.SelfAttribute("order.side")
    volume = 100
    price = D("10.01")
    amount = D("1001")
    traded_at = factory.LazyFunction(timezone.now)


PLANNED = [
    {"code": "600000.SH", "side": "buy", "volume": 30000, "limit_price": "10.02", "value": "300600.00"},
    {"code": "000001.SZ", "side": "sell", "volume": 1000, "limit_price": "11.98", "value": "11980.00"},
]


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def history(paper_account):
    """One row of everything the worker and the paper broker write, for account p1."""
    now = timezone.now()
    account = paper_account
    AccountState.objects.create(account=account, cash=D("900000"), total_asset=D("1000000"), updated_at=now)
    Holding.objects.create(
        account=account, code="600000.SH", volume=1000, can_use_volume=1000, updated_at=now
    )
    EquityPoint.objects.create(
        account=account, at=now, cash=D("900000"), market_value=D("100000"), total_asset=D("1000000")
    )
    WorkerLease.objects.create(
        account=account,
        holder="pc:42:abc",
        acquired_at=now,
        heartbeat_at=now,
        expires_at=now + timedelta(seconds=30),
    )
    round_ = RoundFactory(
        account=account, status=Round.Status.HELD, planned=PLANNED, message="over the threshold"
    )
    order = OrderFactory(account=account, round=round_)
    OrderEvent.objects.create(order=order, status=order.status, message="stored")
    FillFactory(order=order)
    PaperBook.objects.create(account=account, cash=D("1000000"))
    PaperPosition.objects.create(account=account, code="600000.SH", volume=1000)
    paper_order = PaperOrder.objects.create(
        account=account,
        broker_order_id=1,
        remark=order.key,
        code="600000.SH",
        side="buy",
        volume=1000,
        price=D("10.02"),
        status=OrderStatus.SUCCEEDED,
        created_at=now,
        updated_at=now,
    )
    PaperTrade.objects.create(
        account=account,
        trade_id="1",
        order=paper_order,
        code="600000.SH",
        side="buy",
        volume=1000,
        price=D("10"),
        amount=D("10000"),
        traded_at=now,
    )
    TradingDay.objects.create(date=date(2030, 1, 2), is_open=True, note="600000 test day")
    return account


def admin_url(model, view="changelist", *args):
    return reverse(f"admin:execution_{model}_{view}", args=args)


def post_action(client, model, action, objects, url=None, **extra):
    """Post an admin action the way the changelist (or its confirmation page) does."""
    data = {"action": action, "_selected_action": [obj.pk for obj in objects], **extra}
    return client.post(url or admin_url(model), data)


def levels(response) -> set[int]:
    return {m.level for m in messages.get_messages(response.wsgi_request)}


def form_data(response) -> dict:
    """What a browser would post back for the admin form on this page, untouched."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management.add_prefix(name): management[name].value() for name in management.fields})
        forms.extend(inline.formset.forms)
    for form in forms:
        for name, field in form.fields.items():
            value = form[name].value()
            if isinstance(field.widget, CheckboxInput):
                if value:
                    data[form.add_prefix(name)] = "on"
            else:
                data[form.add_prefix(name)] = "" if value is None else value
    return data


def audit_messages(obj) -> list[str]:
    content_type = ContentType.objects.get_for_model(type(obj))
    return list(
        LogEntry.objects.filter(content_type=content_type, object_id=str(obj.pk)).values_list(
            "change_message", flat=True
        )
    )


# --- every page opens --------------------------------------------------------------------------

ADMINS = [
    # model, search that must find the fixture's row, whether admin may add rows
    ("brokeraccount", "p1", True),
    ("round", "threshold", False),
    ("order", "600000", False),
    ("fill", "600000", False),
    ("accountstate", "p1", False),
    ("holding", "600000", False),
    ("equitypoint", "p1", False),
    ("workerlease", "pc:42", False),
    ("manualquote", "600000", True),
    ("paperbook", "p1", False),
    ("paperposition", "600000", False),
    ("paperorder", "600000", False),
    ("papertrade", "600000", False),
    ("tradingday", "600000", True),
]


@pytest.mark.parametrize(("model", "query", "can_add"), ADMINS)
def test_admin_pages_open(admin_client, history, model, query, can_add):
    """Changelist with a search finds the row, the change page opens, add is open only where rows are typed in."""
    response = admin_client.get(admin_url(model), {"q": query})
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1
    row = response.context["cl"].result_list[0]
    assert admin_client.get(admin_url(model, "change", row.pk)).status_code == 200
    assert admin_client.get(admin_url(model, "add")).status_code == (200 if can_add else 403)


@pytest.mark.parametrize("model", ["round", "order", "fill", "accountstate", "paperbook", "workerlease"])
def test_log_like_rows_cannot_be_changed_or_deleted(admin_client, history, model):
    """Read-only admins offer no save button and refuse deletion."""
    row = admin_client.get(admin_url(model)).context["cl"].result_list[0]
    change = admin_client.get(admin_url(model, "change", row.pk))
    assert b'name="_save"' not in change.content
    assert admin_client.get(admin_url(model, "delete", row.pk)).status_code == 403


def test_round_page_shows_json_escaped(admin_client, paper_account):
    """Round JSON is shown pretty-printed and escaped, never as live HTML."""
    round_ = RoundFactory(account=paper_account, message="x", skips=[{"code": "<script>alert(1)</script>"}])
    response = admin_client.get(admin_url("round", "change", round_.pk))
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content
    assert b"<script>alert(1)" not in response.content



def test_round_page_shows_plan_diff_and_skips_as_tables(admin_client, paper_account):
    """A trader reads a round in admin as tables with names and formatted numbers, not as JSON."""
    from qmtjq.models import SecurityName

    SecurityName.objects.create(code="600000.SH", name="浦发银行")
    round_ = RoundFactory(
        account=paper_account,
        targets={"jq-main": 12},
        diff=[{"code": "600000.SH", "target": 12000, "actual": 10000, "reserved": 0, "delta": 2000}],
        skips=[{"code": "113050.SH", "reason": "suspended", "detail": "", "volume": 10}],
        planned=[{"code": "600000.SH", "side": "buy", "volume": 2000, "limit_price": "10.02", "value": "20040.00",
                  "reason": "increase to target", "price_source": "manual"}],
    )
    page = admin_client.get(admin_url("round", "change", round_.pk), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<pre" not in page
    for table in ("targets", "diff", "skips", "planned"):
        assert f'class="grid admin-table {table}"' in page, table
    assert "浦发银行" in page and "12,000" in page and "+2,000" in page and "20,040.00" in page
    assert "jq-main" in page and "#12" in page
    assert "suspended" in page


def test_live_accounts_are_labelled_in_the_list(admin_client, paper_account):
    """A live account carries a visible label in the changelist; paper accounts do not."""
    AccountFactory(name="real", mode=BrokerAccount.Mode.LIVE, userdata_mini_path="C:/qmt")
    response = admin_client.get(admin_url("brokeraccount"))
    assert response.content.count(b'class="mode-label live"') == 1


@pytest.mark.parametrize(
    ("model", "make_one"),
    [
        ("brokeraccount", lambda: _account_with_state()),
        ("round", lambda: OrderFactory(round=RoundFactory()).round),
        ("order", lambda: OrderFactory(round=RoundFactory())),
        ("fill", lambda: FillFactory()),
    ],
)
def test_changelists_do_not_query_per_row(admin_client, django_assert_max_num_queries, model, make_one):
    """Six rows cost no more queries than one (no N+1 in the big changelists)."""
    make_one()
    with CaptureQueriesContext(connection) as one_row:
        assert admin_client.get(admin_url(model)).status_code == 200
    for _ in range(5):
        make_one()
    with django_assert_max_num_queries(len(one_row.captured_queries)):
        response = admin_client.get(admin_url(model))
    assert response.context["cl"].result_count == 6


def _account_with_state():
    account = AccountFactory()
    now = timezone.now()
    AccountState.objects.create(account=account, cash=D("1"), total_asset=D("2"), updated_at=now)
    WorkerLease.objects.create(account=account, holder="h", acquired_at=now, heartbeat_at=now, expires_at=now)
    return account


# --- account form ------------------------------------------------------------------------------


def test_change_form_cannot_flip_trading_or_mode(admin_client, paper_account):
    """Posting trading_enabled/mode to the change form saves the other fields and leaves those two alone."""
    BrokerAccount.objects.filter(pk=paper_account.pk).update(trading_enabled=False)
    url = admin_url("brokeraccount", "change", paper_account.pk)
    data = form_data(admin_client.get(url))
    assert "trading_enabled" not in data and "mode" not in data
    data.update(trading_enabled="on", mode="live", slippage="0.005")
    response = admin_client.post(url, data)
    assert response.status_code == 302
    paper_account.refresh_from_db()
    assert paper_account.slippage == D("0.005")
    assert paper_account.trading_enabled is False
    assert paper_account.mode == BrokerAccount.Mode.PAPER


def test_new_account_starts_with_trading_off(admin_client, db):
    """An account added in admin has its trading switch off, whatever is posted."""
    data = form_data(admin_client.get(admin_url("brokeraccount", "add")))
    data.update(name="demo", account_id="D1", trading_enabled="on")
    response = admin_client.post(admin_url("brokeraccount", "add"), data)
    assert response.status_code == 302
    account = BrokerAccount.objects.get(name="demo")
    assert account.trading_enabled is False and account.mode == BrokerAccount.Mode.PAPER


def test_new_live_account_needs_userdata_path(admin_client, db):
    """Adding a live account without the MiniQMT path is refused with a form error."""
    data = form_data(admin_client.get(admin_url("brokeraccount", "add")))
    data.update(name="real", account_id="R1", mode="live")
    response = admin_client.post(admin_url("brokeraccount", "add"), data)
    assert response.status_code == 200
    assert "userdata_mini_path" in response.context["adminform"].form.errors
    assert not BrokerAccount.objects.filter(name="real").exists()


def test_reserved_holding_code_is_normalized(admin_client, paper_account):
    """A reserved holding typed as a bare code is stored in QMT form."""
    url = admin_url("brokeraccount", "change", paper_account.pk)
    data = form_data(admin_client.get(url))
    data.update({"reserved-TOTAL_FORMS": "1", "reserved-0-code": "600519", "reserved-0-volume": "100"})
    assert admin_client.post(url, data).status_code == 302
    assert list(paper_account.reserved.values_list("code", flat=True)) == ["600519.SH"]


# --- kill switch -------------------------------------------------------------------------------


def test_trading_off_needs_confirmation_and_is_logged(admin_client, paper_account, superuser):
    """OFF shows the accounts first, changes nothing until confirmed, then flips and leaves an audit row."""
    other = AccountFactory(name="zz", trading_enabled=True)
    page = post_action(admin_client, "brokeraccount", "trading_off", [paper_account, other])
    assert page.status_code == 200
    assert b"p1" in page.content and b"zz" in page.content
    paper_account.refresh_from_db()
    assert paper_account.trading_enabled is True

    done = post_action(admin_client, "brokeraccount", "trading_off", [paper_account, other], confirm="yes")
    assert done.status_code == 302
    assert not BrokerAccount.objects.filter(trading_enabled=True).exists()
    entry = LogEntry.objects.get(object_id=str(paper_account.pk), change_message__contains="OFF")
    assert entry.user == superuser


def test_trading_on_from_the_change_page_button(admin_client, paper_account):
    """The change page's button opens the same confirmation; one confirm turns trading on."""
    BrokerAccount.objects.filter(pk=paper_account.pk).update(trading_enabled=False)
    url = reverse("admin:execution_brokeraccount_object_action", args=[paper_account.pk, "trading_on"])
    assert url.encode() in admin_client.get(admin_url("brokeraccount", "change", paper_account.pk)).content
    assert admin_client.get(url).status_code == 200
    paper_account.refresh_from_db()
    assert paper_account.trading_enabled is False
    response = admin_client.post(url, {"confirm": "yes"})
    assert response.url == admin_url("brokeraccount", "change", paper_account.pk)
    paper_account.refresh_from_db()
    assert paper_account.trading_enabled is True
    assert any("ON" in message for message in audit_messages(paper_account))


def test_object_action_view_rejects_unknown_actions(admin_client, paper_account):
    """Only the whitelisted actions are reachable per object (not e.g. delete_selected)."""
    url = reverse("admin:execution_brokeraccount_object_action", args=[paper_account.pk, "delete_selected"])
    assert admin_client.post(url, {"confirm": "yes"}).status_code == 404
    assert BrokerAccount.objects.filter(pk=paper_account.pk).exists()


def test_staff_without_change_permission_cannot_flip(client, staff_user, paper_account):
    """The kill switch needs the change permission on accounts."""
    client.force_login(staff_user)
    url = reverse("admin:execution_brokeraccount_object_action", args=[paper_account.pk, "trading_off"])
    assert client.post(url, {"confirm": "yes"}).status_code == 403
    paper_account.refresh_from_db()
    assert paper_account.trading_enabled is True


# --- paper ↔ live ------------------------------------------------------------------------------


def test_paper_to_live_refused_without_userdata_path(admin_client, paper_account):
    """No MiniQMT path: no confirmation page, an error message, nothing changes."""
    response = post_action(admin_client, "brokeraccount", "switch_to_live", [paper_account])
    assert response.status_code == 302
    assert messages.ERROR in levels(response)
    paper_account.refresh_from_db()
    assert paper_account.mode == BrokerAccount.Mode.PAPER


def test_paper_to_live_refused_without_account_id(admin_client, paper_account):
    """No broker account id: refused even with the name typed."""
    BrokerAccount.objects.filter(pk=paper_account.pk).update(account_id="", userdata_mini_path="C:/qmt")
    response = post_action(
        admin_client, "brokeraccount", "switch_to_live", [paper_account], confirm="yes", confirm_name="p1"
    )
    assert messages.ERROR in levels(response)
    paper_account.refresh_from_db()
    assert paper_account.mode == BrokerAccount.Mode.PAPER


def test_paper_to_live_requires_the_typed_name(admin_client, paper_account):
    """A wrong name changes nothing; the right one goes live with trading off and hours enforced."""
    BrokerAccount.objects.filter(pk=paper_account.pk).update(
        userdata_mini_path=r"C:\国金QMT\userdata_mini", trading_enabled=True, enforce_trading_hours=False
    )
    page = post_action(admin_client, "brokeraccount", "switch_to_live", [paper_account])
    assert page.status_code == 200
    assert b'name="confirm_name"' in page.content

    wrong = post_action(
        admin_client, "brokeraccount", "switch_to_live", [paper_account], confirm="yes", confirm_name="P1"
    )
    assert wrong.status_code == 200
    assert wrong.context["name_error"]
    paper_account.refresh_from_db()
    assert (paper_account.mode, paper_account.trading_enabled) == (BrokerAccount.Mode.PAPER, True)

    done = post_action(
        admin_client, "brokeraccount", "switch_to_live", [paper_account], confirm="yes", confirm_name="p1"
    )
    assert done.status_code == 302
    paper_account.refresh_from_db()
    assert paper_account.mode == BrokerAccount.Mode.LIVE
    assert paper_account.trading_enabled is False
    assert paper_account.enforce_trading_hours is True
    assert any("live" in message for message in audit_messages(paper_account))


def test_paper_to_live_one_account_at_a_time(admin_client, paper_account):
    """Selecting two accounts is refused: each needs its own typed name."""
    other = AccountFactory(userdata_mini_path="C:/qmt")
    BrokerAccount.objects.filter(pk=paper_account.pk).update(userdata_mini_path="C:/qmt")
    response = post_action(admin_client, "brokeraccount", "switch_to_live", [paper_account, other])
    assert response.status_code == 302
    assert not BrokerAccount.objects.filter(mode=BrokerAccount.Mode.LIVE).exists()


def test_live_to_paper_plain_confirm(admin_client, db):
    """Live → paper needs one confirm and stops trading until someone turns it on again."""
    account = AccountFactory(mode=BrokerAccount.Mode.LIVE, userdata_mini_path="C:/qmt", trading_enabled=True)
    assert post_action(admin_client, "brokeraccount", "switch_to_paper", [account]).status_code == 200
    account.refresh_from_db()
    assert account.mode == BrokerAccount.Mode.LIVE
    post_action(admin_client, "brokeraccount", "switch_to_paper", [account], confirm="yes")
    account.refresh_from_db()
    assert (account.mode, account.trading_enabled) == (BrokerAccount.Mode.PAPER, False)


# --- held rounds -------------------------------------------------------------------------------


def test_approve_held_round(admin_client, history, superuser):
    """The page shows the planned orders and their value against total assets; confirming approves."""
    round_ = Round.objects.get(status=Round.Status.HELD)
    page = post_action(admin_client, "round", "approve_held", [round_])
    assert page.status_code == 200
    assert b"600000.SH" in page.content and b"000001.SZ" in page.content
    plan = page.context["plans"][0]
    assert plan["total"] == D("312580.00")
    assert plan["share_percent"] == D("31.258")
    round_.refresh_from_db()
    assert round_.approved_by is None

    assert post_action(admin_client, "round", "approve_held", [round_], confirm="yes").status_code == 302
    round_.refresh_from_db()
    assert round_.approved_by == superuser and round_.approved_at is not None
    assert audit_messages(round_)


def test_approve_refused_for_rounds_not_held(admin_client, paper_account):
    """A placed round is refused with a message, even when the confirmation is posted directly."""
    round_ = RoundFactory(account=paper_account, status=Round.Status.PLACED)
    response = post_action(admin_client, "round", "approve_held", [round_])
    assert response.status_code == 302 and messages.ERROR in levels(response)
    response = post_action(admin_client, "round", "approve_held", [round_], confirm="yes")
    assert messages.ERROR in levels(response)
    round_.refresh_from_db()
    assert round_.approved_by is None


def test_approve_refused_twice_and_for_superseded_rounds(admin_client, paper_account, superuser):
    """An approved round cannot be approved again; an older held round replaced by a newer one cannot be approved."""
    old = RoundFactory(account=paper_account, status=Round.Status.HELD, planned=PLANNED)
    newer = RoundFactory(account=paper_account, status=Round.Status.HELD, planned=PLANNED)
    post_action(admin_client, "round", "approve_held", [old], confirm="yes")
    old.refresh_from_db()
    assert old.approved_by is None

    post_action(admin_client, "round", "approve_held", [newer], confirm="yes")
    newer.refresh_from_db()
    first_approval = newer.approved_at
    assert newer.approved_by == superuser
    response = post_action(admin_client, "round", "approve_held", [newer], confirm="yes")
    assert messages.ERROR in levels(response)
    newer.refresh_from_db()
    assert newer.approved_at == first_approval


# --- cancel requests ---------------------------------------------------------------------------


def test_ask_cancel_marks_only_open_orders(admin_client, paper_account):
    """Open orders get user_cancel_requested_at and a history line; final ones are skipped."""
    open_order = OrderFactory(account=paper_account, status=OrderStatus.PART_SUCC, filled_volume=300)
    final_order = OrderFactory(account=paper_account, status=OrderStatus.SUCCEEDED, code="000001.SZ")
    page = post_action(admin_client, "order", "ask_cancel", [open_order, final_order])
    assert page.status_code == 200
    open_order.refresh_from_db()
    assert open_order.user_cancel_requested_at is None

    response = post_action(admin_client, "order", "ask_cancel", [open_order, final_order], confirm="yes")
    assert response.status_code == 302
    assert messages.WARNING in levels(response)  # the final order is reported as skipped
    open_order.refresh_from_db()
    final_order.refresh_from_db()
    assert open_order.user_cancel_requested_at is not None
    assert final_order.user_cancel_requested_at is None
    assert open_order.events.filter(message__contains="cancel asked").exists()
    assert audit_messages(open_order) and not audit_messages(final_order)


def test_ask_cancel_refused_when_all_final(admin_client, paper_account):
    """Selecting only final orders shows no confirmation page, just an error."""
    final_order = OrderFactory(account=paper_account, status=OrderStatus.CANCELED)
    response = post_action(admin_client, "order", "ask_cancel", [final_order])
    assert response.status_code == 302 and messages.ERROR in levels(response)


# --- manual quotes -----------------------------------------------------------------------------


def test_manual_quote_code_is_normalized(admin_client, db):
    """A quote typed as 'sz000001' is stored as 000001.SZ."""
    response = admin_client.post(admin_url("manualquote", "add"), {"code": "sz000001", "last_price": "12.30"})
    assert response.status_code == 302
    assert ManualQuote.objects.get().code == "000001.SZ"


@pytest.mark.parametrize("code", ["12345", "600000.XX", "AAPL"])
def test_manual_quote_rejects_bad_codes(admin_client, db, code):
    """A code that is not a Shanghai/Shenzhen/Beijing security is a form error, not a stored quote."""
    response = admin_client.post(admin_url("manualquote", "add"), {"code": code, "last_price": "1"})
    assert response.status_code == 200
    assert "code" in response.context["adminform"].form.errors
    assert not ManualQuote.objects.exists()


def test_account_with_order_history_cannot_be_deleted_in_admin(admin_client, history):
    """Deleting an account would delete its orders and fills, which admin never deletes: the page refuses."""
    url = admin_url("brokeraccount", "delete", history.pk)
    assert admin_client.get(url).context["perms_lacking"]
    admin_client.post(url, {"post": "yes"})
    assert BrokerAccount.objects.filter(pk=history.pk).exists()


def test_change_form_save_keeps_a_concurrent_kill_switch(admin_client, paper_account, monkeypatch):
    """A kill switch flipped while a change form is being saved is not written back by that save."""
    original_clean = BrokerAccountForm.clean

    def clean_while_someone_flips_the_switch(form):
        BrokerAccount.objects.filter(pk=paper_account.pk).update(trading_enabled=False)
        return original_clean(form)

    url = admin_url("brokeraccount", "change", paper_account.pk)
    data = form_data(admin_client.get(url))
    monkeypatch.setattr(BrokerAccountForm, "clean", clean_while_someone_flips_the_switch)
    assert admin_client.post(url, data).status_code == 302
    paper_account.refresh_from_db()
    assert paper_account.trading_enabled is False


def test_account_form_shows_durations_and_ratios_readably(admin_client, paper_account):
    """Next to each duration and ratio input the admin says what it means: '= 3 天', '= 30%'."""
    from datetime import timedelta
    from decimal import Decimal

    paper_account.stale_after = timedelta(days=3)
    paper_account.approval_threshold = Decimal("0.3")
    paper_account.save()
    page = admin_client.get(admin_url("brokeraccount", "change", paper_account.pk), HTTP_ACCEPT_LANGUAGE="zh-hans")
    html = page.content.decode()
    assert '<span class="readable-hint">= 3 天</span>' in html
    assert '<span class="readable-hint">= 30%</span>' in html
    assert '<span class="readable-hint">= 0.2%</span>' in html  # the default slippage 0.002


def test_account_list_shows_threshold_and_staleness_readably(admin_client, paper_account):
    from datetime import timedelta
    from decimal import Decimal

    paper_account.stale_after = timedelta(days=3)
    paper_account.approval_threshold = Decimal("0.5")
    paper_account.save()
    html = admin_client.get(admin_url("brokeraccount"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "3 天" in html and "50%" in html


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_admin_dates_use_the_one_site_format(admin_client, paper_account, language):
    """Admin shows times as the pages do (YYYY-MM-DD HH:MM:SS in TIME_ZONE), not 'Dec. 2, 2026, 11:12 p.m.'."""
    import re as re_

    from django.utils import timezone

    from qmtjq import display

    round_ = RoundFactory(account=paper_account, status=Round.Status.HELD, message="round trades 10020.00")
    page = admin_client.get(admin_url("round", "change", round_.pk), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert display.when(round_.created_at)[:16] in page
    assert not re_.search(r"\\b(a\\.m\\.|p\\.m\\.)", page)
    assert "held_for_approval" not in page  # the title uses the status's words
    changelist = admin_client.get(admin_url("round"), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert timezone.localtime(round_.created_at).strftime("%Y-%m-%d %H:%M") in changelist


def test_admin_round_message_in_the_readers_language(admin_client, paper_account):
    from django.utils import translation

    from qmtjq import display

    message = "round trades 10020.00, 40.0% of total assets, above the approval threshold 30.0%"
    round_ = RoundFactory(account=paper_account, status=Round.Status.HELD, message=message)
    with translation.override("zh-hans"):
        chinese = display.text(message)
    assert chinese != message
    page = admin_client.get(admin_url("round", "change", round_.pk), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert chinese in page

"""Rotation admin: every page opens, the Factor Cat password is write-only, browsing Factor Cat creates
rotations, CSV uploads store ranked selections, and "Run now" / "Dry run" work only once confirmed.

The Factor Cat tests talk to `FakeFactorCat` (rotation/tests/test_factorcat.py), a local HTTP server on
127.0.0.1 with the DESIGN §8 shapes: it fakes the network; no test contacts Factor Cat.
"""

import re
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from execution.models import AccountState, Subscription
from execution.services.accounts import account_create
from execution.tests.conftest import set_price
from qmtjq import crypto
from rotation.credentials import factorcat_password_set
from rotation.models import (
    FactorCatAccount,
    RotationRun,
    RotationStrategy,
    Selection,
    SelectionItem,
    TpSlEvent,
)
from rotation.services import rotation_create
from rotation.tests.test_factorcat import PASSWORD, FakeFactorCat, _serve

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


@pytest.fixture
def staff(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def factorcat():
    """A local fake Factor Cat server (real sockets on 127.0.0.1, no outside network)."""
    fake = FakeFactorCat()
    server = _serve(fake)
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def fc_account(db, factorcat):
    account = FactorCatAccount.objects.create(name="main", base_url=factorcat.base_url, username="alice")
    factorcat_password_set(account=account, password=PASSWORD)
    return account


@pytest.fixture
def paper_rotation(db):
    """A paper account with cash reported, two bond prices, and an upload-fed rotation holding at most 2."""
    account = account_create(
        name="cb", mode="paper", account_id="CB1", starting_cash=D("100000"), enforce_trading_hours=False
    )
    AccountState.objects.update_or_create(
        account=account,
        defaults={"cash": D("100000"), "total_asset": D("100000"), "updated_at": timezone.now()},
    )
    set_price("113050.SH", "120.000")
    set_price("123001.SZ", "100.000")
    return rotation_create(name="cb-rot", account=account, top_n=2)


def store_selection(rotation, codes, trade_date=None):
    selection = Selection.objects.create(
        rotation=rotation, trade_date=trade_date or timezone.localdate(), source=Selection.Source.CSV
    )
    for rank, code in enumerate(codes, start=1):
        SelectionItem.objects.create(selection=selection, rank=rank, code=code, name=f"bond {rank}")
    return selection


def admin_url(model: str, view: str, *args) -> str:
    return reverse(f"admin:rotation_{model}_{view}", args=args)


# --- smoke ---------------------------------------------------------------------------------------


@pytest.fixture
def every_row(paper_rotation, fc_account):
    selection = store_selection(paper_rotation, ["113050.SH"])
    run = RotationRun.objects.create(
        rotation=paper_rotation,
        slot=timezone.now(),
        trigger=RotationRun.Trigger.MANUAL,
        status=RotationRun.Status.DONE,
        selection=selection,
        decision=[{"code": "113050.SH", "name": XSS, "action": "buy", "volume": 10, "reason": XSS}],
    )
    event = TpSlEvent.objects.create(
        rotation=paper_rotation,
        kind=TpSlEvent.Kind.TAKE_PROFIT,
        code="113050.SH",
        price=D("138"),
        cost=D("120"),
        ratio=D("0.15"),
    )
    return {
        "factorcataccount": fc_account,
        "rotationstrategy": paper_rotation,
        "selection": selection,
        "rotationrun": run,
        "tpslevent": event,
    }


@pytest.mark.parametrize(
    "model, can_add",
    [
        ("factorcataccount", True),
        ("rotationstrategy", True),
        ("selection", False),
        ("rotationrun", False),
        ("tpslevent", False),
    ],
)
def test_every_rotation_admin_page_opens(staff, every_row, model, can_add):
    """Changelist (with a search), add and change pages answer; log-like records refuse the add page."""
    assert staff.get(admin_url(model, "changelist"), {"q": "cb"}).status_code == 200
    assert staff.get(admin_url(model, "changelist"), {"q": "no-such-thing"}).status_code == 200
    assert staff.get(admin_url(model, "add")).status_code == (200 if can_add else 403)
    assert staff.get(admin_url(model, "change", every_row[model].pk)).status_code == 200


def test_records_are_read_only(staff, every_row):
    """A run's change page shows no save button and a POST changes nothing."""
    run = every_row["rotationrun"]
    html = staff.get(admin_url("rotationrun", "change", run.pk)).content.decode()
    assert 'name="_save"' not in html
    assert staff.post(admin_url("rotationrun", "change", run.pk), {"status": "failed"}).status_code == 403
    assert staff.post(admin_url("selection", "delete", every_row["selection"].pk)).status_code == 403
    run.refresh_from_db()
    assert run.status == RotationRun.Status.DONE


def test_run_decision_is_a_table_with_escaped_text(staff, every_row):
    """The decision renders as a table; a bond name or reason with <script> shows as text."""
    html = staff.get(admin_url("rotationrun", "change", every_row["rotationrun"].pk)).content.decode()
    assert "<table><thead><tr><th>" in html and "<td>113050.SH</td>" in html
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_rotation_list_shows_effective_ratios(staff, paper_rotation):
    """TP/SL columns show the record's ratios when not overridden, and "off" for 0."""
    paper_rotation.factorcat_parameters = {"profitTargetRatio": 15, "stopLossRatio": 0}
    paper_rotation.save()
    html = staff.get(admin_url("rotationstrategy", "changelist"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "15% (from the record)" in html
    assert "every trading day at 14:50" in html
    paper_rotation.take_profit_ratio = D("0.2")
    paper_rotation.save()
    html = staff.get(admin_url("rotationstrategy", "changelist"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "20%" in html and "15% (from the record)" not in html


# --- Factor Cat password --------------------------------------------------------------------------


def account_form(**overrides):
    form = {
        "name": "main",
        "base_url": "https://factorcat.example.test:8003",
        "username": "alice",
        "password": PASSWORD,
        "remember_password": "on",
        "verify_tls": "on",
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def test_password_is_stored_encrypted_and_never_shown_back(staff):
    """The posted password decrypts to what was typed; the change page shows neither it nor its ciphertext."""
    response = staff.post(admin_url("factorcataccount", "add"), account_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    account = FactorCatAccount.objects.get()
    assert account.password_encrypted and PASSWORD not in account.password_encrypted
    assert crypto.decrypt(account.password_encrypted) == PASSWORD
    account.token_encrypted = crypto.encrypt("secret-token-value")
    account.save()

    html = staff.get(admin_url("factorcataccount", "change", account.pk), HTTP_ACCEPT_LANGUAGE="en")
    html = html.content.decode()
    assert PASSWORD not in html and account.password_encrypted not in html
    assert account.token_encrypted not in html and "secret-token-value" not in html
    assert 'type="password"' in html and "stored (encrypted)" in html
    password_input = re.search(r'<input type="password" name="password"[^>]*>', html)[0]
    assert "value=" not in password_input


def test_empty_password_keeps_the_stored_one_and_the_checkbox_forgets_it(staff):
    """Saving with an empty password field keeps the old password; "forget" clears it."""
    staff.post(admin_url("factorcataccount", "add"), account_form())
    account = FactorCatAccount.objects.get()
    stored = account.password_encrypted

    response = staff.post(
        admin_url("factorcataccount", "change", account.pk), account_form(password="", username="alice2")
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.password_encrypted == stored and account.username == "alice2"

    response = staff.post(
        admin_url("factorcataccount", "change", account.pk), account_form(password="", clear_password="on")
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.password_encrypted == ""


def test_new_password_replaces_the_old_and_a_new_user_drops_the_token(staff):
    """A typed password replaces the stored one; changing the user forgets the token of the old user."""
    staff.post(admin_url("factorcataccount", "add"), account_form())
    account = FactorCatAccount.objects.get()
    account.token_encrypted = crypto.encrypt("old-token")
    account.token_expires_at = timezone.now() + timedelta(days=1)
    account.save()
    staff.post(admin_url("factorcataccount", "change", account.pk), account_form(password="new pw"))
    account.refresh_from_db()
    assert crypto.decrypt(account.password_encrypted) == "new pw"
    assert account.token_encrypted  # same user and server: the token stays

    staff.post(admin_url("factorcataccount", "change", account.pk), account_form(password="", username="bob"))
    account.refresh_from_db()
    assert account.token_encrypted == "" and account.token_expires_at is None


def test_password_without_remember_is_refused_and_turning_remember_off_forgets_it(staff):
    """With "remember password" off no password is kept: typing one is an error, and a stored one goes."""
    response = staff.post(
        admin_url("factorcataccount", "add"), account_form(remember_password=None), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200 and "the password is not stored" in response.content.decode()
    assert not FactorCatAccount.objects.exists()

    staff.post(admin_url("factorcataccount", "add"), account_form())
    account = FactorCatAccount.objects.get()
    staff.post(
        admin_url("factorcataccount", "change", account.pk), account_form(password="", remember_password=None)
    )
    account.refresh_from_db()
    assert not account.remember_password and account.password_encrypted == ""


def test_missing_encryption_key_is_a_form_error(staff, settings):
    """Without FIELD_ENCRYPTION_KEY saving a password shows the reason on the form, not a server error."""
    settings.FIELD_ENCRYPTION_KEY = ""
    response = staff.post(admin_url("factorcataccount", "add"), account_form(), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    html = response.content.decode()
    assert "FIELD_ENCRYPTION_KEY is not set" in html and "errorlist" in html
    assert PASSWORD not in html
    assert not FactorCatAccount.objects.exists()


def test_tls_off_is_flagged(staff, caplog):
    """An account that skips certificate checks says so in the log, on the change page and in the list."""
    staff.post(admin_url("factorcataccount", "add"), account_form(verify_tls=None))
    assert "TLS certificate verification turned OFF by root" in caplog.text
    account = FactorCatAccount.objects.get()
    assert not account.verify_tls
    html = staff.get(admin_url("factorcataccount", "change", account.pk), HTTP_ACCEPT_LANGUAGE="en")
    assert "Certificate verification is OFF" in html.content.decode()
    listing = staff.get(admin_url("factorcataccount", "changelist"), HTTP_ACCEPT_LANGUAGE="en")
    assert "OFF</strong>" in listing.content.decode()


# --- log in now ---------------------------------------------------------------------------------


def login_url(account):
    return admin_url("factorcataccount", "object_action", account.pk, "log_in_now")


def test_log_in_now_asks_first_then_stores_a_token(staff, fc_account, factorcat):
    """The button shows a page first (no login); confirming logs in with the stored password."""
    page = staff.get(login_url(fc_account), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and "Leave empty to use the stored password" in page.content.decode()
    assert factorcat.count("POST", "/auth/login") == 0

    response = staff.post(login_url(fc_account), {"confirm": "yes", "password": ""}, follow=True)
    fc_account.refresh_from_db()
    assert factorcat.count("POST", "/auth/login") == 1
    assert fc_account.token_encrypted and fc_account.last_login_at and fc_account.last_error == ""
    assert fc_account.token_expires_at > timezone.now() + timedelta(days=29)  # the long-term token
    assert any("Logged in" in str(m) or "alice" in str(m) for m in response.context["messages"])


def test_log_in_now_shows_the_servers_refusal(staff, fc_account, factorcat):
    """A wrong typed password: the server's message is shown and recorded; nothing breaks."""
    response = staff.post(login_url(fc_account), {"confirm": "yes", "password": "wrong"}, follow=True)
    assert response.status_code == 200
    texts = [str(m) for m in response.context["messages"]]
    assert any("Incorrect username or password" in text for text in texts)
    fc_account.refresh_from_db()
    assert "Incorrect username or password" in fc_account.last_error
    assert crypto.decrypt(fc_account.password_encrypted) == PASSWORD  # the typed one was not stored


def test_log_in_now_without_a_remembered_password_asks_for_one(staff, fc_account, factorcat):
    """No password remembered and none typed: the page asks again and no login is tried."""
    fc_account.remember_password = False
    fc_account.save()
    response = staff.post(
        login_url(fc_account), {"confirm": "yes", "password": ""}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    assert "none is remembered for this account" in response.content.decode()
    assert factorcat.count("POST", "/auth/login") == 0


# --- browsing Factor Cat ------------------------------------------------------------------------


def browse(staff, account, *path, **params):
    names = {0: "browse", 1: "histories", 2: "create_rotation"}
    url = admin_url("factorcataccount", names[len(path)], account.pk, *path)
    return staff.get(url, params, HTTP_ACCEPT_LANGUAGE="en")


def test_browse_strategies_page_by_page_and_search(staff, fc_account, factorcat):
    """Page 1 lists 20 of 23 strategies with a next link; page 2 the rest; a search narrows the list."""
    first = browse(staff, fc_account)
    html = first.content.decode()
    assert first.status_code == 200
    assert html.count("data-strategy=") == 20 and "Page 1 of 2 (23 in all)" in html
    assert 'rel="next"' in html and "双低轮动 1<" in html

    second = browse(staff, fc_account, page=2).content.decode()
    assert second.count("data-strategy=") == 3 and "Page 2 of 2" in second and 'rel="next"' not in second

    found = browse(staff, fc_account, q="低价").content.decode()
    assert found.count("data-strategy=") == 7 and "双低轮动" not in found.split("factorcat-strategies")[1]


def test_browse_backtest_records_with_their_figures(staff, fc_account, factorcat):
    """A strategy's records show return, win rate, annualized return, drawdown and Sharpe, with a create link."""
    html = browse(staff, fc_account, 1, name="双低轮动 1").content.decode()
    assert html.count("data-history=") == 7
    row = html.split('data-history="101"')[1].split("</tr>")[0]
    for figure in ("2024-04-01T20:00:00", "0.1", "0.55", "0.21", "-0.12", "1.7"):
        assert f"<td>{figure}</td>" in row
    create = admin_url("factorcataccount", "create_rotation", fc_account.pk, 1, 101)
    assert create in row


def test_create_rotation_from_a_record(staff, fc_account, factorcat, paper_rotation):
    """The record's parameters are fetched and stored; the new rotation follows it and its account subscribes."""
    account = paper_rotation.account
    url = admin_url("factorcataccount", "create_rotation", fc_account.pk, 1, 101) + "?name=双低轮动 1"
    page = staff.get(url, HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert page.status_code == 200 and "profitTargetRatio" in html and "Take-profit 15%" in html
    assert 'value="10"' in html  # top-N suggested from the record's holdNum

    response = staff.post(
        url,
        {
            "name": "fc-rot",
            "account": account.pk,
            "factorcat_strategy_name": "双低轮动 1",
            "enabled": "on",
            "schedule": "weekly",
            "weekday": "4",
            "run_time": "14:50",
            "sizing": "equal",
            "top_n": "5",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    rotation = RotationStrategy.objects.get(name="fc-rot")
    assert response["Location"] == admin_url("rotationstrategy", "change", rotation.pk)
    assert rotation.source == RotationStrategy.Source.FACTORCAT
    assert (rotation.factorcat_account, rotation.factorcat_strategy_id, rotation.factorcat_history_id) == (
        fc_account,
        1,
        101,
    )
    assert rotation.factorcat_strategy_name == "双低轮动 1"
    assert rotation.factorcat_parameters == factorcat.parameters[(1, 101)]
    assert (rotation.schedule, rotation.weekday, rotation.top_n) == ("weekly", 4, 5)
    assert Subscription.objects.filter(account=account, strategy=rotation.strategy).exists()
    assert rotation.strategy.current_snapshot_id is not None  # an explicit empty target


def test_create_rotation_form_errors_create_nothing(staff, fc_account, factorcat, paper_rotation):
    """A weekly schedule without a weekday is shown on the form; nothing is created."""
    url = admin_url("factorcataccount", "create_rotation", fc_account.pk, 1, 101)
    response = staff.post(
        url,
        {
            "name": "fc-rot",
            "account": paper_rotation.account.pk,
            "schedule": "weekly",
            "run_time": "14:50",
            "sizing": "equal",
            "top_n": "5",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200 and "A weekly schedule needs a weekday." in response.content.decode()
    assert not RotationStrategy.objects.filter(name="fc-rot").exists()


def top_n_input(html: str) -> str | None:
    """The value the top-N box shows (None: empty)."""
    box = re.search(r'<input[^>]*name="top_n"[^>]*>', html)
    value = re.search(r'value="([^"]*)"', box[0]) if box else None
    return value[1] if value else None


NO_TOP_N = "The backtest record gives no number of bonds to hold"


@pytest.mark.parametrize(
    ("parameters", "suggested"),
    [
        ({"bond_selection_params": {"top_n": 7, "min_price": 90}, "holdNum": 10}, "7"),  # the selection's own
        ({"bond_selection_params": {"top_n": "6"}}, "6"),
        ({"bond_selection_params": {"other": 1}, "holdNum": 4}, "4"),  # falls back to holdNum
        ({"bond_selection_params": {"top_n": 0}, "holdNum": 5}, "5"),
        ({"holdNum": 10}, "10"),
        ({"bond_selection_params": {"top_n": -3}, "holdNum": True}, None),  # neither: said, not guessed
        ({"bond_selection_params": {"top_n": 2.5}}, None),
        ({"sortFactor": "双低"}, None),
    ],
)
def test_create_rotation_suggests_top_n_from_the_record(staff, fc_account, factorcat, parameters, suggested):
    """Top-N comes from bond_selection_params.top_n, else holdNum; without either the page says so, no default."""
    factorcat.parameters[(1, 103)] = parameters
    url = admin_url("factorcataccount", "create_rotation", fc_account.pk, 1, 103)
    html = staff.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert top_n_input(html) == suggested
    assert (NO_TOP_N in html) == (suggested is None)


def test_create_rotation_without_top_n_is_a_form_error(staff, fc_account, factorcat, paper_rotation):
    """A record without top-N and no number typed in: the form says why and nothing is created."""
    factorcat.parameters[(1, 103)] = {"sortFactor": "双低"}
    url = admin_url("factorcataccount", "create_rotation", fc_account.pk, 1, 103)
    form = {
        "name": "fc-rot",
        "account": paper_rotation.account.pk,
        "schedule": "daily",
        "run_time": "14:50",
        "sizing": "equal",
    }
    response = staff.post(url, form, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200 and NO_TOP_N in response.content.decode()
    assert not RotationStrategy.objects.filter(name="fc-rot").exists()

    response = staff.post(url, {**form, "top_n": "3"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert RotationStrategy.objects.get(name="fc-rot").top_n == 3


def test_factorcat_errors_are_messages_not_server_errors(staff, fc_account, factorcat, paper_rotation):
    """A server error on the list and a missing record show Factor Cat's own message; nothing is created."""
    factorcat.script("/strategies/", ("status", 400, {"detail": "服务维护中 <b>"}))
    response = browse(staff, fc_account)
    assert response.status_code == 200
    html = response.content.decode()
    assert "服务维护中 &lt;b&gt;" in html and "did not answer with a list" in html

    url = admin_url("factorcataccount", "create_rotation", fc_account.pk, 1, 999)
    assert "回测记录不存在" in staff.get(url).content.decode()
    response = staff.post(
        url,
        {
            "name": "fc-rot",
            "account": paper_rotation.account.pk,
            "schedule": "daily",
            "run_time": "14:50",
            "sizing": "equal",
            "top_n": "5",
        },
    )
    assert response.status_code == 200 and "回测记录不存在" in response.content.decode()
    assert not RotationStrategy.objects.filter(name="fc-rot").exists()


def test_refused_login_while_browsing_is_a_message(staff, fc_account, factorcat):
    """A stored password the server refuses: the browse page says why instead of failing."""
    factorcat.users["alice"] = "changed elsewhere"
    response = browse(staff, fc_account)
    assert response.status_code == 200
    assert "Incorrect username or password" in response.content.decode()
    fc_account.refresh_from_db()
    assert "Incorrect username or password" in fc_account.last_error


def test_browsing_needs_staff(client, fc_account, django_user_model):
    """A logged-in non-staff user is sent to the admin login, never to Factor Cat."""
    user = django_user_model.objects.create_user("plain", password="pw-for-tests-only")
    client.force_login(user)
    response = client.get(admin_url("factorcataccount", "browse", fc_account.pk))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- rotation strategies --------------------------------------------------------------------------


def test_adding_a_rotation_goes_through_the_service(staff, paper_rotation):
    """The add form creates the rotation's own strategy, subscribes the account and writes an empty target."""
    account = paper_rotation.account
    response = staff.post(
        admin_url("rotationstrategy", "add"),
        {
            "name": "csv-rot",
            "account": account.pk,
            "enabled": "on",
            "source": "upload",
            "schedule": "monthly",
            "month_day": "31",
            "run_time": "14:50",
            "max_lateness": "00:05:00",
            "sizing": "fixed",
            "amount_per_bond": "20000",
            "top_n": "3",
            "excluded_codes": "113050.SH",
            "cooldown_days": "2",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    rotation = RotationStrategy.objects.get(name="csv-rot")
    assert rotation.strategy.name == "rotation:csv-rot"
    assert rotation.strategy.current_snapshot_id is not None
    assert Subscription.objects.filter(account=account, strategy=rotation.strategy).exists()
    assert (rotation.month_day, rotation.amount_per_bond, rotation.cooldown_days) == (31, D("20000"), 2)


def test_account_and_name_stay_fixed_after_creation(staff, paper_rotation):
    """The change form cannot move a rotation to another account or rename it."""
    other = account_create(name="other", mode="paper", account_id="O1")
    url = admin_url("rotationstrategy", "change", paper_rotation.pk)
    response = staff.post(
        url,
        {
            "name": "renamed",
            "account": other.pk,
            "enabled": "",
            "source": "upload",
            "schedule": "daily",
            "run_time": "14:45",
            "max_lateness": "00:05:00",
            "sizing": "equal",
            "top_n": "4",
            "cooldown_days": "1",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    paper_rotation.refresh_from_db()
    assert (paper_rotation.name, paper_rotation.account.name) == ("cb-rot", "cb")
    assert (paper_rotation.enabled, paper_rotation.top_n) == (False, 4)


def upload(staff, rotation, content: bytes, trade_date="2024-05-10", **extra):
    return staff.post(
        admin_url("rotationstrategy", "upload_selection", rotation.pk),
        {"trade_date": trade_date, "file": SimpleUploadedFile("list.csv", content, "text/csv")},
        HTTP_ACCEPT_LANGUAGE="en",
        **extra,
    )


def test_csv_upload_stores_a_ranked_selection(staff, paper_rotation, superuser):
    """Ranked lines come first in rank order, unranked ones after; the source and uploader are recorded."""
    page = staff.get(admin_url("rotationstrategy", "upload_selection", paper_rotation.pk))
    assert page.status_code == 200 and timezone.localdate().isoformat() in page.content.decode()
    content = "code,name,rank\n128001,泰尔转债,\n113050.SH,南银转债,2\nsz123001,蓝标转债,1\n".encode("gbk")
    response = upload(staff, paper_rotation, content)
    selection = Selection.objects.get()
    assert response.status_code == 302
    assert response["Location"] == admin_url("selection", "change", selection.pk)
    assert selection.trade_date == date(2024, 5, 10) and selection.source == Selection.Source.CSV
    assert selection.received_from == f"admin:{superuser.username}"
    assert list(selection.items.values_list("rank", "code", "name")) == [
        (1, "123001.SZ", "蓝标转债"),
        (2, "113050.SH", "南银转债"),
        (3, "128001.SZ", "泰尔转债"),
    ]


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"name,rank\nfoo,1\n", "needs a header row with a &#x27;code&#x27; column"),
        (b"code\n999999999\n", "bonds[0].code"),
        (b"code\n113050\n113050.SH\n", "appears twice"),
        (b"code,rank\n113050,x\n", "is not a whole number"),
        (b"code\n", "The file lists no bonds."),
        (b"code\n" + b"113050\n" * 600_000, "larger than 1 MiB"),
    ],
)
def test_bad_csv_shows_the_reason_and_stores_nothing(staff, paper_rotation, content, fragment):
    """A rejected file is explained on the form and no selection is stored."""
    response = upload(staff, paper_rotation, content)
    assert response.status_code == 200
    assert fragment in response.content.decode()
    assert not Selection.objects.exists()


def test_csv_upload_is_refused_for_a_factorcat_rotation(staff, paper_rotation, fc_account):
    """A Factor Cat rotation never uses uploaded lists, so the upload is refused."""
    RotationStrategy.objects.filter(pk=paper_rotation.pk).update(
        source=RotationStrategy.Source.FACTORCAT, factorcat_account=fc_account, factorcat_history_id=101
    )
    response = upload(staff, paper_rotation, b"code\n113050\n")
    assert response.status_code == 200 and "takes its selection from Factor Cat" in response.content.decode()
    assert not Selection.objects.exists()


def action(staff, name, rotation, *, confirm: bool):
    data = {"action": name, ACTION_CHECKBOX_NAME: [rotation.pk]}
    if confirm:
        data["confirm"] = "yes"
    return staff.post(admin_url("rotationstrategy", "changelist"), data, HTTP_ACCEPT_LANGUAGE="en")


def test_run_now_asks_first_then_writes_the_target(staff, paper_rotation):
    """The first POST only shows the confirmation; confirming runs the rotation and shows its decision."""
    store_selection(paper_rotation, ["113050.SH", "123001.SZ", "128001.SZ"])
    paper_rotation.strategy.refresh_from_db()
    before = paper_rotation.strategy.current_snapshot_id
    assert before is not None

    page = action(staff, "run_now", paper_rotation, confirm=False)
    assert page.status_code == 200 and "Yes, run now" in page.content.decode()
    assert "bonds: 3" in page.content.decode()
    assert not RotationRun.objects.exists()

    result = action(staff, "run_now", paper_rotation, confirm=True)
    html = result.content.decode()
    run = RotationRun.objects.get()
    assert run.status == RotationRun.Status.DONE and run.trigger == RotationRun.Trigger.MANUAL
    assert result.status_code == 200 and 'data-code="113050.SH"' in html and 'data-code="123001.SZ"' in html
    assert "action-buy" in html and admin_url("rotationrun", "change", run.pk) in html
    paper_rotation.strategy.refresh_from_db()
    assert paper_rotation.strategy.current_snapshot_id != before
    lines = dict(paper_rotation.strategy.current_snapshot.lines.values_list("code", "volume"))
    assert set(lines) == {"113050.SH", "123001.SZ"}  # top 2 of the list


def test_run_now_without_a_selection_shows_the_error(staff, paper_rotation):
    """No list for today: the run is recorded as failed and the reason is on the result page."""
    html = action(staff, "run_now", paper_rotation, confirm=False).content.decode()
    assert "none: the run will fail" in html
    result = action(staff, "run_now", paper_rotation, confirm=True).content.decode()
    assert "no selection for" in result and "errornote" in result
    assert RotationRun.objects.get().status == RotationRun.Status.FAILED


def test_dry_run_shows_the_decision_and_writes_nothing(staff, paper_rotation):
    """A dry run shows what the run would do without a run record or a new target."""
    store_selection(paper_rotation, ["123001.SZ"])
    paper_rotation.strategy.refresh_from_db()
    before = paper_rotation.strategy.current_snapshot_id
    assert before is not None
    page = action(staff, "dry_run", paper_rotation, confirm=False)
    assert page.status_code == 200 and "No target is written" in page.content.decode()

    html = action(staff, "dry_run", paper_rotation, confirm=True).content.decode()
    assert 'data-code="123001.SZ"' in html and "action-buy" in html and "nothing was written" in html
    assert not RotationRun.objects.exists()
    paper_rotation.strategy.refresh_from_db()
    assert paper_rotation.strategy.current_snapshot_id == before


def test_change_page_buttons_reach_the_confirmation_pages(staff, paper_rotation):
    """The buttons on the change page open the dry-run and run-now confirmations for that rotation."""
    html = staff.get(admin_url("rotationstrategy", "change", paper_rotation.pk)).content.decode()
    for name in ("dry_run", "run_now"):
        url = admin_url("rotationstrategy", "object_action", paper_rotation.pk, name)
        assert url in html
        assert staff.get(url).status_code == 200
    assert admin_url("rotationstrategy", "upload_selection", paper_rotation.pk) in html
    assert not RotationRun.objects.exists()


def test_view_only_staff_cannot_run_or_upload(client, paper_rotation, django_user_model):
    """Staff with view permission only see rotations but cannot run them or upload lists."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw-for-tests-only", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_rotationstrategy"))
    client.force_login(user)
    assert client.get(admin_url("rotationstrategy", "change", paper_rotation.pk)).status_code == 200
    url = admin_url("rotationstrategy", "object_action", paper_rotation.pk, "run_now")
    assert client.post(url, {"confirm": "yes"}).status_code == 403
    assert upload(client, paper_rotation, b"code\n113050\n").status_code == 403
    assert not RotationRun.objects.exists() and not Selection.objects.exists()


def test_broker_account_is_chosen_by_search(staff, paper_rotation):
    """The account field uses autocomplete (the account list can be long)."""
    html = staff.get(admin_url("rotationstrategy", "add")).content.decode()
    assert "admin-autocomplete" in html

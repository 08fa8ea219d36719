"""Notifications: folding, per-channel events, the bots' exact JSON, failing channels, email, admin, and the execution wiring.

Webhooks are posted to a local HTTP server on 127.0.0.1 (real sockets; it fakes the bots' network
endpoints, nothing leaves the machine). Email uses Django's locmem backend (pytest-django `mailoutbox`).
"""

import json
import logging
import socket
import threading
import time
from datetime import date, datetime, timedelta
from decimal import Decimal as D
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation

from execution import tasks as execution_tasks
from execution.brokers.base import BrokerEvent, BrokerOrder
from execution.models import BrokerAccount, Order, OrderStatus, Round, TradingDay, WorkerLease
from execution.services.orders import events_apply, order_apply
from qmtjq import notifications
from qmtjq.channels import channel_create
from qmtjq.models import Notification, NotificationChannel
from qmtjq.notifications import (
    EVENT_HEARTBEAT_MISSING,
    EVENT_ORDER_REJECTED,
    EVENT_ROUND_BLOCKED,
    EVENT_ROUND_HELD,
    notify,
)

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
AT = datetime(2025, 6, 3, 10, 15, tzinfo=SHANGHAI)  # a Tuesday, morning session


# --- a fake bot endpoint ----------------------------------------------------------------------


class BotServer:
    """Answers POSTs per path with a configured (status, JSON body) and remembers what it received."""

    def __init__(self):
        self.answers: dict[str, tuple[int, dict]] = {}
        self.received: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                path, _, query = self.path.partition("?")
                server.received.append(
                    {
                        "path": path,
                        "query": query,
                        "content_type": self.headers.get("Content-Type"),
                        "json": json.loads(raw),
                    }
                )
                status, answer = server.answers.get(path, (200, {"errcode": 0, "errmsg": "ok"}))
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def paths(self) -> list[str]:
        return [r["path"] for r in self.received]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def bot():
    server = BotServer()
    yield server
    server.close()


@pytest.fixture
def refused_url():
    """A URL on a port nobody listens on (connection refused), carrying a secret key."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key=SECRET-BOT-KEY"


@pytest.fixture(autouse=True)
def english(client, settings):
    """Assertions read English text, whatever the catalog translates (the default language is Chinese);
    notifications are written in LANGUAGE_CODE, so that is English here too."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def fixed_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: AT)
    return AT


@pytest.fixture
def sent(django_capture_on_commit_callbacks):
    """Run notify's after-commit sending (tests run inside a transaction that never commits)."""

    def run(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            notify(*args, **kwargs)
        return callbacks

    return run


def channel(name, kind, target, *, events=(), enabled=True, secret=""):
    return channel_create(
        name=name, kind=kind, target=target, events=list(events), enabled=enabled, signing_secret=secret
    )


# --- folding ----------------------------------------------------------------------------------


def test_repeats_within_the_window_fold_and_are_not_resent(bot, sent):
    channel("hook", "webhook", bot.url("/hook"))
    sent(EVENT_ORDER_REJECTED, title="Order rejected", key="k1")
    sent(EVENT_ORDER_REJECTED, title="Order rejected again", key="k1")
    row = Notification.objects.get()
    assert (row.count, row.title) == (2, "Order rejected")
    assert row.last_seen_at >= row.created_at
    assert bot.paths() == ["/hook"]
    assert row.deliveries == [{"channel": "hook", "ok": True, "error": "", "at": row.deliveries[0]["at"]}]


def test_other_key_or_event_is_not_folded(bot, sent):
    channel("hook", "webhook", bot.url("/hook"))
    sent(EVENT_ORDER_REJECTED, title="a", key="k1")
    sent(EVENT_ORDER_REJECTED, title="b", key="k2")
    sent(EVENT_ROUND_BLOCKED, title="c", key="k1")
    assert Notification.objects.count() == 3 and len(bot.received) == 3


def test_resent_after_the_window(bot, sent, settings):
    settings.NOTIFICATION_FOLD_MINUTES = 5
    channel("hook", "webhook", bot.url("/hook"))
    sent(EVENT_HEARTBEAT_MISSING, title="silent", key="p1")
    Notification.objects.update(created_at=timezone.now() - timedelta(minutes=6))
    sent(EVENT_HEARTBEAT_MISSING, title="still silent", key="p1")
    assert list(Notification.objects.order_by("id").values_list("title", "count")) == [
        ("silent", 1),
        ("still silent", 1),
    ]
    assert len(bot.received) == 2


def test_unknown_event_is_logged_and_ignored(caplog, sent):
    with caplog.at_level(logging.ERROR, logger="qmtjq.notifications"):
        callbacks = sent("no_such_event", title="hello")
    assert not Notification.objects.exists() and not callbacks
    assert "unknown notification event 'no_such_event'" in caplog.text


def test_every_notification_is_logged(caplog, sent):
    with caplog.at_level(logging.INFO, logger="qmtjq.notifications"):
        sent(EVENT_ROUND_HELD, title="Round held", body="needs approval", key="p1:x")
        sent(EVENT_ROUND_HELD, title="Round held", body="needs approval", key="p1:x")
    assert "[round_held] Round held needs approval" in caplog.text
    assert "repeat 2, not sent again" in caplog.text


def test_without_channels_nothing_waits_for_commit_and_few_queries(sent, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):  # savepoint, fold lookup, insert, release, channels
        callbacks = sent(EVENT_ORDER_REJECTED, title="x", key="k")
    assert callbacks == [] and Notification.objects.count() == 1


def test_rolled_back_caller_sends_nothing(bot, django_capture_on_commit_callbacks):
    channel("hook", "webhook", bot.url("/hook"))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(ZeroDivisionError):
            with transaction.atomic():
                notify(EVENT_ORDER_REJECTED, title="x", key="k")
                1 / 0  # noqa: B018
    assert callbacks == [] and not Notification.objects.exists() and bot.received == []


def test_a_broken_store_never_reaches_the_caller(monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Notification.objects, "create", broken)
    with transaction.atomic():
        notify(EVENT_ORDER_REJECTED, title="x", key="k")
        # The caller's transaction is still usable.
        BrokerAccount.objects.create(name="after", account_id="1")
    assert BrokerAccount.objects.filter(name="after").exists()
    assert "could not be recorded or sent" in caplog.text


def test_long_keys_stay_distinct():
    notify(EVENT_ROUND_BLOCKED, title="a", key="p1:" + "x" * 400)
    notify(EVENT_ROUND_BLOCKED, title="b", key="p1:" + "x" * 399 + "y")
    keys = list(Notification.objects.values_list("key", flat=True))
    assert len(keys) == 2 and len(set(keys)) == 2 and all(len(k) <= 255 for k in keys)


# --- channels -----------------------------------------------------------------------------------


def test_each_channel_gets_only_its_events(bot, sent):
    channel("orders only", "webhook", bot.url("/orders"), events=[EVENT_ORDER_REJECTED])
    channel("everything", "webhook", bot.url("/all"))
    channel("switched off", "webhook", bot.url("/off"), enabled=False)
    sent(EVENT_HEARTBEAT_MISSING, title="silent", key="p1")
    assert bot.paths() == ["/all"]
    sent(EVENT_ORDER_REJECTED, title="rejected", key="o1")
    assert sorted(bot.paths()[1:]) == ["/all", "/orders"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "webhook",
            {
                "event": "order_rejected",
                "level": "error",
                "title": "Order rejected: p1",
                "body": "600000.SH: insufficient cash\nkey abc",
                "at": "2025-06-03T10:15:00+08:00",
            },
        ),
        (
            "wecom",
            {
                "msgtype": "markdown",
                "markdown": {
                    "content": "### [qmtjq] Order rejected: p1\n\n600000.SH: insufficient cash\nkey abc\n\n"
                    "> order rejected · error · 2025-06-03 10:15:00"
                },
            },
        ),
        (
            "dingtalk",
            {
                "msgtype": "markdown",
                "markdown": {
                    "title": "Order rejected: p1",
                    "text": "### [qmtjq] Order rejected: p1\n\n600000.SH: insufficient cash\nkey abc\n\n"
                    "> order rejected · error · 2025-06-03 10:15:00",
                },
            },
        ),
        (
            "feishu",
            {
                "msg_type": "text",
                "content": {
                    "text": "[qmtjq] Order rejected: p1\n600000.SH: insufficient cash\nkey abc\n"
                    "order rejected · error · 2025-06-03 10:15:00"
                },
            },
        ),
    ],
)
def test_webhook_formats_exact_json(bot, sent, fixed_now, kind, expected):
    bot.answers["/bot"] = (200, {"code": 0, "msg": "success"} if kind == "feishu" else {"errcode": 0})
    channel("bot", kind, bot.url("/bot"))
    sent(
        EVENT_ORDER_REJECTED,
        title="Order rejected: p1",
        body="600000.SH: insufficient cash\nkey abc",
        key="abc",
        level="error",
    )
    (request,) = bot.received
    assert request["json"] == expected
    assert request["content_type"] == "application/json"
    assert Notification.objects.get().deliveries[0]["ok"] is True


def test_failing_channels_are_recorded_and_do_not_stop_the_others(bot, refused_url, sent, mailoutbox):
    bot.answers["/500"] = (500, {"error": "boom"})
    bot.answers["/wecom-bad-key"] = (200, {"errcode": 93000, "errmsg": "invalid webhook url"})
    bot.answers["/feishu-bad-sign"] = (200, {"code": 19021, "msg": "sign match fail"})
    channel("a 500", "webhook", bot.url("/500"))
    channel("b refused", "wecom", refused_url)
    channel("c wecom", "wecom", bot.url("/wecom-bad-key"))
    channel("d feishu", "feishu", bot.url("/feishu-bad-sign"))
    channel("e good", "webhook", bot.url("/good"))
    channel("f mail", "email", "ops@example.com")
    sent(EVENT_ORDER_REJECTED, title="Order rejected", key="k")  # does not raise
    deliveries = {d["channel"]: d for d in Notification.objects.get().deliveries}
    assert {name: d["ok"] for name, d in deliveries.items()} == {
        "a 500": False,
        "b refused": False,
        "c wecom": False,
        "d feishu": False,
        "e good": True,
        "f mail": True,
    }
    assert "HTTP 500" in deliveries["a 500"]["error"]
    assert "ConnectionError" in deliveries["b refused"]["error"]
    assert "SECRET-BOT-KEY" not in json.dumps(deliveries)  # requests quotes the URL; the key is cut out
    assert "93000" in deliveries["c wecom"]["error"] and "19021" in deliveries["d feishu"]["error"]
    assert "/good" in bot.paths() and len(mailoutbox) == 1


def test_email_goes_to_the_listed_addresses(sent, mailoutbox, settings):
    settings.DEFAULT_FROM_EMAIL = "qmtjq@example.com"
    channel("ops", "email", "a@example.com, b@example.com")
    sent(EVENT_ROUND_BLOCKED, title="Round blocked: p1", body="target is stale", key="p1:stale")
    (mail,) = mailoutbox
    assert mail.to == ["a@example.com", "b@example.com"]
    assert mail.from_email == "qmtjq@example.com"
    assert mail.subject == "[qmtjq] Round blocked: p1"
    assert "target is stale" in mail.body


def test_channel_validation():
    bad_mail = NotificationChannel(name="m", kind="email", target="ops@example.com, not-an-address")
    with pytest.raises(Exception, match="not-an-address"):
        bad_mail.full_clean()
    with pytest.raises(Exception, match="http"):
        NotificationChannel(name="w", kind="wecom", target="ftp://x").full_clean()
    with pytest.raises(Exception, match="nope"):
        NotificationChannel(
            name="w", kind="webhook", target="https://x.example", events=["nope"]
        ).full_clean()


# --- admin --------------------------------------------------------------------------------------


def test_channel_admin_pages_and_add(client, superuser, bot):
    client.force_login(superuser)
    channel("ops mail", "email", "ops@example.com")
    changelist = reverse("admin:qmtjq_notificationchannel_changelist")
    response = client.get(changelist, {"q": "ops"})
    assert response.status_code == 200 and "ops mail" in response.content.decode()
    assert client.get(reverse("admin:qmtjq_notificationchannel_add")).status_code == 200
    response = client.post(
        reverse("admin:qmtjq_notificationchannel_add"),
        {
            "name": "wecom",
            "kind": "wecom",
            "target": bot.url("/cgi-bin/webhook/send?key=SECRET-BOT-KEY"),
            "events": [EVENT_ORDER_REJECTED, EVENT_HEARTBEAT_MISSING],
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    added = NotificationChannel.objects.get(name="wecom")
    assert added.events == [EVENT_ORDER_REJECTED, EVENT_HEARTBEAT_MISSING]
    html = client.get(changelist).content.decode()
    assert "SECRET-BOT-KEY" not in html  # the list shows the host only
    assert client.get(reverse("admin:qmtjq_notificationchannel_change", args=[added.pk])).status_code == 200


def test_channel_admin_test_send_reports_each_channel(client, superuser, bot, refused_url):
    client.force_login(superuser)
    good = channel("good", "dingtalk", bot.url("/robot/send"))
    bad = channel("bad", "webhook", refused_url)
    response = client.post(
        reverse("admin:qmtjq_notificationchannel_changelist"),
        {"action": "send_test", "_selected_action": [good.pk, bad.pk]},
        follow=True,
    )
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(t.startswith("good:") and "sent" in t for t in texts)
    assert any(t.startswith("bad:") and "ConnectionError" in t for t in texts)
    assert not any("SECRET-BOT-KEY" in t for t in texts)
    assert bot.received[0]["json"]["msgtype"] == "markdown"
    assert not Notification.objects.exists()  # a test send is not an event


def test_notification_log_admin_is_read_only(client, superuser):
    client.force_login(superuser)
    notify(
        EVENT_ORDER_REJECTED, title="Order rejected: p1 600000.SH", body="no cash", key="k1", level="error"
    )
    notify(EVENT_HEARTBEAT_MISSING, title="Worker silent", key="p1")
    row = Notification.objects.get(event=EVENT_ORDER_REJECTED)
    changelist = reverse("admin:qmtjq_notification_changelist")
    html = client.get(changelist, {"q": "600000"}).content.decode()
    assert "Order rejected: p1 600000.SH" in html and "Worker silent" not in html
    response = client.get(changelist, {"event": EVENT_HEARTBEAT_MISSING, "level": "warning"})
    assert response.status_code == 200 and "Worker silent" in response.content.decode()
    assert client.get(changelist, {"created_at__year": timezone.now().year}).status_code == 200
    assert client.get(reverse("admin:qmtjq_notification_change", args=[row.pk])).status_code == 200
    assert client.get(reverse("admin:qmtjq_notification_add")).status_code == 403


# --- execution wiring ---------------------------------------------------------------------------


@pytest.fixture
def account(db):
    return BrokerAccount.objects.create(name="p1", account_id="P1", trading_enabled=True)


@pytest.fixture
def sent_order(account):
    round_ = Round.objects.create(account=account, trigger=Round.Trigger.TARGET, status=Round.Status.PLACED)
    return Order.objects.create(
        account=account,
        round=round_,
        code="600000.SH",
        side="buy",
        volume=500,
        limit_price=D("10.02"),
        status=OrderStatus.REPORTED,
        broker_order_id=1001,
        sent_at=timezone.now(),
    )


def broker_update(order, status, message=""):
    return BrokerOrder(
        broker_order_id=order.broker_order_id,
        code=order.code,
        side="BUY",
        volume=order.volume,
        price=order.limit_price,
        status=status,
        traded_volume=0,
        traded_price=D(0),
        remark=order.key,
        message=message,
    )


def test_order_error_event_notifies_once(account, sent_order):
    error = BrokerEvent(kind="order_error", remark=sent_order.key, broker_order_id=1001, message="资金不足")
    assert events_apply(account=account, events=[error]) == 1
    events_apply(account=account, events=[error])  # delivered twice
    row = Notification.objects.get()
    assert (row.event, row.key, row.level, row.count) == (EVENT_ORDER_REJECTED, sent_order.key, "error", 1)
    assert row.title == "Order rejected: p1 buy 600000.SH × 500"
    assert "资金不足" in row.body


def test_junk_order_update_then_error_event_is_one_notification(account, sent_order):
    order_apply(order=sent_order, update=broker_update(sent_order, OrderStatus.JUNK, "price out of cage"))
    events_apply(
        account=account,
        events=[
            BrokerEvent(kind="order", order=broker_update(sent_order, OrderStatus.JUNK)),
            BrokerEvent(kind="order_error", remark=sent_order.key, message="price out of cage"),
        ],
    )
    row = Notification.objects.get()
    assert (row.event, row.key) == (EVENT_ORDER_REJECTED, sent_order.key)


def test_ordinary_order_updates_do_not_notify(sent_order):
    order_apply(order=sent_order, update=broker_update(sent_order, OrderStatus.SUCCEEDED))
    assert not Notification.objects.exists()


# A paper account, its target and prices, as the worker tests set them up.
@pytest.fixture
def paper_account(db):
    from execution.services.accounts import SubscriptionSpec, account_create
    from execution.tests.conftest import set_price

    created = account_create(
        name="p1",
        mode="paper",
        account_id="P1",
        starting_cash=D("1000000"),
        subscriptions=[SubscriptionSpec("S", "ratio", D("0.5"))],
        enforce_trading_hours=False,
    )
    set_price("600000.SH", "10.00")
    return created


def run_worker_once(account, **kwargs):
    from execution.brokers.paper import PaperBroker
    from execution.runtime import quote_source_for
    from execution.worker import Worker, WorkerConfig

    quote_source = kwargs.pop("quote_source", None) or quote_source_for(account)
    broker = kwargs.pop("broker", None) or PaperBroker(account, quote_source=quote_source)
    config = WorkerConfig(
        interval=0.01, backoff=(0.01,), reconcile_every=timedelta(0), drift_every=timedelta(0)
    )
    worker = Worker(
        account=account, broker=broker, quote_source=quote_source, config=config, say=lambda line: None
    )
    worker.start()
    try:
        return worker.run_once(timeout=20)
    finally:
        worker.stop()


def test_blocked_round_notifies_once_for_the_same_reason(paper_account):
    from execution.tests.conftest import upload_target
    from positions.models import Strategy

    upload_target("S", [("600000.SH", 1000, "10")])
    Strategy.objects.update(confirmed_at=timezone.now() - timedelta(days=10))
    run_worker_once(paper_account)
    run_worker_once(paper_account)  # unchanged: no new round
    Round.objects.all().delete()  # a new blocked round with the very same reason
    run_worker_once(paper_account)
    assert Round.objects.get().status == Round.Status.BLOCKED
    row = Notification.objects.get()
    assert row.event == EVENT_ROUND_BLOCKED and row.count == 2
    assert row.key.startswith("p1:target of strategy 'S' is stale")


def test_held_round_notifies(paper_account):
    from execution.tests.conftest import upload_target

    paper_account.approval_threshold = D("0.001")
    paper_account.save()
    upload_target("S", [("600000.SH", 1000, "10")])
    run_worker_once(paper_account)
    row = Notification.objects.get()
    assert row.event == EVENT_ROUND_HELD and row.key.startswith("p1:")


def test_broker_refusal_notifies_the_order_and_the_failed_round(paper_account):
    import dataclasses

    from execution.brokers.paper import PaperBroker
    from execution.runtime import quote_source_for
    from execution.tests.conftest import upload_target

    upload_target("S", [("600000.SH", 1000, "10")])
    planner_quotes = quote_source_for(paper_account)

    def broker_quotes(codes):  # the broker sees the stock suspended and refuses the order
        return {code: dataclasses.replace(q, suspended=True) for code, q in planner_quotes(codes).items()}

    broker = PaperBroker(paper_account, quote_source=broker_quotes)
    run_worker_once(paper_account, broker=broker, quote_source=planner_quotes)
    order = Order.objects.get()
    assert order.status == OrderStatus.JUNK
    rejected = Notification.objects.get(event=EVENT_ORDER_REJECTED)
    assert rejected.key == order.key and rejected.count == 1
    failed, blocked = Notification.objects.filter(event=EVENT_ROUND_BLOCKED).order_by("id")
    assert failed.level == "error" and failed.body == Round.objects.get(status=Round.Status.FAILED).message
    assert "rejected by the broker" in blocked.body


# --- heartbeat watchdog -------------------------------------------------------------------------


def lease(account, *, heartbeat_at):
    return WorkerLease.objects.create(
        account=account,
        holder="pc:1:abc",
        acquired_at=heartbeat_at,
        heartbeat_at=heartbeat_at,
        expires_at=heartbeat_at + timedelta(seconds=30),
    )


@pytest.fixture
def june_days(db):
    """The calendar rows the watchdog tests use (transactional tests elsewhere empty the table)."""
    for day, is_open in [(date(2025, 6, 3), True), (date(2025, 6, 7), False)]:
        TradingDay.objects.update_or_create(date=day, defaults={"is_open": is_open})


def test_watchdog_in_session_notifies_stale_and_missing_workers(june_days):
    stale = BrokerAccount.objects.create(name="stale", account_id="1", trading_enabled=True)
    lease(stale, heartbeat_at=AT - timedelta(minutes=5))
    fresh = BrokerAccount.objects.create(name="fresh", account_id="2", trading_enabled=True)
    lease(fresh, heartbeat_at=AT - timedelta(seconds=20))
    BrokerAccount.objects.create(name="nolease", account_id="3", trading_enabled=True)
    BrokerAccount.objects.create(name="switched-off", account_id="4", trading_enabled=False)
    BrokerAccount.objects.create(name="disabled", account_id="5", trading_enabled=True, enabled=False)
    assert sorted(execution_tasks.heartbeat_watchdog(now=AT)) == ["nolease", "stale"]
    rows = {n.key: n for n in Notification.objects.filter(event=EVENT_HEARTBEAT_MISSING)}
    assert set(rows) == {"nolease", "stale"}
    assert "5 min ago" in rows["stale"].body and "pc:1:abc" in rows["stale"].body
    execution_tasks.heartbeat_watchdog(now=AT + timedelta(minutes=1))  # folded, not re-sent
    assert Notification.objects.get(key="stale").count == 2


@pytest.mark.parametrize(
    "now",
    [
        datetime(2025, 6, 3, 12, 0, tzinfo=SHANGHAI),  # lunch break
        datetime(2025, 6, 3, 16, 0, tzinfo=SHANGHAI),  # after the close
        datetime(2025, 6, 3, 8, 0, tzinfo=SHANGHAI),  # before the open
        datetime(2025, 6, 7, 10, 0, tzinfo=SHANGHAI),  # Saturday
    ],
)
def test_watchdog_outside_sessions_does_nothing(june_days, now):
    stale = BrokerAccount.objects.create(name="stale", account_id="1", trading_enabled=True)
    lease(stale, heartbeat_at=now - timedelta(hours=1))
    assert execution_tasks.heartbeat_watchdog(now=now) == []
    assert not Notification.objects.exists()


def test_watchdog_fresh_heartbeat_is_quiet(monkeypatch):
    monkeypatch.setattr(execution_tasks, "can_place_orders", lambda now, **kwargs: (True, ""))
    now = timezone.now()
    lease(BrokerAccount.objects.create(name="p1", account_id="1", trading_enabled=True), heartbeat_at=now)
    assert execution_tasks.heartbeat_watchdog() == []
    assert not Notification.objects.exists()


def test_watchdog_says_once_a_day_that_the_calendar_ran_out():
    TradingDay.objects.filter(date__gte=date(2031, 1, 1)).delete()
    monday = datetime(2031, 1, 6, 10, 0, tzinfo=SHANGHAI)
    assert execution_tasks.heartbeat_watchdog(now=monday) == []
    execution_tasks.heartbeat_watchdog(now=monday + timedelta(hours=2))
    row = Notification.objects.get()
    assert (row.event, row.key, row.count) == (EVENT_HEARTBEAT_MISSING, "calendar-unknown:2031-01-06", 1)
    execution_tasks.heartbeat_watchdog(now=monday + timedelta(days=1))
    assert Notification.objects.count() == 2


def test_watchdog_is_scheduled_every_minute():
    from qmtjq.schedules import schedules_collect

    (spec,) = [s for s in schedules_collect() if s.func == "execution.tasks.heartbeat_watchdog"]
    assert spec.minutes == 1


def test_module_interface_is_unchanged():
    """Callers in every app rely on these names."""
    assert notifications.EVENTS == (
        "order_rejected",
        "heartbeat_missing",
        "round_blocked",
        "round_held",
        "rotation_failed",
        "rotation_skipped_bond",
        "tp_sl_triggered",
        "factorcat_login_failed",
    )


# --- background sending ------------------------------------------------------------------------------


class SlowBot(BotServer):
    """A bot endpoint that takes its time to answer."""

    def __init__(self, delay):
        super().__init__()
        self.delay = delay
        handler = self.httpd.RequestHandlerClass
        original = handler.do_POST

        def slow(handler_self):
            time.sleep(delay)
            original(handler_self)

        handler.do_POST = slow


@pytest.mark.django_db(transaction=True)
def test_background_sending_does_not_hold_up_the_caller(settings):
    """With NOTIFICATION_SEND_ASYNC a slow webhook costs the worker nothing; the delivery is still recorded."""
    settings.NOTIFICATION_SEND_ASYNC = True
    slow = SlowBot(delay=1.0)
    try:
        channel("slow", "webhook", slow.url("/hook"))
        started = time.monotonic()
        notify(EVENT_ORDER_REJECTED, title="rejected", key="bg-1")
        assert time.monotonic() - started < 0.5
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not Notification.objects.get(key="bg-1").deliveries:
            time.sleep(0.05)
        deliveries = Notification.objects.get(key="bg-1").deliveries
        assert [d["ok"] for d in deliveries] == [True]
        assert slow.paths() == ["/hook"]
    finally:
        slow.close()

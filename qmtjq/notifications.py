"""Notifications used by every app (issue 4): email via EMAIL_URL and webhooks.

Interface (stable; the implementation grows behind it):

    notify(event, title=..., body=..., key=..., level=...)

`event` is one of the EVENT_* names below. `key` folds duplicates: the same
(event, key) within the folding window is recorded once; callers build it from
stable English or codes, never from a translated text. A failing channel
never raises into the caller.

`title` and `body` may be zero-argument callables: they are then rendered in
the notification language (`notification_language()`: settings.LANGUAGE_CODE,
the product's default, whatever language the calling request or command has
active), so a trader reads the same language in every message.

How it works:

- Every call is logged (logger "qmtjq.notifications") and recorded as a
  `qmtjq.models.Notification` row right away, in the caller's transaction (in
  a savepoint, so a failing insert cannot spoil it). If the caller's
  transaction rolls back, the row goes with it and nothing is sent: the
  notification was about a change that never happened. A job that notifies
  about its own failure must therefore call `notify` outside the transaction
  it rolls back.
- The same (event, key) within `NOTIFICATION_FOLD_MINUTES` (default 30) of the
  row's first occurrence is folded into that row (count + 1, last seen now)
  and NOT sent again; after the window a new row is created and sent, so a
  condition that persists is reminded about once per window.
- Sending runs in `transaction.on_commit` (at once when there is no open
  transaction), to every enabled channel subscribed to the event. Each
  channel's outcome is stored in the row's `deliveries`; failures are logged,
  never raised. Sending happens on one background thread
  (`NOTIFICATION_SEND_ASYNC`, default on), so a dead webhook never holds up
  the worker or the job that notified; pending sends finish at process exit.
"""

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256
from urllib.parse import quote, quote_plus, urlsplit

import requests
from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .webhook_signing import webhook_sign

logger = logging.getLogger("qmtjq.notifications")

EVENT_ORDER_REJECTED = "order_rejected"
EVENT_HEARTBEAT_MISSING = "heartbeat_missing"
EVENT_ROUND_BLOCKED = "round_blocked"
EVENT_ROUND_HELD = "round_held"
EVENT_ROTATION_FAILED = "rotation_failed"
EVENT_ROTATION_SKIPPED_BOND = "rotation_skipped_bond"
EVENT_TP_SL_TRIGGERED = "tp_sl_triggered"
EVENT_FACTORCAT_LOGIN_FAILED = "factorcat_login_failed"

EVENTS = (
    EVENT_ORDER_REJECTED,
    EVENT_HEARTBEAT_MISSING,
    EVENT_ROUND_BLOCKED,
    EVENT_ROUND_HELD,
    EVENT_ROTATION_FAILED,
    EVENT_ROTATION_SKIPPED_BOND,
    EVENT_TP_SL_TRIGGERED,
    EVENT_FACTORCAT_LOGIN_FAILED,
)

WEBHOOK_TIMEOUT = 3  # seconds; a notification must not hold up the worker for long
EMAIL_TIMEOUT = 10  # seconds, unless settings.EMAIL_TIMEOUT says otherwise
DEFAULT_FOLD_MINUTES = 30
_LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_KEY_MAX = 255
_TITLE_MAX = 300


def event_label(event: str) -> str:
    """The event in the reader's language (admin, messages)."""
    labels = {
        EVENT_ORDER_REJECTED: _("order rejected"),
        EVENT_HEARTBEAT_MISSING: _("worker heartbeat missing"),
        EVENT_ROUND_BLOCKED: _("round blocked or failed"),
        EVENT_ROUND_HELD: _("round held for approval"),
        EVENT_ROTATION_FAILED: _("rotation failed"),
        EVENT_ROTATION_SKIPPED_BOND: _("rotation skipped a bond"),
        EVENT_TP_SL_TRIGGERED: _("take-profit / stop-loss triggered"),
        EVENT_FACTORCAT_LOGIN_FAILED: _("Factor Cat login failed"),
    }
    return labels.get(event, event)


@dataclass(frozen=True)
class Message:
    """What is sent: plain text, no secrets."""

    event: str
    level: str
    title: str
    body: str
    at: datetime


def notification_language() -> str:
    """The language notifications are written in: the product default (LANGUAGE_CODE, zh-hans)."""
    return settings.LANGUAGE_CODE


def notification_render(value) -> str:
    """A title or body (a text, or a callable giving one) in the notification language."""
    if not callable(value):
        return str(value)
    with translation.override(notification_language()):
        return str(value())


def notify(event: str, *, title, body="", key: str = "", level: str = "warning") -> None:
    """Record and send a notification; never raises. `title`/`body`: texts or callables (see above)."""
    try:
        title, body = notification_render(title), notification_render(body)
    except Exception:
        logger.exception("notification %s: its text could not be rendered", event)
        title, body = str(event), ""
    if event not in EVENTS:
        logger.error("unknown notification event %r: %s", event, title)
        return
    try:
        _notify(event, title=title, body=body, key=str(key), level=str(level))
    except Exception:
        logger.exception("notification %s %r could not be recorded or sent", event, title)


def _notify(event: str, *, title: str, body: str, key: str, level: str) -> None:
    from .models import Notification, NotificationChannel

    if level not in _LOG_LEVELS:
        logger.warning("unknown notification level %r for %s: using warning", level, event)
        level = "warning"
    title = " ".join(title.split())[:_TITLE_MAX]
    key = _fold_key(key)
    now = timezone.now()
    window = timedelta(minutes=getattr(settings, "NOTIFICATION_FOLD_MINUTES", DEFAULT_FOLD_MINUTES))
    with transaction.atomic():
        folded = (
            Notification.objects.filter(event=event, key=key, created_at__gt=now - window)
            .order_by("-created_at")
            .values_list("pk", "count")
            .first()
        )
        if folded is not None:
            Notification.objects.filter(pk=folded[0]).update(count=F("count") + 1, last_seen_at=now)
        else:
            notification = Notification.objects.create(
                event=event, key=key, level=level, title=title, body=body, created_at=now, last_seen_at=now
            )
    if folded is not None:
        logger.log(_LOG_LEVELS[level], "[%s] %s (repeat %d, not sent again)", event, title, folded[1] + 1)
        return
    logger.log(_LOG_LEVELS[level], "[%s] %s %s", event, title, body)
    channels = [c for c in NotificationChannel.objects.filter(enabled=True) if c.wants(event)]
    if not channels:
        return
    message = Message(event=event, level=level, title=title, body=body, at=now)

    def deliver() -> None:
        try:
            deliveries = [channel_send(channel=channel, message=message) for channel in channels]
            Notification.objects.filter(pk=notification.pk).update(deliveries=deliveries)
        except Exception:
            logger.exception("notification %s %r: sending failed", event, title)

    def send_after_commit() -> None:
        if getattr(settings, "NOTIFICATION_SEND_ASYNC", True):
            _sender().submit(_in_own_connection, deliver)
        else:
            deliver()

    transaction.on_commit(send_after_commit, robust=True)


_SENDER: ThreadPoolExecutor | None = None
_SENDER_LOCK = threading.Lock()


def _sender() -> ThreadPoolExecutor:
    """One background thread sends, so a dead webhook never stalls the worker or a job (in order, one at a time)."""
    global _SENDER
    with _SENDER_LOCK:
        if _SENDER is None:
            _SENDER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qmtjq-notify")
        return _SENDER


def _in_own_connection(fn) -> None:
    try:
        fn()
    finally:
        connection.close()  # the sender thread's own database connection


def _fold_key(key: str) -> str:
    """Keys longer than the column keep a digest of the whole, so distinct long keys stay distinct."""
    if len(key) <= _KEY_MAX:
        return key
    return f"{key[: _KEY_MAX - 17]}#{sha256(key.encode()).hexdigest()[:16]}"


# --- channels -------------------------------------------------------------------------------


class DeliveryFailed(Exception):
    """A channel answered, but not with success."""


def channel_send(*, channel, message: Message) -> dict:
    """Send one message to one channel; returns the delivery record {channel, ok, error, at}, never raises."""
    error = ""
    try:
        if channel.is_email:
            _send_email(channel, message)
        else:
            _send_webhook(channel, message)
    except Exception as exc:  # any failure of one channel is that channel's, not the caller's
        error = f"{type(exc).__name__}: {exc}"
        if not channel.is_email:
            error = _redact(error, _channel_secrets(channel))
        error = error[:500]
        logger.warning("notification channel %s failed for %s: %s", channel.name, message.event, error)
    else:
        logger.info("notification %s sent to channel %s", message.event, channel.name)
    at = timezone.localtime(timezone.now()).isoformat()
    return {"channel": channel.name, "ok": not error, "error": error, "at": at}


def channel_test_send(*, channel) -> dict:
    """Send a test message to one channel (whatever events it subscribes to); returns its delivery record."""
    message = Message(
        event="test",
        level="info",
        title=_("qmtjq test notification"),
        body=_("If you can read this, channel %(name)s works.") % {"name": channel.name},
        at=timezone.now(),
    )
    return channel_send(channel=channel, message=message)


def _footer(message: Message) -> str:
    at = timezone.localtime(message.at).strftime("%Y-%m-%d %H:%M:%S")
    with translation.override(notification_language()):  # sent from a thread with no language of its own
        return f"{event_label(message.event)} · {message.level} · {at}"


def _text(message: Message) -> str:
    lines = [f"[qmtjq] {message.title}"]
    if message.body:
        lines.append(message.body)
    lines.append(_footer(message))
    return "\n".join(lines)


def _markdown(message: Message) -> str:
    parts = [f"### [qmtjq] {message.title}"]
    if message.body:
        parts.append(message.body)
    parts.append(f"> {_footer(message)}")
    return "\n\n".join(parts)


def webhook_payload(kind: str, message: Message) -> dict:
    """The JSON body each kind of bot expects."""
    if kind == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": _markdown(message)}}
    if kind == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": message.title, "text": _markdown(message)}}
    if kind == "feishu":
        return {"msg_type": "text", "content": {"text": _text(message)}}
    return {
        "event": message.event,
        "level": message.level,
        "title": message.title,
        "body": message.body,
        "at": timezone.localtime(message.at).isoformat(),
    }


def _send_webhook(channel, message: Message) -> None:
    url, payload = channel.webhook_url(), webhook_payload(channel.kind, message)
    if not url:
        raise DeliveryFailed("no webhook URL stored")
    secret = channel.signing_secret()
    if secret:
        url, payload = webhook_sign(kind=channel.kind, url=url, payload=payload, secret=secret, now=time.time())
    response = requests.post(url, json=payload, timeout=WEBHOOK_TIMEOUT)
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:200]}")
    if channel.kind in ("wecom", "dingtalk", "feishu"):
        # The bots answer HTTP 200 with an error code in the body (bad key, keyword missing, rate limit).
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryFailed(f"not a JSON answer: {response.text[:200]}")
        if not isinstance(answer, dict):
            raise DeliveryFailed(f"unexpected answer: {response.text[:200]}")
        code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
        if code not in (0, "0", None):
            detail = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or ""
            raise DeliveryFailed(f"error code {code}: {detail}"[:300])


def _send_email(channel, message: Message) -> None:
    addresses = channel.email_addresses()
    if not addresses:
        raise DeliveryFailed("no email address")
    timeout = getattr(settings, "EMAIL_TIMEOUT", None) or EMAIL_TIMEOUT
    send_mail(
        subject=f"[qmtjq] {message.title}",
        message=_text(message),
        from_email=None,
        recipient_list=addresses,
        connection=get_connection(timeout=timeout),
    )


def _channel_secrets(channel) -> list[str]:
    """What must never appear in an error text: the URL (in every form requests may quote) and the secret."""
    secrets = []
    for read in (channel.webhook_url, channel.signing_secret):
        try:
            secrets.append(read())
        except Exception:  # noqa: S112 - unreadable (key missing): then it cannot leak either
            continue
    return secrets


def _redact(text: str, secrets: list[str]) -> str:
    """Error texts (requests quotes the URL, with the key and the signature) must not carry them."""
    fragments = []
    for secret in filter(None, (s.strip() for s in secrets)):
        parts = urlsplit(secret)
        fragments += [secret, parts.path + ("?" + parts.query if parts.query else ""), parts.query, parts.path]
        fragments += [quote_plus(secret), quote(secret, safe="")]
    for fragment in sorted(set(fragments), key=len, reverse=True):
        if len(fragment) > 1:
            text = text.replace(fragment, "/…")
    # A signed DingTalk URL adds timestamp and sign after the stored query.
    return re.sub(r"([?&](?:timestamp|sign|access_token|key)=)[^&\s'\")]*", r"\1…", text)

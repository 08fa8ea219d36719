"""Webhook URLs (they carry the bot's key) and bot signing secrets are stored encrypted and shown
masked; DingTalk and Feishu requests are signed as their docs say. Bots are a local HTTP server."""

import base64
import hashlib
import hmac
import importlib
import io
import json
import logging
import re
import time
from urllib.parse import parse_qs, unquote_plus

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.urls import reverse

from qmtjq import crypto
from qmtjq.channels import channel_create, channel_secrets_reencrypt
from qmtjq.models import Notification, NotificationChannel
from qmtjq.notifications import EVENT_ORDER_REJECTED
from qmtjq.tests.test_notifications import bot, english, refused_url, sent  # noqa: F401,F811  (fixtures)
from qmtjq.webhook_signing import dingtalk_sign, feishu_sign

pytestmark = pytest.mark.django_db

KEY = "SECRET-BOT-KEY"
SIGNING_SECRET = "SEC0123456789abcdef-signing"


def _raw_row(pk) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM qmtjq_notificationchannel WHERE id = %s", [pk])
        return json.dumps(cursor.fetchone(), default=str)


def test_the_database_holds_no_plain_webhook_url_or_secret(bot):  # noqa: F811
    """Every column of the row is free of the URL's key and the signing secret; the model decrypts both."""
    url = bot.url(f"/robot/send?access_token={KEY}")
    channel = channel_create(name="ding", kind="dingtalk", target=url, signing_secret=SIGNING_SECRET)
    raw = _raw_row(channel.pk)
    assert KEY not in raw and "access_token" not in raw and SIGNING_SECRET not in raw
    stored = NotificationChannel.objects.get(pk=channel.pk)
    assert stored.webhook_url() == url and stored.signing_secret() == SIGNING_SECRET
    assert stored.target == f"http://127.0.0.1:{bot.httpd.server_address[1]}/…"


def test_sending_still_reaches_the_bot(bot, sent):  # noqa: F811
    """The decrypted URL is used for sending, query (the key) included."""
    channel_create(name="wecom", kind="wecom", target=bot.url(f"/cgi-bin/webhook/send?key={KEY}"))
    sent(EVENT_ORDER_REJECTED, title="Order rejected", key="k")
    (request,) = bot.received
    assert request["path"] == "/cgi-bin/webhook/send" and request["query"] == f"key={KEY}"
    assert Notification.objects.get().deliveries[0]["ok"] is True


def test_errors_and_logs_never_show_the_key(refused_url, sent, caplog):  # noqa: F811
    """A failing bot's error (requests quotes the URL) is stored and logged without the key."""
    channel_create(name="dead", kind="dingtalk", target=refused_url, signing_secret=SIGNING_SECRET)
    with caplog.at_level(logging.DEBUG):
        sent(EVENT_ORDER_REJECTED, title="Order rejected", key="k")
    delivery = Notification.objects.get().deliveries[0]
    assert delivery["ok"] is False and "ConnectionError" in delivery["error"]
    for text in (json.dumps(delivery), caplog.text):
        assert KEY not in text and SIGNING_SECRET not in text
        assert not re.search(r"sign=[A-Za-z0-9%]", text)


def test_admin_shows_a_mask_and_keeps_the_url_when_saved_unchanged(client, superuser, bot, sent):  # noqa: F811
    """List and change page show scheme and host only; saving the form as shown keeps the stored URL."""
    client.force_login(superuser)
    add = client.post(
        reverse("admin:qmtjq_notificationchannel_add"),
        {"name": "wecom", "kind": "wecom", "target": bot.url(f"/cgi-bin/webhook/send?key={KEY}"), "enabled": "on"},
    )
    assert add.status_code == 302, add.content.decode()[:2000]
    channel = NotificationChannel.objects.get(name="wecom")
    change_url = reverse("admin:qmtjq_notificationchannel_change", args=[channel.pk])
    for page in (reverse("admin:qmtjq_notificationchannel_changelist"), change_url):
        html = client.get(page).content.decode()
        assert KEY not in html and "cgi-bin" not in html
        assert f"127.0.0.1:{bot.httpd.server_address[1]}/…" in html
    saved = client.post(change_url, {"name": "wecom", "kind": "wecom", "target": channel.target, "enabled": "on"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert NotificationChannel.objects.get(pk=channel.pk).webhook_url().endswith(f"?key={KEY}")
    sent(EVENT_ORDER_REJECTED, title="Order rejected", key="k")
    assert bot.received[0]["query"] == f"key={KEY}"


def test_admin_signing_secret_is_write_only(client, superuser, bot):  # noqa: F811
    """The secret is never shown back; blank keeps it, the checkbox forgets it (keyword mode)."""
    client.force_login(superuser)
    url = bot.url(f"/robot/send?access_token={KEY}")
    form = {"name": "ding", "kind": "dingtalk", "target": url, "enabled": "on", "signing_secret": SIGNING_SECRET}
    assert client.post(reverse("admin:qmtjq_notificationchannel_add"), form).status_code == 302
    channel = NotificationChannel.objects.get(name="ding")
    change_url = reverse("admin:qmtjq_notificationchannel_change", args=[channel.pk])
    html = client.get(change_url).content.decode()
    assert SIGNING_SECRET not in html
    keep = {"name": "ding", "kind": "dingtalk", "target": channel.target, "enabled": "on", "signing_secret": ""}
    assert client.post(change_url, keep).status_code == 302
    assert NotificationChannel.objects.get(pk=channel.pk).signing_secret() == SIGNING_SECRET
    assert client.post(change_url, {**keep, "forget_signing_secret": "on"}).status_code == 302
    assert NotificationChannel.objects.get(pk=channel.pk).signing_secret() == ""


def test_admin_refuses_a_secret_for_a_bot_that_does_not_sign(client, superuser, bot):  # noqa: F811
    """Only DingTalk and Feishu bots sign; a secret for WeCom is a form error, nothing stored."""
    client.force_login(superuser)
    response = client.post(
        reverse("admin:qmtjq_notificationchannel_add"),
        {"name": "w", "kind": "wecom", "target": bot.url("/x?key=1"), "enabled": "on", "signing_secret": "SEC1"},
    )
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert not NotificationChannel.objects.exists()


def test_dingtalk_sign_matches_the_documented_algorithm():
    """sign = urlencode(base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}"))), timestamp in ms."""
    assert dingtalk_sign(secret="secret", timestamp_ms=1700000000000) == "OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY="


def test_dingtalk_request_carries_timestamp_and_sign(bot, sent):  # noqa: F811
    """The bot receives its key plus &timestamp=<ms>&sign=<urlencoded signature> that verifies."""
    channel_create(
        name="ding", kind="dingtalk", target=bot.url(f"/robot/send?access_token={KEY}"), signing_secret=SIGNING_SECRET
    )
    before = int(time.time() * 1000)
    sent(EVENT_ORDER_REJECTED, title="Order rejected", key="k")
    (request,) = bot.received
    query = parse_qs(request["query"])
    assert query["access_token"] == [KEY]
    timestamp = query["timestamp"][0]
    assert before - 1000 <= int(timestamp) <= int(time.time() * 1000)
    expected = base64.b64encode(
        hmac.new(SIGNING_SECRET.encode(), f"{timestamp}\n{SIGNING_SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert query["sign"] == [expected]
    assert unquote_plus(request["query"].split("sign=")[1]) == expected  # sent url-encoded
    assert request["json"]["msgtype"] == "markdown"


def test_feishu_body_carries_timestamp_and_sign(bot, sent):  # noqa: F811
    """Feishu: "timestamp" (seconds) and "sign" = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg="")) in the body."""
    bot.answers["/open-apis/bot/v2/hook/x"] = (200, {"code": 0, "msg": "success"})
    channel_create(
        name="fs", kind="feishu", target=bot.url("/open-apis/bot/v2/hook/x"), signing_secret=SIGNING_SECRET
    )
    before = int(time.time())
    sent(EVENT_ORDER_REJECTED, title="Order rejected", key="k")
    (request,) = bot.received
    body = request["json"]
    assert before - 1 <= int(body["timestamp"]) <= int(time.time())
    expected = base64.b64encode(
        hmac.new(f"{body['timestamp']}\n{SIGNING_SECRET}".encode(), b"", hashlib.sha256).digest()
    ).decode()
    assert body["sign"] == expected == feishu_sign(secret=SIGNING_SECRET, timestamp=int(body["timestamp"]))
    assert body["msg_type"] == "text" and "[qmtjq] Order rejected" in body["content"]["text"]
    assert Notification.objects.get().deliveries[0]["ok"] is True


def test_without_a_secret_bots_stay_in_keyword_mode(bot, sent):  # noqa: F811
    """No secret: no timestamp or sign; the text carries the keyword "qmtjq"."""
    bot.answers["/hook"] = (200, {"code": 0})
    channel_create(name="ding", kind="dingtalk", target=bot.url("/robot/send?access_token=T"))
    channel_create(name="fs", kind="feishu", target=bot.url("/hook"))
    sent(EVENT_ORDER_REJECTED, title="Order rejected", key="k")
    by_path = {r["path"]: r for r in bot.received}
    assert by_path["/robot/send"]["query"] == "access_token=T"
    assert "sign" not in by_path["/hook"]["json"] and "timestamp" not in by_path["/hook"]["json"]
    assert "qmtjq" in by_path["/robot/send"]["json"]["markdown"]["text"]


def test_migration_encrypts_existing_rows_and_reverses(bot):  # noqa: F811
    """Rows stored before encryption get their URL encrypted and masked; the reverse step restores them."""
    url = bot.url(f"/cgi-bin/webhook/send?key={KEY}")
    row = NotificationChannel.objects.create(name="old", kind="wecom", target=url)
    mail = NotificationChannel.objects.create(name="mail", kind="email", target="ops@example.com")
    migration = importlib.import_module("qmtjq.migrations.0003_notificationchannel_encrypted_webhook")
    migration.webhook_urls_encrypt(django_apps, None)
    assert KEY not in _raw_row(row.pk)
    assert NotificationChannel.objects.get(pk=row.pk).webhook_url() == url
    assert NotificationChannel.objects.get(pk=mail.pk).target == "ops@example.com"
    migration.webhook_urls_decrypt(django_apps, None)
    restored = NotificationChannel.objects.get(pk=row.pk)
    assert restored.target == url and restored.url_encrypted == ""


def test_key_rotation_reencrypts_channel_secrets(bot, settings):  # noqa: F811
    """After prepending a new key, re-encryption leaves nothing readable only with the old key."""
    old = settings.FIELD_ENCRYPTION_KEY
    channel = channel_create(
        name="ding", kind="dingtalk", target=bot.url(f"/robot/send?access_token={KEY}"), signing_secret=SIGNING_SECRET
    )
    new = crypto.generate_key()
    settings.FIELD_ENCRYPTION_KEY = f"{new},{old}"
    assert channel_secrets_reencrypt() == 1
    settings.FIELD_ENCRYPTION_KEY = new
    stored = NotificationChannel.objects.get(pk=channel.pk)
    assert stored.webhook_url().endswith(KEY) and stored.signing_secret() == SIGNING_SECRET


def test_reencrypt_secrets_command_covers_channels_and_factor_cat(bot, settings):  # noqa: F811
    """`manage.py reencrypt_secrets` after prepending a new key: the old key can then be dropped."""
    from django.core.management import call_command

    from rotation.credentials import factorcat_password_set
    from rotation.models import FactorCatAccount

    old = settings.FIELD_ENCRYPTION_KEY
    channel = channel_create(name="w", kind="wecom", target=bot.url(f"/send?key={KEY}"))
    account = FactorCatAccount.objects.create(name="fc", username="u")
    factorcat_password_set(account=account, password="fc-password")
    FactorCatAccount.objects.filter(pk=account.pk).update(token_encrypted=crypto.encrypt("fc-token"))
    settings.FIELD_ENCRYPTION_KEY = f"{crypto.generate_key()},{old}"
    out = io.StringIO()
    call_command("reencrypt_secrets", stdout=out)
    assert "1 notification channel" in out.getvalue() and "1 Factor Cat account" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEY = settings.FIELD_ENCRYPTION_KEY.split(",")[0]
    assert NotificationChannel.objects.get(pk=channel.pk).webhook_url().endswith(KEY)
    account.refresh_from_db()
    assert crypto.decrypt(account.password_encrypted) == "fc-password"
    assert crypto.decrypt(account.token_encrypted) == "fc-token"

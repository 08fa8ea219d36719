"""Notification channels' secrets: webhook URLs (they carry the bot's key) and bot signing secrets.

Both are stored encrypted with FIELD_ENCRYPTION_KEY (`qmtjq.crypto`, as the
Factor Cat password); `target` keeps only what is safe to show: email
addresses, or the webhook's scheme and host ("https://oapi.dingtalk.com/…").
"""

from collections.abc import Iterable
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils.translation import gettext as _

from . import crypto
from .models import NotificationChannel
from .webhook_signing import SIGNING_KINDS


def webhook_url_mask(url: str) -> str:
    """Scheme and host only: the path and query hold the bot's key, the user part a password."""
    parts = urlsplit(url.strip())
    if not parts.hostname:
        return "…"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


def webhook_url_check(url: str) -> str:
    """The URL stripped, or ValidationError when it is not http(s)."""
    url = url.strip()
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError(_("Enter the webhook's http(s) URL.")) from None
    return url


def channel_webhook_set(*, channel: NotificationChannel, url: str) -> None:
    """Put the webhook URL on the (unsaved) channel: encrypted, and its mask in `target`."""
    url = webhook_url_check(url)
    channel.url_encrypted = crypto.encrypt(url)
    channel.target = webhook_url_mask(url)


def signing_kinds_only() -> str:
    return _("Only DingTalk and Feishu bots sign their requests; leave the secret empty.")


def channel_signing_secret_set(*, channel: NotificationChannel, secret: str) -> None:
    """Put the bot's signing secret on the (unsaved) channel, encrypted; '' = keyword mode."""
    secret = secret.strip()
    if secret and channel.kind not in SIGNING_KINDS:
        raise ValidationError(signing_kinds_only())
    channel.secret_encrypted = crypto.encrypt(secret) if secret else ""


@transaction.atomic
def channel_create(
    *,
    name: str,
    kind: str,
    target: str,
    events: Iterable[str] = (),
    enabled: bool = True,
    signing_secret: str = "",
) -> NotificationChannel:
    """A new channel; `target` is the email addresses or the webhook URL (stored encrypted)."""
    channel = NotificationChannel(name=name, kind=kind, events=list(events), enabled=enabled)
    if kind == NotificationChannel.Kind.EMAIL:
        channel.target = target
    else:
        channel_webhook_set(channel=channel, url=target)
    channel_signing_secret_set(channel=channel, secret=signing_secret)
    channel.full_clean()
    channel.save()
    return channel


def channel_secrets_reencrypt() -> int:
    """Re-encrypt every channel's URL and secret with the first FIELD_ENCRYPTION_KEY; returns how many changed."""
    changed = 0
    for channel in NotificationChannel.objects.exclude(url_encrypted="", secret_encrypted=""):
        fields = []
        for field in ("url_encrypted", "secret_encrypted"):
            if getattr(channel, field):
                setattr(channel, field, crypto.reencrypt(getattr(channel, field)))
                fields.append(field)
        channel.save(update_fields=fields)
        changed += 1
    return changed

"""Where notifications go (channels) and what was notified (the log), see `qmtjq.notifications`."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.utils.translation import gettext_lazy as _


class NotificationLevel(models.TextChoices):
    INFO = "info", _("info")
    WARNING = "warning", _("warning")
    ERROR = "error", _("error")


class NotificationChannel(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", _("email")
        WEBHOOK = "webhook", _("webhook (generic JSON)")
        WECOM = "wecom", _("WeCom group bot")
        DINGTALK = "dingtalk", _("DingTalk group bot")
        FEISHU = "feishu", _("Feishu group bot")

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    target = models.CharField(
        _("target"),
        max_length=1000,
        help_text=_(
            "Email: addresses separated by commas. Webhooks: the bot's URL. It contains the bot's key, so it "
            "is stored encrypted and shown as its host only; to change it, paste the whole new URL."
        ),
    )
    # The webhook's URL (with the bot's key) and the DingTalk/Feishu signing secret, encrypted
    # with FIELD_ENCRYPTION_KEY (qmtjq.channels); `target` then holds only the URL's mask.
    url_encrypted = models.TextField(blank=True, editable=False)
    secret_encrypted = models.TextField(blank=True, editable=False)
    events = models.JSONField(
        _("events"),
        default=list,
        blank=True,
        help_text=_("The events this channel receives; none selected = all."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("notification channel")
        verbose_name_plural = _("notification channels")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def is_email(self) -> bool:
        return self.kind == self.Kind.EMAIL

    def email_addresses(self) -> list[str]:
        return [part.strip() for part in self.target.split(",") if part.strip()]

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events

    def target_display(self) -> str:
        """Email addresses, or the webhook's scheme and host: never the bot's key."""
        return self.target

    def webhook_url(self) -> str:
        """The webhook's full URL (decrypted); raises qmtjq.crypto.CryptoError when the key cannot read it."""
        from . import crypto

        return crypto.decrypt(self.url_encrypted) if self.url_encrypted else ""

    def signing_secret(self) -> str:
        """The DingTalk/Feishu signing secret (decrypted), '' in keyword mode."""
        from . import crypto

        return crypto.decrypt(self.secret_encrypted) if self.secret_encrypted else ""

    def clean(self):
        from .notifications import EVENTS

        errors = {}
        if self.is_email:
            addresses = self.email_addresses()
            bad = []
            for address in addresses:
                try:
                    validate_email(address)
                except ValidationError:
                    bad.append(address)
            if not addresses or bad:
                errors["target"] = _("Enter email addresses separated by commas: %(bad)s") % {"bad": ", ".join(bad)}
        elif not self.url_encrypted:
            errors["target"] = _("Enter the webhook's http(s) URL.")
        unknown = [event for event in self.events or [] if event not in EVENTS]
        if unknown:
            errors["events"] = _("Unknown events: %(events)s") % {"events": ", ".join(unknown)}
        if errors:
            raise ValidationError(errors)


class Notification(models.Model):
    """One notification as recorded by `notify`; repeats of the same event and key are folded into it."""

    event = models.CharField(_("event"), max_length=32)
    key = models.CharField(_("key"), max_length=255, blank=True)
    level = models.CharField(
        _("level"), max_length=16, choices=NotificationLevel.choices, default=NotificationLevel.WARNING
    )
    title = models.CharField(_("title"), max_length=300)
    body = models.TextField(_("body"), blank=True)
    created_at = models.DateTimeField(_("created at"), db_index=True)
    last_seen_at = models.DateTimeField(_("last seen at"))
    count = models.PositiveIntegerField(_("count"), default=1, help_text=_("Repeats folded into this row."))
    deliveries = models.JSONField(_("deliveries"), default=list, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["event", "key", "created_at"], name="notification_fold")]

    def __str__(self) -> str:
        return f"{self.event}: {self.title}"


class TradingPause(models.Model):
    """The global pause: one row (pk=1). When paused, no worker sends an order (next to TRADING_ENABLED)."""

    paused = models.BooleanField(_("all trading paused"), default=False)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    # {"text": code, "params": {...}} of a reason the system wrote (qmtjq.trading.TRADING_TEXTS);
    # {} for a reason a person typed, shown as typed.
    reason_params = models.JSONField(_("reason parameters"), default=dict, blank=True)
    changed_at = models.DateTimeField(_("changed at"), null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("changed by"), null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        verbose_name = _("global trading pause")
        verbose_name_plural = _("global trading pause")

    def __str__(self) -> str:
        return str(_("paused") if self.paused else _("not paused"))


class SecurityName(models.Model):
    """One code → name table for every page (from uploads, rotation selections, xtdata instrument details)."""

    code = models.CharField(_("code"), max_length=16, unique=True)
    name = models.CharField(_("name"), max_length=64)
    source = models.CharField(_("source"), max_length=16)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("security name")
        verbose_name_plural = _("security names")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class RotatingKey(models.Model):
    """One secret key of a credential (an API client's key; later a remote worker's).

    Only a SHA-256 digest is stored. A credential may hold several keys:
    rotating issues a new one and lets the previous one live on until the
    end of a grace period, so callers switch without downtime (see `qmtjq.keys`).
    """

    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(_("key starts with"), max_length=12, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(
        _("expires at"), null=True, blank=True, help_text=_("Empty: never expires.")
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}…"

    def problem(self, now) -> str:
        """Why this key is not accepted now ('' when it is)."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return ""

"""Strategies, their immutable target snapshots, API clients and the upload trail."""

import hashlib

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from qmtjq.models import RotatingKey


def exact_key(text: str) -> str:
    """SHA-256 hex of `text`, used for byte-exact uniqueness.

    MySQL's default utf8mb4 collations compare case- and accent-insensitively
    and ignore trailing spaces, so "Alpha" and "alpha" would be one strategy
    there and two on SQLite. Unique digests behave the same everywhere.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Strategy(models.Model):
    """Anything that wants positions: a JoinQuant strategy, a rotation, a manual target."""

    name = models.CharField(_("name"), max_length=100)
    name_key = models.CharField(max_length=64, unique=True, editable=False)
    description = models.TextField(_("description"), blank=True)
    current_snapshot = models.ForeignKey(
        "TargetSnapshot",
        verbose_name=_("current target"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        "ApiClient",
        verbose_name=_("created by API client"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Last time the strategy sent a target (new or identical): an identical
    # re-upload proves it is alive and still wants these positions.
    confirmed_at = models.DateTimeField(_("last confirmed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("strategy")
        verbose_name_plural = _("strategies")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.name_key = exact_key(self.name)
        if (
            "update_fields" in kwargs
            and kwargs["update_fields"] is not None
            and "name" in kwargs["update_fields"]
        ):
            kwargs["update_fields"] = {*kwargs["update_fields"], "name_key"}
        super().save(*args, **kwargs)


class TargetSnapshot(models.Model):
    """One immutable version of a strategy's target positions."""

    class Source(models.TextChoices):
        API = "api", _("API upload")
        ADMIN = "admin", _("admin edit")
        ROTATION = "rotation", _("rotation")

    strategy = models.ForeignKey(
        Strategy, verbose_name=_("strategy"), on_delete=models.CASCADE, related_name="snapshots"
    )
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.API)
    client = models.ForeignKey(
        "ApiClient",
        verbose_name=_("API client"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="snapshots",
    )
    remote_addr = models.GenericIPAddressField(_("from address"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    total_value = models.DecimalField(
        _("strategy total value"), max_digits=20, decimal_places=4, null=True, blank=True
    )
    cash = models.DecimalField(_("strategy cash"), max_digits=20, decimal_places=4, null=True, blank=True)
    content_hash = models.CharField(_("content hash"), max_length=64)
    # Codes the strategy's own rules closed (rotation: take-profit/stop-loss, left the
    # list), carried forward until the strategy targets them again. Selling them is an
    # exit the user ordered and is not held for approval (DESIGN §5.2).
    rule_exits = models.JSONField(_("closed by the strategy's rules"), default=list, blank=True)
    positions_count = models.PositiveIntegerField(_("positions"), default=0)

    class Meta:
        verbose_name = _("target snapshot")
        verbose_name_plural = _("target snapshots")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["strategy", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.strategy} #{self.pk}"


class TargetLine(models.Model):
    snapshot = models.ForeignKey(
        TargetSnapshot, verbose_name=_("snapshot"), on_delete=models.CASCADE, related_name="lines"
    )
    code = models.CharField(_("code"), max_length=12, help_text=_("Canonical QMT code, e.g. 600000.SH"))
    jq_code = models.CharField(_("JoinQuant code"), max_length=16)
    name = models.CharField(_("security name"), max_length=64, blank=True)
    volume = models.BigIntegerField(_("volume"))
    cost = models.DecimalField(_("cost"), max_digits=20, decimal_places=6)

    class Meta:
        verbose_name = _("target line")
        verbose_name_plural = _("target lines")
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["snapshot", "code"], name="target_line_unique_code")]

    def __str__(self) -> str:
        return f"{self.code} {self.volume}"


class ApiClient(models.Model):
    """A caller of the API (a JoinQuant strategy's client file, a script)."""

    name = models.CharField(_("name"), max_length=100)
    client_id = models.CharField(
        _("client id"),
        max_length=64,
        unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9_.-]{1,64}$", _("Use letters, digits, '.', '_' and '-'."))],
        help_text=_("Letters, digits, '.', '_' and '-'; used in signed tokens."),
    )
    api_key_lifetime_days = models.PositiveIntegerField(
        _("API key lifetime (days)"),
        null=True,
        blank=True,
        help_text=_("New API keys expire after this many days; empty: they never expire."),
    )
    public_key = models.TextField(
        _("RSA public key (PEM)"),
        blank=True,
        help_text=_("X.509 SubjectPublicKeyInfo PEM, 2048-4096 bits. Enables X-Auth-Token signatures."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    require_v2 = models.BooleanField(
        _("require v2 signed tokens"),
        default=False,
        help_text=_("Reject API keys and v1 tokens; accept only tokens that sign method, path and body."),
    )
    all_strategies = models.BooleanField(_("all strategies allowed"), default=False)
    strategies = models.ManyToManyField(
        Strategy, verbose_name=_("allowed strategies"), blank=True, related_name="api_clients"
    )
    can_create_strategies = models.BooleanField(
        _("may create strategies"),
        default=True,
        help_text=_("Uploading to an unknown strategy name creates it (it trades nothing until subscribed)."),
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        _("rate limit per minute"), default=settings.API_DEFAULT_RATE_LIMIT_PER_MINUTE
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    last_used_from = models.GenericIPAddressField(_("last used from"), null=True, blank=True)
    # Callers get one generic 401; the real reason is kept here for the admin (and in the server log).
    last_auth_failure = models.CharField(_("last authentication failure"), max_length=300, blank=True)
    last_auth_failure_at = models.DateTimeField(_("last authentication failure at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    def allows_strategy(self, name: str) -> bool:
        if self.all_strategies:
            return True
        return self.strategies.filter(name_key=exact_key(name)).exists()


class ApiKey(RotatingKey):
    """An API key of a client; during a rotation's grace period a client has two valid keys."""

    client = models.ForeignKey(
        ApiClient, verbose_name=_("API client"), on_delete=models.CASCADE, related_name="api_keys"
    )

    class Meta(RotatingKey.Meta):
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")


class Upload(models.Model):
    """Audit row for every accepted upload; also the idempotency record for `snapshot_id`."""

    client = models.ForeignKey(ApiClient, verbose_name=_("API client"), on_delete=models.PROTECT)
    snapshot_id = models.CharField(_("upload id"), max_length=64)
    snapshot_key = models.CharField(max_length=64, editable=False)
    strategy = models.ForeignKey(Strategy, verbose_name=_("strategy"), on_delete=models.CASCADE)
    target = models.ForeignKey(
        TargetSnapshot, verbose_name=_("resulting target"), on_delete=models.CASCADE, related_name="uploads"
    )
    changed = models.BooleanField(_("changed"))
    auth_type = models.CharField(_("auth type"), max_length=16)
    remote_addr = models.GenericIPAddressField(_("from address"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("upload")
        verbose_name_plural = _("uploads")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["client", "snapshot_key"], name="upload_unique_snapshot_id")
        ]

    def __str__(self) -> str:
        return f"{self.strategy} {self.snapshot_id}"


class SeenToken(models.Model):
    """Signed tokens already used, kept until they would expire anyway (replay protection)."""

    digest = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("seen token")
        verbose_name_plural = _("seen tokens")

    def __str__(self) -> str:
        return self.digest[:12]


class ApiRateWindow(models.Model):
    """Requests an API client made in one minute-long window (the rate limit's shared, atomic count)."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    window = models.BigIntegerField(help_text="Unix time of the window's start divided by its length")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("API rate window")
        verbose_name_plural = _("API rate windows")
        constraints = [models.UniqueConstraint(fields=["client", "window"], name="api_rate_window_unique")]

    def __str__(self) -> str:
        return f"{self.client_id}@{self.window}: {self.count}"

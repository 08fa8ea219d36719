"""Broker state as reported by the worker, the worker lease, and admin-entered quotes."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .accounts import BrokerAccount


class AccountState(models.Model):
    account = models.OneToOneField(
        BrokerAccount, verbose_name=_("account"), on_delete=models.CASCADE, related_name="state"
    )
    cash = models.DecimalField(_("cash"), max_digits=18, decimal_places=2)
    frozen_cash = models.DecimalField(_("frozen cash"), max_digits=18, decimal_places=2, default=0)
    market_value = models.DecimalField(_("market value"), max_digits=18, decimal_places=2, default=0)
    total_asset = models.DecimalField(_("total asset"), max_digits=18, decimal_places=2)
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        verbose_name = _("account state")
        verbose_name_plural = _("account states")

    def __str__(self) -> str:
        return f"{self.account.name} {self.total_asset}"


class Holding(models.Model):
    account = models.ForeignKey(
        BrokerAccount, verbose_name=_("account"), on_delete=models.CASCADE, related_name="holdings"
    )
    code = models.CharField(_("code"), max_length=16)
    volume = models.BigIntegerField(_("volume"))
    can_use_volume = models.BigIntegerField(_("sellable volume"))
    avg_cost = models.DecimalField(_("average cost"), max_digits=14, decimal_places=4, default=0)
    last_price = models.DecimalField(_("last price"), max_digits=14, decimal_places=4, null=True, blank=True)
    market_value = models.DecimalField(_("market value"), max_digits=18, decimal_places=2, default=0)
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        verbose_name = _("holding")
        verbose_name_plural = _("holdings")
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["account", "code"], name="holding_unique_code")]

    def __str__(self) -> str:
        return f"{self.code} {self.volume}"


class EquityPoint(models.Model):
    """Periodic account value for an equity curve."""

    account = models.ForeignKey(BrokerAccount, on_delete=models.CASCADE, related_name="equity")
    at = models.DateTimeField(_("at"), db_index=True)
    cash = models.DecimalField(_("cash"), max_digits=18, decimal_places=2)
    market_value = models.DecimalField(_("market value"), max_digits=18, decimal_places=2)
    total_asset = models.DecimalField(_("total asset"), max_digits=18, decimal_places=2)

    class Meta:
        verbose_name = _("equity point")
        verbose_name_plural = _("equity points")
        ordering = ["at"]

    def __str__(self) -> str:
        return f"{self.account_id} {self.at} {self.total_asset}"


class WorkerLease(models.Model):
    """Only one worker per account: whoever holds an unexpired lease."""

    account = models.OneToOneField(BrokerAccount, on_delete=models.CASCADE, related_name="lease")
    holder = models.CharField(_("holder"), max_length=200)  # host:pid:token
    acquired_at = models.DateTimeField(_("acquired at"))
    heartbeat_at = models.DateTimeField(_("last heartbeat"))
    expires_at = models.DateTimeField(_("expires at"))
    # Fencing number: +1 at every acquisition, so a stalled former holder's sends are refused.
    epoch = models.PositiveBigIntegerField(_("lease epoch"), default=0)
    # What the holder reports with its heartbeat, e.g. "broker unreachable: ..." (empty = fine).
    status = models.CharField(_("worker status"), max_length=300, blank=True)
    took_over_from = models.CharField(_("took over from"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("worker lease")
        verbose_name_plural = _("worker leases")

    def __str__(self) -> str:
        return f"{self.account_id} {self.holder}"


class LeaseEvent(models.Model):
    """The account's lease history (read-only in admin): who took the account from whom, at which epoch, why."""

    class Kind(models.TextChoices):
        ACQUIRED = "acquired", _("acquired")
        TAKEN_OVER = "taken_over", _("taken over")
        RELEASED = "released", _("released")

    class Reason(models.TextChoices):
        FREE = "free", _("no worker held the account")
        SAME_HOLDER = "same_holder", _("the same worker took it again")
        EXPIRED = "expired", _("the lease of the previous holder had expired")
        PROCESS_GONE = "process_gone", _("the process of the previous holder no longer exists on this host")
        REMOTE_RESTART = "remote_restart", _("the trading PC reported from a new worker process")
        STOPPED = "stopped", _("the worker stopped")

    account = models.ForeignKey(
        BrokerAccount, verbose_name=_("account"), on_delete=models.CASCADE, related_name="lease_events"
    )
    at = models.DateTimeField(_("at"))
    kind = models.CharField(_("event"), max_length=16, choices=Kind.choices)
    holder = models.CharField(_("holder"), max_length=200)  # host:pid:token
    previous_holder = models.CharField(_("previous holder"), max_length=200, blank=True)
    # The previous holder's last heartbeat and lease end: what a takeover was judged on.
    previous_heartbeat_at = models.DateTimeField(
        _("last heartbeat of the previous holder"), null=True, blank=True
    )
    previous_expires_at = models.DateTimeField(_("previous lease expired at"), null=True, blank=True)
    epoch = models.PositiveBigIntegerField(_("lease epoch"))
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)

    class Meta:
        verbose_name = _("lease event")
        verbose_name_plural = _("lease history")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["account", "at"], name="lease_event_account_at")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.kind} {self.holder} #{self.epoch}"


class ManualQuote(models.Model):
    """Prices entered in admin: a quote source for paper accounts and a fallback when feeds fail."""

    code = models.CharField(_("code"), max_length=12, unique=True)
    last_price = models.DecimalField(_("last price"), max_digits=14, decimal_places=4)
    prev_close = models.DecimalField(
        _("previous close"), max_digits=14, decimal_places=4, null=True, blank=True
    )
    up_stop = models.DecimalField(_("limit-up price"), max_digits=14, decimal_places=4, null=True, blank=True)
    down_stop = models.DecimalField(
        _("limit-down price"), max_digits=14, decimal_places=4, null=True, blank=True
    )
    suspended = models.BooleanField(_("suspended"), default=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("manual quote")
        verbose_name_plural = _("manual quotes")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.last_price}"

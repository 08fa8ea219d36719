"""Rounds, orders, their status history and fills (DESIGN §5, §6)."""

import base64
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .accounts import BrokerAccount


def order_key_new() -> str:
    """A unique order key that fits xtquant's order_remark (≤ 24 ASCII chars): 'qj' + 16 base32 chars."""
    return "qj" + base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def round_uid_new() -> str:
    """A round's natural key, made where the round is planned (the trading PC in remote mode)."""
    return uuid.uuid4().hex


class Round(models.Model):
    """One convergence step of one account."""

    class Status(models.TextChoices):
        PLACED = "placed", _("placed")
        CONVERGED = "converged", _("converged")
        BLOCKED = "blocked", _("blocked")
        HELD = "held_for_approval", _("held for approval")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")

    class Trigger(models.TextChoices):
        TARGET = "target_changed", _("target changed")
        DRIFT = "drift", _("drift")
        APPROVED = "approved", _("approved")
        MANUAL = "manual", _("manual")
        FOLLOW_UP = "follow_up", _("previous round finished")
        RECONNECT = "reconnected", _("broker reconnected")

    account = models.ForeignKey(
        BrokerAccount, verbose_name=_("account"), on_delete=models.CASCADE, related_name="rounds"
    )
    # Natural key shared by the trading PC's ledger and the server's mirror (remote mode).
    uid = models.CharField(_("round uid"), max_length=32, default=round_uid_new, editable=False)
    trigger = models.CharField(_("trigger"), max_length=16, choices=Trigger.choices)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, db_index=True)
    targets = models.JSONField(_("target versions used"), default=dict)  # {strategy name: snapshot id}
    diff = models.JSONField(_("diff"), default=list)  # [{code, target, actual, reserved, delta}]
    skips = models.JSONField(_("skipped lines"), default=list)  # [{code, reason, detail, volume}]
    planned = models.JSONField(_("planned orders"), default=list)  # held rounds keep their plan here
    message = models.TextField(_("message"), blank=True)
    # {"text": code, "params": {...}} (execution.planner.texts.ROUND_TEXTS): pages render the message
    # from these in the reader's language; {} for free texts and rows that predate the codes.
    message_params = models.JSONField(_("message parameters"), default=dict, blank=True)
    # Inputs digest: a round that made no progress is not recomputed until something changes.
    fingerprint = models.CharField(max_length=64, blank=True)
    # default, not auto_now_add: the server's mirror keeps the time the trading PC recorded.
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False, db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("round")
        verbose_name_plural = _("rounds")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"])]
        constraints = [models.UniqueConstraint(fields=["account", "uid"], name="round_unique_uid")]

    def __str__(self) -> str:
        return f"{self.account.name} #{self.pk} {self.get_status_display()}"


class OrderStatus(models.IntegerChoices):
    """xtquant's order status codes (DESIGN §6), plus our own states before and instead of sending."""

    CREATED = 0, _("stored, not yet sent")
    NOT_SENT = -1, _("never sent")
    SEND_FAILED = -2, _("send failed")
    # Claimed by the lease holder for sending; whether it reached the broker is unknown until reconciled.
    SENDING = -3, _("sending (outcome unknown)")
    UNREPORTED = 48, _("unreported")
    WAIT_REPORTING = 49, _("waiting to report")
    REPORTED = 50, _("reported")
    REPORTED_CANCEL = 51, _("reported, cancel pending")
    PARTSUCC_CANCEL = 52, _("partly filled, cancel pending")
    PART_CANCEL = 53, _("partly cancelled")
    CANCELED = 54, _("cancelled")
    PART_SUCC = 55, _("partly filled")
    SUCCEEDED = 56, _("filled")
    JUNK = 57, _("rejected")
    UNKNOWN = 255, _("unknown")


# 51 and 52 are NOT final: a cancel is pending and fills may still arrive.
FINAL_STATUSES = frozenset(
    {
        OrderStatus.NOT_SENT,
        OrderStatus.SEND_FAILED,
        OrderStatus.PART_CANCEL,
        OrderStatus.CANCELED,
        OrderStatus.SUCCEEDED,
        OrderStatus.JUNK,
    }
)


class Order(models.Model):
    class Side(models.TextChoices):
        BUY = "buy", _("buy")
        SELL = "sell", _("sell")

    key = models.CharField(_("order key"), max_length=24, unique=True, default=order_key_new, editable=False)
    account = models.ForeignKey(
        BrokerAccount, verbose_name=_("account"), on_delete=models.CASCADE, related_name="orders"
    )
    round = models.ForeignKey(
        Round,
        verbose_name=_("round"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
    )
    code = models.CharField(_("code"), max_length=12, db_index=True)
    side = models.CharField(_("side"), max_length=4, choices=Side.choices)
    volume = models.BigIntegerField(_("volume"))
    price_type = models.IntegerField(_("price type"), default=11)  # xtconstant.FIX_PRICE
    limit_price = models.DecimalField(_("limit price"), max_digits=14, decimal_places=4)
    price_source = models.CharField(
        _("price source"), max_length=16, blank=True, help_text=_("Where the reference price came from.")
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    strategies = models.JSONField(_("strategies"), default=list)  # names of strategies wanting this code
    status = models.IntegerField(_("status"), choices=OrderStatus.choices, default=OrderStatus.CREATED)
    filled_volume = models.BigIntegerField(_("filled volume"), default=0)
    avg_fill_price = models.DecimalField(
        _("average fill price"), max_digits=14, decimal_places=4, null=True, blank=True
    )
    broker_order_id = models.BigIntegerField(_("broker order id"), null=True, blank=True)
    message = models.TextField(_("message"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False, db_index=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    cancel_requested_at = models.DateTimeField(_("cancel requested at"), null=True, blank=True)
    # Set in admin; the worker (the only one talking to the broker) sends the cancel.
    user_cancel_requested_at = models.DateTimeField(_("cancel asked by a user at"), null=True, blank=True)
    # The fence (DESIGN §5.3): who claimed the order for sending, under which lease epoch.
    claimed_by = models.CharField(_("claimed by"), max_length=200, blank=True)
    claim_epoch = models.BigIntegerField(_("claim lease epoch"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    # Remote mode: the trading PC's time of the last change it reported; an older report never wins.
    reported_at = models.DateTimeField(_("last change reported at"), null=True, blank=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at", "-id"]
        # The order history's pages walk these newest first (scanned backwards) and seek cursors on them
        # (execution.pagination); the id breaks ties between orders of one round. Unfiltered lists use
        # created_at's own index: SQLite (rowid) and InnoDB (primary key) end every index with the id.
        indexes = [
            models.Index(fields=["account", "status"]),
            models.Index(fields=["account", "created_at", "id"], name="order_account_created_id"),
            # the orders page's code filter: its bounded count is a range scan of this index alone
            models.Index(fields=["account", "code"], name="order_account_code"),
        ]

    def __str__(self) -> str:
        return f"{self.get_side_display()} {self.code} {self.volume} @ {self.limit_price}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class OrderEvent(models.Model):
    """Status history of an order."""

    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(_("at"), default=timezone.now, editable=False)
    status = models.IntegerField(_("status"), choices=OrderStatus.choices)
    filled_volume = models.BigIntegerField(_("filled volume"), default=0)
    message = models.TextField(_("message"), blank=True)

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.order_id} {self.status}"


class Fill(models.Model):
    account = models.ForeignKey(
        BrokerAccount, verbose_name=_("account"), on_delete=models.CASCADE, related_name="fills"
    )
    order = models.ForeignKey(
        Order, verbose_name=_("order"), null=True, blank=True, on_delete=models.SET_NULL, related_name="fills"
    )
    trade_id = models.CharField(_("broker trade id"), max_length=64)
    code = models.CharField(_("code"), max_length=12)
    side = models.CharField(_("side"), max_length=4, choices=Order.Side.choices)
    volume = models.BigIntegerField(_("volume"))
    price = models.DecimalField(_("price"), max_digits=14, decimal_places=4)
    amount = models.DecimalField(_("amount"), max_digits=18, decimal_places=2)
    fee = models.DecimalField(_("fee"), max_digits=12, decimal_places=2, default=0)
    traded_at = models.DateTimeField(_("traded at"))

    class Meta:
        verbose_name = _("fill")
        verbose_name_plural = _("fills")
        ordering = ["-traded_at", "-id"]
        # The day's turnover (every worker cycle), the account page's slippage, the fills admin.
        indexes = [
            models.Index(fields=["account", "traded_at"], name="fill_account_traded"),
            models.Index(fields=["traded_at", "id"], name="fill_traded_id"),
        ]
        constraints = [models.UniqueConstraint(fields=["account", "trade_id"], name="fill_unique_trade")]

    def __str__(self) -> str:
        return f"{self.code} {self.volume} @ {self.price}"


class CodeHold(models.Model):
    """A code the worker stops trading for one market day, with the reason (e.g. orders never fill)."""

    account = models.ForeignKey(
        BrokerAccount, verbose_name=_("account"), on_delete=models.CASCADE, related_name="code_holds"
    )
    code = models.CharField(_("code"), max_length=12)
    market_date = models.DateField(_("market date"))
    reason = models.TextField(_("reason"))
    # {"text": code, "params": {...}} of the reason (planner.texts.HOLD_TEXTS); {} on rows from before.
    reason_params = models.JSONField(_("reason parameters"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)

    class Meta:
        verbose_name = _("held code")
        verbose_name_plural = _("held codes")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "code", "market_date"], name="code_hold_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.code} {self.market_date}"

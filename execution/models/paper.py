"""The paper broker's own books: it is a simulated brokerage, separate from what the worker records.

Every mutation happens inside `transaction.atomic()` with the account's
`PaperBook` row locked (`select_for_update`), so two workers never
double-spend the same cash or shares.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .accounts import BrokerAccount


class PaperBook(models.Model):
    account = models.OneToOneField(BrokerAccount, on_delete=models.CASCADE, related_name="paper_book")
    # Available cash: frozen cash (open buys) is already taken out of it.
    cash = models.DecimalField(_("cash"), max_digits=18, decimal_places=2)
    frozen_cash = models.DecimalField(_("frozen cash"), max_digits=18, decimal_places=2, default=0)
    next_order_id = models.BigIntegerField(default=1)
    next_trade_id = models.BigIntegerField(default=1)

    class Meta:
        verbose_name = _("paper book")
        verbose_name_plural = _("paper books")

    def __str__(self) -> str:
        return f"{self.account.name} {self.cash}"


class PaperPosition(models.Model):
    account = models.ForeignKey(BrokerAccount, on_delete=models.CASCADE, related_name="paper_positions")
    code = models.CharField(_("code"), max_length=12)
    volume = models.BigIntegerField(_("volume"), default=0)
    # Cost basis per share including buy fees, as brokers show 成本价.
    avg_price = models.DecimalField(_("average price"), max_digits=14, decimal_places=4, default=0)
    # T+1: shares bought on `bought_on` cannot be sold that day (bonds are T+0 and not tracked).
    bought_today = models.BigIntegerField(_("bought on that day"), default=0)
    bought_on = models.DateField(_("last bought on"), null=True, blank=True)
    frozen_volume = models.BigIntegerField(_("frozen volume"), default=0)  # held by open sell orders

    class Meta:
        verbose_name = _("paper position")
        verbose_name_plural = _("paper positions")
        constraints = [models.UniqueConstraint(fields=["account", "code"], name="paper_position_unique")]

    def __str__(self) -> str:
        return f"{self.code} {self.volume}"


class PaperOrder(models.Model):
    account = models.ForeignKey(BrokerAccount, on_delete=models.CASCADE, related_name="paper_orders")
    broker_order_id = models.BigIntegerField(_("broker order id"))
    remark = models.CharField(_("remark (order key)"), max_length=32, db_index=True)
    code = models.CharField(_("code"), max_length=12)
    side = models.CharField(_("side"), max_length=4)
    volume = models.BigIntegerField(_("volume"))
    price = models.DecimalField(_("limit price"), max_digits=14, decimal_places=4)
    status = models.IntegerField(_("status"))  # xtquant order status (OrderStatus)
    traded_volume = models.BigIntegerField(_("traded volume"), default=0)
    traded_price = models.DecimalField(_("average traded price"), max_digits=14, decimal_places=4, default=0)
    # Cash held back for an open buy (amount at the limit price plus commission).
    frozen_cash = models.DecimalField(_("frozen cash"), max_digits=18, decimal_places=2, default=0)
    message = models.TextField(_("message"), blank=True)
    # Where the fill price came from; "target_cost" means no real quote was available.
    price_source = models.CharField(_("price source"), max_length=16, blank=True)
    created_at = models.DateTimeField(_("created at"))
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        verbose_name = _("paper order")
        verbose_name_plural = _("paper orders")
        constraints = [
            models.UniqueConstraint(fields=["account", "broker_order_id"], name="paper_order_unique")
        ]
        indexes = [
            models.Index(fields=["account", "status"], name="paper_order_open"),
            models.Index(fields=["account", "created_at"], name="paper_order_day"),
        ]

    def __str__(self) -> str:
        return f"{self.broker_order_id} {self.side} {self.code}"


class PaperTrade(models.Model):
    account = models.ForeignKey(BrokerAccount, on_delete=models.CASCADE, related_name="paper_trades")
    trade_id = models.CharField(_("trade id"), max_length=32)
    order = models.ForeignKey(PaperOrder, on_delete=models.CASCADE, related_name="trades")
    code = models.CharField(_("code"), max_length=12)
    side = models.CharField(_("side"), max_length=4)
    volume = models.BigIntegerField(_("volume"))
    price = models.DecimalField(_("price"), max_digits=14, decimal_places=4)
    amount = models.DecimalField(_("amount"), max_digits=18, decimal_places=2)
    commission = models.DecimalField(_("commission"), max_digits=12, decimal_places=2, default=0)
    stamp_duty = models.DecimalField(_("stamp duty"), max_digits=12, decimal_places=2, default=0)
    transfer_fee = models.DecimalField(_("transfer fee"), max_digits=12, decimal_places=2, default=0)
    fee = models.DecimalField(_("total fee"), max_digits=12, decimal_places=2, default=0)
    traded_at = models.DateTimeField(_("traded at"))

    class Meta:
        verbose_name = _("paper trade")
        verbose_name_plural = _("paper trades")
        constraints = [models.UniqueConstraint(fields=["account", "trade_id"], name="paper_trade_unique")]
        indexes = [models.Index(fields=["account", "traded_at"], name="paper_trade_day")]

    def __str__(self) -> str:
        return f"{self.trade_id} {self.code} {self.volume}"

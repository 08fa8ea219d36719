"""Broker accounts, what they follow, and what they must leave alone."""

from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from positions.codes import CodeError, normalize


class BrokerAccount(models.Model):
    class Mode(models.TextChoices):
        PAPER = "paper", _("paper (simulated)")
        LIVE = "live", _("live (real money)")

    name = models.CharField(
        _("name"),
        max_length=64,
        unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9_.-]+$", _("Use letters, digits, '.', '_' and '-'."))],
        help_text=_("Used in URLs and on the command line: qmt_worker --account NAME."),
    )
    account_id = models.CharField(_("broker account id"), max_length=64)
    mode = models.CharField(_("mode"), max_length=8, choices=Mode.choices, default=Mode.PAPER)
    enabled = models.BooleanField(_("worker enabled"), default=True)
    userdata_mini_path = models.CharField(
        _("MiniQMT userdata_mini path"),
        max_length=500,
        blank=True,
        help_text=_(r"e.g. C:\国金QMT\userdata_mini"),
    )
    trading_enabled = models.BooleanField(
        _("trading switch"),
        default=False,
        help_text=_("Kill switch: when off the worker reports state but sends no order."),
    )
    # Risk caps (DESIGN §5.8); empty = no cap.
    max_order_value = models.DecimalField(
        _("max order value"), max_digits=16, decimal_places=2, null=True, blank=True
    )
    max_daily_turnover = models.DecimalField(
        _("max daily turnover"), max_digits=16, decimal_places=2, null=True, blank=True
    )
    slippage = models.DecimalField(
        _("limit price slippage"),
        max_digits=6,
        decimal_places=4,
        default=Decimal("0.002"),
        validators=[MinValueValidator(Decimal(0))],
        help_text=_(
            "Buy at last × (1 + slippage), sell at last × (1 − slippage), inside limits and price cage."
        ),
    )
    order_timeout = models.DurationField(
        _("order timeout"),
        default=timedelta(seconds=60),
        help_text=_("Unfilled orders are cancelled after this."),
    )
    stale_after = models.DurationField(
        _("targets stale after"),
        default=timedelta(days=3),
        help_text=_("A target not uploaded or confirmed for this long blocks trading (never sells)."),
    )
    approval_threshold = models.DecimalField(
        _("approval threshold"),
        max_digits=5,
        decimal_places=4,
        null=True,
        blank=True,
        default=Decimal("0.3"),
        help_text=_(
            "A round trading more than this share of total assets waits for approval. Empty = never."
        ),
    )
    hold_rule_exits = models.BooleanField(
        _("rule exits wait for approval too"),
        default=False,
        help_text=_(
            "Off (recommended): take-profit/stop-loss sells and sells of bonds that left a rotation's "
            "list go out at once, whatever their size. On: they wait for approval like other large rounds."
        ),
    )
    sell_unmanaged = models.BooleanField(
        _("may sell unmanaged holdings"),
        default=False,
        help_text=_("Off: holdings qmtjq never targeted or traded are left alone."),
    )
    ignore_codes = models.TextField(
        _("ignored codes"),
        blank=True,
        help_text=_("Codes never traded for this account, one per line or comma."),
    )
    enforce_trading_hours = models.BooleanField(
        _("enforce trading hours and calendar"),
        default=True,
        help_text=_("Paper accounts may switch this off for demos; live accounts always enforce it."),
    )
    allow_closing_auction = models.BooleanField(
        _("allow orders in the closing auction"),
        default=False,
        help_text=_("From 14:57 orders cannot be cancelled; off = no new orders then."),
    )
    paper_starting_cash = models.DecimalField(
        _("paper starting cash"), max_digits=16, decimal_places=2, default=Decimal("1000000")
    )
    commission_rate = models.DecimalField(
        _("commission rate"), max_digits=8, decimal_places=6, default=Decimal("0.00025")
    )
    min_commission = models.DecimalField(
        _("minimum commission"), max_digits=8, decimal_places=2, default=Decimal("5")
    )
    stamp_duty_rate = models.DecimalField(
        _("stamp duty rate (stock sells)"), max_digits=8, decimal_places=6, default=Decimal("0.0005")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("broker account")
        verbose_name_plural = _("broker accounts")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_mode_display()})"

    def clean(self):
        if self.mode == self.Mode.LIVE and not self.enforce_trading_hours:
            raise ValidationError({"enforce_trading_hours": _("Live accounts always enforce trading hours.")})
        bad = []
        for code in self.ignore_code_list(strict=False):
            try:
                normalize(code)
            except CodeError:
                bad.append(code)
        if bad:
            raise ValidationError({"ignore_codes": _("Unknown codes: %(codes)s") % {"codes": ", ".join(bad)}})

    def ignore_code_list(self, *, strict: bool = True) -> list[str]:
        raw = [part.strip() for part in self.ignore_codes.replace(",", "\n").splitlines() if part.strip()]
        if not strict:
            return raw
        codes = []
        for code in raw:
            try:
                codes.append(normalize(code))
            except CodeError:
                continue  # rejected by clean(); never silently trade because of a typo
        return codes

    @property
    def is_paper(self) -> bool:
        return self.mode == self.Mode.PAPER

    @property
    def hours_enforced(self) -> bool:
        return self.enforce_trading_hours or self.mode == self.Mode.LIVE


class Subscription(models.Model):
    class Scaling(models.TextChoices):
        RATIO = "ratio", _("ratio of the strategy's volumes")
        CAPITAL = "capital", _("capital amount × the strategy's weights")

    account = models.ForeignKey(
        BrokerAccount, verbose_name=_("account"), on_delete=models.CASCADE, related_name="subscriptions"
    )
    strategy = models.ForeignKey(
        "positions.Strategy",
        verbose_name=_("strategy"),
        on_delete=models.PROTECT,
        related_name="subscriptions",
    )
    scaling = models.CharField(_("scaling"), max_length=8, choices=Scaling.choices, default=Scaling.RATIO)
    ratio = models.DecimalField(
        _("ratio"),
        max_digits=12,
        decimal_places=6,
        default=Decimal(1),
        validators=[MinValueValidator(Decimal(0))],
    )
    capital = models.DecimalField(
        _("capital"),
        max_digits=16,
        decimal_places=2,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
    )
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        constraints = [models.UniqueConstraint(fields=["account", "strategy"], name="subscription_unique")]

    def __str__(self) -> str:
        if self.scaling == self.Scaling.CAPITAL:
            return f"{self.strategy} × capital {self.capital}"
        return f"{self.strategy} × {self.ratio}"

    def clean(self):
        if self.scaling == self.Scaling.CAPITAL and not self.capital:
            raise ValidationError({"capital": _("Capital scaling needs a capital amount.")})


class ReservedHolding(models.Model):
    """Manual positions the system must never touch; subtracted from actual before diffing."""

    account = models.ForeignKey(
        BrokerAccount, verbose_name=_("account"), on_delete=models.CASCADE, related_name="reserved"
    )
    code = models.CharField(_("code"), max_length=12)
    volume = models.PositiveBigIntegerField(_("volume"))
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("reserved holding")
        verbose_name_plural = _("reserved holdings")
        constraints = [models.UniqueConstraint(fields=["account", "code"], name="reserved_unique_code")]

    def __str__(self) -> str:
        return f"{self.code} {self.volume}"

    def clean(self):
        try:
            self.code = normalize(self.code)
        except CodeError as exc:
            raise ValidationError({"code": str(exc)})


class ManagedCode(models.Model):
    """Codes qmtjq has targeted or traded for an account: only these may be sold by default."""

    account = models.ForeignKey(BrokerAccount, on_delete=models.CASCADE, related_name="managed_codes")
    code = models.CharField(_("code"), max_length=12)
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("managed code")
        verbose_name_plural = _("managed codes")
        constraints = [models.UniqueConstraint(fields=["account", "code"], name="managed_code_unique")]

    def __str__(self) -> str:
        return self.code

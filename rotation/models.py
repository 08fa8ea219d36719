"""Convertible-bond rotation: Factor Cat credentials, rotation strategies, daily selections, runs, TP/SL events."""

from datetime import time, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from positions.codes import CodeError, normalize


class FactorCatAccount(models.Model):
    """Login to Factor Cat (因子猫). The password and tokens are stored encrypted (FIELD_ENCRYPTION_KEY)."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    base_url = models.URLField(_("API base URL"), default="https://api.yinzimao.com:8003")
    username = models.CharField(_("username"), max_length=128)
    password_encrypted = models.TextField(blank=True, editable=False)
    remember_password = models.BooleanField(
        _("remember password"), default=True, help_text=_("Log in again by itself before the token expires.")
    )
    verify_tls = models.BooleanField(
        _("verify TLS certificates"),
        default=True,
        help_text=_("Turn off only if the server's certificate is known to be broken; it is logged."),
    )
    token_encrypted = models.TextField(blank=True, editable=False)
    token_expires_at = models.DateTimeField(_("token expires at"), null=True, blank=True)
    last_login_at = models.DateTimeField(_("last login at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("Factor Cat account")
        verbose_name_plural = _("Factor Cat accounts")

    def __str__(self) -> str:
        return f"{self.name} ({self.username})"


def _codes_validator(value: str) -> None:
    bad = []
    for code in codes_split(value):
        try:
            normalize(code)
        except CodeError:
            bad.append(code)
    if bad:
        raise ValidationError(_("Unknown codes: %(codes)s") % {"codes": ", ".join(bad)})


def codes_split(value: str) -> list[str]:
    return [part.strip() for part in value.replace(",", "\n").splitlines() if part.strip()]


class RotationStrategy(models.Model):
    class Source(models.TextChoices):
        FACTORCAT = "factorcat", _("Factor Cat backtest record")
        UPLOAD = "upload", _("uploaded list (CSV or API)")

    class Schedule(models.TextChoices):
        DAILY = "daily", _("every trading day")
        WEEKLY = "weekly", _("weekly")
        MONTHLY = "monthly", _("monthly")

    class Sizing(models.TextChoices):
        FIXED = "fixed", _("fixed amount per bond")
        EQUAL = "equal", _("available cash split equally")

    name = models.CharField(
        _("name"),
        max_length=64,
        unique=True,
        validators=[RegexValidator(r"^[\w.-]+$", _("Use letters, digits, '.', '_' and '-'."))],
    )
    account = models.ForeignKey(
        "execution.BrokerAccount",
        verbose_name=_("account"),
        on_delete=models.PROTECT,
        related_name="rotations",
    )
    strategy = models.OneToOneField(
        "positions.Strategy",
        verbose_name=_("target strategy"),
        on_delete=models.PROTECT,
        related_name="rotation",
        help_text=_("The strategy whose targets this rotation writes; the account subscribes to it."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    source = models.CharField(
        _("selection source"), max_length=12, choices=Source.choices, default=Source.UPLOAD
    )
    factorcat_account = models.ForeignKey(
        FactorCatAccount,
        verbose_name=_("Factor Cat account"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
    )
    factorcat_strategy_id = models.PositiveIntegerField(_("Factor Cat strategy id"), null=True, blank=True)
    factorcat_strategy_name = models.CharField(_("Factor Cat strategy"), max_length=200, blank=True)
    factorcat_history_id = models.PositiveIntegerField(
        _("Factor Cat backtest record id"), null=True, blank=True
    )
    factorcat_parameters = models.JSONField(_("backtest parameters"), default=dict, blank=True)

    schedule = models.CharField(_("schedule"), max_length=8, choices=Schedule.choices, default=Schedule.DAILY)
    weekday = models.PositiveSmallIntegerField(
        _("weekday"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(6)],
        help_text=_("0 = Monday … 4 = Friday (weekly schedule)."),
    )
    month_day = models.PositiveSmallIntegerField(
        _("day of month"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(31)],
        help_text=_("Past the month's end means its last trading day (monthly schedule)."),
    )
    run_time = models.TimeField(_("run time"), default=time(14, 50))
    max_lateness = models.DurationField(
        _("allowed lateness"),
        default=timedelta(minutes=5),
        help_text=_("A run that could not start within this time after its slot is skipped and recorded."),
    )

    sizing = models.CharField(_("sizing"), max_length=8, choices=Sizing.choices, default=Sizing.EQUAL)
    amount_per_bond = models.DecimalField(
        _("amount per bond"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    budget_amount = models.DecimalField(
        _("capital budget"),
        max_digits=16,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_(
            "The most this rotation holds, in CNY (its bonds at market value plus its buys). "
            "Needed when the account follows other strategies too."
        ),
    )
    budget_share = models.DecimalField(
        _("capital budget, share of total assets"),
        max_digits=5,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal(1))],
        help_text=_("Instead of an amount: e.g. 0.3 = 30% of the account's total assets at the run."),
    )
    top_n = models.PositiveSmallIntegerField(_("hold at most"), default=10, validators=[MinValueValidator(1)])
    excluded_codes = models.TextField(
        _("excluded codes"),
        blank=True,
        validators=[_codes_validator],
        help_text=_("e.g. bonds announcing forced redemption (强赎)."),
    )
    take_profit_ratio = models.DecimalField(
        _("take-profit ratio"),
        max_digits=8,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text=_("Profit vs cost basis, e.g. 0.15 = +15%. Empty: from the backtest record. 0 = off."),
    )
    stop_loss_ratio = models.DecimalField(
        _("stop-loss ratio"),
        max_digits=8,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text=_("Loss vs cost basis, e.g. 0.08 = −8%. Empty: from the backtest record. 0 = off."),
    )
    refill_after_tp_sl = models.BooleanField(
        _("refill after take-profit/stop-loss"),
        default=False,
        help_text=_("Replace a sold bond with the next-ranked selected bond not held."),
    )
    cooldown_days = models.PositiveSmallIntegerField(
        _("cooldown after take-profit/stop-loss"),
        default=1,
        validators=[MaxValueValidator(250)],
        help_text=_(
            "Trading days a bond sold by take-profit/stop-loss is not bought back, by a refill or a run: "
            "1 = not the same trading day, 0 = off."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("rotation strategy")
        verbose_name_plural = _("rotation strategies")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(budget_amount__isnull=True) | models.Q(budget_share__isnull=True),
                name="rotation_budget_amount_or_share",
            ),
            models.CheckConstraint(
                condition=models.Q(budget_share__isnull=True)
                | models.Q(budget_share__gt=0, budget_share__lte=1),
                name="rotation_budget_share_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        errors = {}
        if self.schedule == self.Schedule.WEEKLY and self.weekday is None:
            errors["weekday"] = _("A weekly schedule needs a weekday.")
        if self.schedule == self.Schedule.MONTHLY and self.month_day is None:
            errors["month_day"] = _("A monthly schedule needs a day of the month.")
        if self.sizing == self.Sizing.FIXED and not self.amount_per_bond:
            errors["amount_per_bond"] = _("Fixed sizing needs an amount per bond.")
        if self.source == self.Source.FACTORCAT and not (
            self.factorcat_account_id and self.factorcat_history_id
        ):
            errors["factorcat_history_id"] = _("A Factor Cat source needs an account and a backtest record.")
        if self.budget_amount is not None and self.budget_share is not None:
            errors["budget_share"] = _(
                "Give the capital budget either as an amount or as a share of total assets, not both."
            )
        if errors:
            raise ValidationError(errors)

    def excluded_code_set(self) -> frozenset[str]:
        result = set()
        for code in codes_split(self.excluded_codes):
            try:
                result.add(normalize(code))
            except CodeError:
                continue  # rejected by the validator on save
        return frozenset(result)


class Selection(models.Model):
    """A day's ranked bond list for a rotation (from Factor Cat, CSV or the API)."""

    class Source(models.TextChoices):
        FACTORCAT = "factorcat", _("Factor Cat")
        CSV = "csv", _("CSV upload")
        API = "api", _("API")

    rotation = models.ForeignKey(
        RotationStrategy, verbose_name=_("rotation"), on_delete=models.CASCADE, related_name="selections"
    )
    trade_date = models.DateField(_("trade date"))
    source = models.CharField(_("source"), max_length=12, choices=Source.choices)
    received_from = models.CharField(_("received from"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("selection")
        verbose_name_plural = _("selections")
        ordering = ["-trade_date", "-created_at", "-id"]
        indexes = [models.Index(fields=["rotation", "-trade_date", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.rotation} {self.trade_date}"


class SelectionItem(models.Model):
    selection = models.ForeignKey(Selection, on_delete=models.CASCADE, related_name="items")
    rank = models.PositiveIntegerField(_("rank"))
    code = models.CharField(_("code"), max_length=12)
    name = models.CharField(_("name"), max_length=64, blank=True)
    price = models.DecimalField(_("price"), max_digits=12, decimal_places=3, null=True, blank=True)

    class Meta:
        verbose_name = _("selected bond")
        verbose_name_plural = _("selected bonds")
        ordering = ["rank"]
        constraints = [
            models.UniqueConstraint(fields=["selection", "code"], name="selection_item_unique_code")
        ]

    def __str__(self) -> str:
        return f"{self.rank}. {self.code}"


class RotationRun(models.Model):
    """One run of a rotation; unique per scheduled slot so a redelivered job never runs twice."""

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        SKIPPED = "skipped", _("skipped")
        FAILED = "failed", _("failed")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("schedule")
        MANUAL = "manual", _("manual")

    rotation = models.ForeignKey(
        RotationStrategy, verbose_name=_("rotation"), on_delete=models.CASCADE, related_name="runs"
    )
    slot = models.DateTimeField(_("slot"), help_text=_("The scheduled time this run belongs to."))
    trigger = models.CharField(_("trigger"), max_length=10, choices=Trigger.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    selection = models.ForeignKey(Selection, null=True, blank=True, on_delete=models.SET_NULL)
    decision = models.JSONField(_("decision"), default=list)  # [{code, name, action, volume, reason}]
    target_snapshot_id = models.BigIntegerField(_("target written"), null=True, blank=True)
    message = models.TextField(_("message"), blank=True)
    # {"text": code, "params": {...}} of the message (rotation.texts.ROTATION_RUN_TEXTS); {} for free texts.
    message_params = models.JSONField(_("message parameters"), default=dict, blank=True)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("rotation run")
        verbose_name_plural = _("rotation runs")
        ordering = ["-slot", "-id"]
        constraints = [models.UniqueConstraint(fields=["rotation", "slot"], name="rotation_run_unique_slot")]

    def __str__(self) -> str:
        return f"{self.rotation} {self.slot:%Y-%m-%d %H:%M} {self.status}"


class TpSlEvent(models.Model):
    class Kind(models.TextChoices):
        TAKE_PROFIT = "take_profit", _("take-profit")
        STOP_LOSS = "stop_loss", _("stop-loss")

    rotation = models.ForeignKey(
        RotationStrategy, verbose_name=_("rotation"), on_delete=models.CASCADE, related_name="tp_sl_events"
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    code = models.CharField(_("code"), max_length=12)
    price = models.DecimalField(_("price"), max_digits=12, decimal_places=3)
    cost = models.DecimalField(_("cost basis"), max_digits=12, decimal_places=4)
    ratio = models.DecimalField(_("ratio"), max_digits=8, decimal_places=4)
    refill_code = models.CharField(_("refilled with"), max_length=12, blank=True)
    target_snapshot_id = models.BigIntegerField(_("target written"), null=True, blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("take-profit/stop-loss event")
        verbose_name_plural = _("take-profit/stop-loss events")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.rotation} {self.kind} {self.code}"

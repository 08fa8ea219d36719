"""Forms of the rotation admin: Factor Cat credentials, CSV selections, a rotation from a backtest record."""

from django import forms
from django.db import models
from django.utils import timezone
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext_lazy as _

from qmtjq import crypto

from .models import FactorCatAccount, RotationStrategy
from .services import SelectedBond, selection_parse_csv, selection_validate

MAX_CSV_BYTES = 1024 * 1024  # same cap as an API body (1 MiB)
PASSWORD_MAX_CHARS = 256

NO_TOP_N = _(
    "The backtest record gives no number of bonds to hold (bond_selection_params.top_n or holdNum, "
    "a positive whole number): enter how many bonds the rotation holds."
)

WEEKDAY_CHOICES = [("", "---------"), *((day, name) for day, name in WEEKDAYS.items())]
WEEKDAY_WIDGET = forms.Select(choices=WEEKDAY_CHOICES)


def _https_by_default(db_field, **kwargs):
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")  # Factor Cat is HTTPS; Django 6 makes this the default
    return db_field.formfield(**kwargs)


class FactorCatAccountForm(forms.ModelForm):
    """The password is write-only: it is never rendered back, and an empty field keeps the stored one."""

    password = forms.CharField(
        label=_("password"),
        required=False,
        strip=False,
        max_length=PASSWORD_MAX_CHARS,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_(
            "Stored encrypted and never shown again. Leave empty to keep the stored password. "
            "Kept only with “remember password”; otherwise use “Log in now” to log in with it once."
        ),
    )
    clear_password = forms.BooleanField(label=_("forget the stored password"), required=False)

    class Meta:
        model = FactorCatAccount
        fields = ["name", "base_url", "username", "remember_password", "verify_tls"]
        formfield_callback = _https_by_default

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password") or ""
        remember = cleaned.get("remember_password", self.instance.remember_password)
        if password and cleaned.get("clear_password"):
            self.add_error(
                "clear_password", _("Either enter a new password or forget the stored one, not both.")
            )
        elif password and not remember:
            self.add_error(
                "password",
                _(
                    "With “remember password” off the password is not stored: "
                    "use “Log in now” to log in with it once."
                ),
            )
        elif remember and not password and not self.instance.password_encrypted:
            if self.instance.pk is None:
                self.add_error(
                    "password",
                    _("Enter the password, or turn off “remember password” and log in with “Log in now”."),
                )
        if password and "password" not in self.errors:
            try:
                crypto.encrypt(password)  # fails now, on the form, when FIELD_ENCRYPTION_KEY is unusable
            except crypto.CryptoError as exc:
                self.add_error(
                    "password",
                    _("The password cannot be stored encrypted: %(why)s") % {"why": exc},
                )
        return cleaned


class FactorCatLoginForm(forms.Form):
    password = forms.CharField(
        label=_("password"),
        required=False,
        strip=False,
        max_length=PASSWORD_MAX_CHARS,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "current-password"}),
    )


class SelectionUploadForm(forms.Form):
    """A CSV with a `code` column (optional `name`, `rank`); the parsed, validated bonds end in `bonds`."""

    trade_date = forms.DateField(
        label=_("trade date"),
        initial=timezone.localdate,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "A header row with a “code” column, optionally “name”, “rank” and “trade_date” (which must be "
            "the trade date above); UTF-8 or GBK; at most 1 MiB."
        ),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_CSV_BYTES:
            raise forms.ValidationError(_("The file is larger than 1 MiB."))
        data = upload.read(MAX_CSV_BYTES + 1)
        if len(data) > MAX_CSV_BYTES:
            raise forms.ValidationError(_("The file is larger than 1 MiB."))
        try:
            bonds: list[SelectedBond] = selection_validate(
                selection_parse_csv(data), trade_date=self.cleaned_data.get("trade_date")
            )
        except ValueError as exc:
            raise forms.ValidationError(_("The CSV was not accepted: %(why)s") % {"why": exc})
        if not bonds:
            raise forms.ValidationError(_("The file lists no bonds."))
        self.cleaned_data["bonds"] = bonds
        return upload


class RotationStrategyForm(forms.ModelForm):
    class Meta:
        model = RotationStrategy
        fields = [
            "name",
            "account",
            "enabled",
            "source",
            "factorcat_account",
            "factorcat_strategy_id",
            "factorcat_strategy_name",
            "factorcat_history_id",
            "schedule",
            "weekday",
            "month_day",
            "run_time",
            "max_lateness",
            "sizing",
            "amount_per_bond",
            "top_n",
            "budget_amount",
            "budget_share",
            "excluded_codes",
            "take_profit_ratio",
            "stop_loss_ratio",
            "refill_after_tp_sl",
            "cooldown_days",
        ]
        widgets = {"weekday": WEEKDAY_WIDGET}


class RotationFromRecordForm(forms.ModelForm):
    """A new rotation following one Factor Cat backtest record; the record's ids come from the URL."""

    class Meta:
        model = RotationStrategy
        fields = [
            "name",
            "account",
            "factorcat_strategy_name",
            "enabled",
            "schedule",
            "weekday",
            "month_day",
            "run_time",
            "sizing",
            "amount_per_bond",
            "top_n",
            "budget_amount",
            "budget_share",
        ]
        widgets = {"weekday": WEEKDAY_WIDGET}

    def __init__(self, *args, record_top_n: int | None = None, **kwargs):
        """`record_top_n`: what the record says it holds; without it the box starts empty, never at a default."""
        super().__init__(*args, **kwargs)
        self.top_n_missing = record_top_n is None
        self.initial["top_n"] = min(record_top_n, 32767) if record_top_n else None
        if self.top_n_missing:
            self.fields["top_n"].error_messages["required"] = NO_TOP_N

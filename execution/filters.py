"""Query-parameter filters for order and round lists: shared by the pages, the CSV export and the JSON API.

Every value arrives as text in a QueryDict. Invalid values never raise: each
bad field gets one clear message, and only the valid filters are applied, so a
caller shows the errors (page) or answers 400 (API, CSV) instead of a 500.
"""

import json
import re
from datetime import datetime, time, timedelta

from django import forms
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from positions.codes import CodeError, normalize

from .calendar import SHANGHAI
from .models import FINAL_STATUSES, BrokerAccount, Order, OrderStatus, Round

OPEN, FINAL = "open", "final"
_PARTIAL_CODE = re.compile(r"^\d{1,6}$")
# "+08:00" in an unencoded query string arrives as " 08:00".
_PLUS_LOST = re.compile(r" (\d{2}:?\d{2})$")


class _IsoDateTimeField(forms.DateTimeField):
    def to_python(self, value):
        if isinstance(value, str):
            value = _PLUS_LOST.sub(r"+\1", value.strip())
        return super().to_python(value)


def _account_field() -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=BrokerAccount.objects.all(),
        to_field_name="name",
        required=False,
        label=_("Account"),
        empty_label=_("All accounts"),
        error_messages={"invalid_choice": _("No account is named “%(value)s”.")},
    )


class OrderFilterForm(forms.Form):
    account = _account_field()
    strategy = forms.CharField(
        label=_("Strategy"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"list": "strategy-names"}),
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[
            ("", _("Any status")),
            (OPEN, _("open (not final)")),
            (FINAL, _("final")),
            *((str(value), f"{label} ({value})") for value, label in OrderStatus.choices),
        ],
        error_messages={
            "invalid_choice": _(
                "Unknown status “%(value)s”: use an xtquant status code such as 56, or open / final."
            )
        },
    )
    side = forms.ChoiceField(
        label=_("Side"),
        required=False,
        choices=[("", _("Buy and sell")), *Order.Side.choices],
        error_messages={"invalid_choice": _("Side must be buy or sell, not “%(value)s”.")},
    )
    code = forms.CharField(
        label=_("Code"),
        required=False,
        max_length=16,
        strip=True,
        help_text=_("A full code (600000.SH, 600000.XSHG) or the first digits."),
    )
    date_from = forms.DateField(
        label=_("From"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("Enter a date as YYYY-MM-DD.")},
    )
    date_to = forms.DateField(
        label=_("To"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("Enter a date as YYYY-MM-DD.")},
    )
    since = _IsoDateTimeField(
        label=_("Since"),
        required=False,
        error_messages={"invalid": _("Enter an ISO 8601 date and time, e.g. 2026-03-02T09:30:00+08:00.")},
    )

    def clean_code(self) -> str:
        raw = self.cleaned_data["code"]
        if not raw or _PARTIAL_CODE.match(raw):
            return raw
        try:
            return normalize(raw)
        except CodeError:
            raise forms.ValidationError(
                _("“%(value)s” is not a securities code (e.g. 600000.SH, or its first digits)."),
                params={"value": raw},
            )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned


class RoundFilterForm(forms.Form):
    account = _account_field()
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Any status")), *Round.Status.choices],
        error_messages={"invalid_choice": _("Unknown round status “%(value)s”.")},
    )


def _day_start(day) -> datetime:
    # Trading dates are Shanghai dates whatever TIME_ZONE says; ranges, not __date lookups,
    # because MariaDB without time-zone tables cannot convert in SQL.
    return datetime.combine(day, time.min, tzinfo=SHANGHAI)


def _strategy_q(name: str) -> Q:
    # Order.strategies is a JSON list stored as text. Django writes it with json.dumps
    # (non-ASCII escaped as \uXXXX) and SQLite and MariaDB keep that text as is; MySQL
    # re-serializes JSON in UTF-8. Matching the quoted name finds whole names only.
    escaped = json.dumps(name)
    q = Q(strategies__icontains=escaped)
    plain = json.dumps(name, ensure_ascii=False)
    if plain != escaped:
        q |= Q(strategies__icontains=plain)
    return q


def form_errors(form: forms.Form) -> dict[str, str]:
    """One message per invalid field, e.g. {"date_from": "Enter a date as YYYY-MM-DD."}."""
    return {field: " ".join(str(message) for message in messages) for field, messages in form.errors.items()}


def order_filter_apply(queryset: QuerySet, form: OrderFilterForm) -> tuple[QuerySet, dict[str, str]]:
    """Apply the valid filters of a bound form; the errors name the fields that were not applied."""
    form.is_valid()
    values = form.cleaned_data
    if account := values.get("account"):
        queryset = queryset.filter(account=account)
    if strategy := values.get("strategy"):
        queryset = queryset.filter(_strategy_q(strategy))
    if status := values.get("status"):
        if status == OPEN:
            queryset = queryset.exclude(status__in=FINAL_STATUSES)
        elif status == FINAL:
            queryset = queryset.filter(status__in=FINAL_STATUSES)
        else:
            queryset = queryset.filter(status=int(status))
    if side := values.get("side"):
        queryset = queryset.filter(side=side)
    if code := values.get("code"):
        queryset = queryset.filter(code_range_q("code", code) if "." not in code else Q(code=code))
    if date_from := values.get("date_from"):
        queryset = queryset.filter(created_at__gte=_day_start(date_from))
    if date_to := values.get("date_to"):
        queryset = queryset.filter(created_at__lt=_day_start(date_to + timedelta(days=1)))
    if since := values.get("since"):
        queryset = queryset.filter(created_at__gte=since)
    return queryset, form_errors(form)


def code_range_q(field: str, prefix: str) -> Q:
    """`code startswith 600` as a range the code index can seek (LIKE is not indexed on SQLite)."""
    return Q(**{f"{field}__gte": prefix, f"{field}__lt": prefix[:-1] + chr(ord(prefix[-1]) + 1)})


def orders_filter(queryset: QuerySet, params) -> tuple[QuerySet, dict[str, str]]:
    """Filter orders by the query parameters account, strategy, status, side, code, date_from, date_to, since.

    Returns the queryset with every valid filter applied and {field: message} for the invalid ones.
    """
    return order_filter_apply(queryset, OrderFilterForm(params))


def round_filter_apply(queryset: QuerySet, form: RoundFilterForm) -> tuple[QuerySet, dict[str, str]]:
    form.is_valid()
    if account := form.cleaned_data.get("account"):
        queryset = queryset.filter(account=account)
    if status := form.cleaned_data.get("status"):
        queryset = queryset.filter(status=status)
    return queryset, form_errors(form)


def rounds_filter(queryset: QuerySet, params) -> tuple[QuerySet, dict[str, str]]:
    """Filter rounds by the query parameters account and status."""
    return round_filter_apply(queryset, RoundFilterForm(params))

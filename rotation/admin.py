"""Rotation admin.

- Factor Cat accounts: the password is write-only (stored encrypted, never shown
  back), "Log in now", and a browser of Factor Cat strategies and backtest
  records from which a rotation strategy is created.
- Rotation strategies: created through `rotation_create` (the account subscribes
  to the rotation's own target); "Run now" and "Dry run" behind confirmation
  pages; a CSV upload of the day's selection.
- Selections, runs and take-profit/stop-loss events are read-only records.
"""

import logging
from decimal import Decimal, InvalidOperation

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters

from execution.admin.base import (
    ConfirmedActionsMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    _buttons,
    _pretty_json,
)
from execution.models import BrokerAccount
from qmtjq import crypto

from .credentials import factorcat_client_for, factorcat_login, factorcat_password_set, with_relogin
from .factorcat import FactorCatError
from .forms import (
    FactorCatAccountForm,
    FactorCatLoginForm,
    RotationFromRecordForm,
    RotationStrategyForm,
    SelectionUploadForm,
)
from .models import FactorCatAccount, RotationRun, RotationStrategy, Selection, SelectionItem, TpSlEvent
from .services import RotationError, rotation_create, rotation_run_now, selection_store
from .views import admin_url, decision_rows, next_run, ratio_percent, ratios_effective, schedule_describe

logger = logging.getLogger(__name__)

BROWSE_PAGE_SIZE = 20
SEARCH_MAX_CHARS = 100


def _local(value) -> str:
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "—"


def _figure(value) -> str:
    """A backtest figure as Factor Cat sent it, rounded for reading (units are the server's)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return str(value)
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if not number.is_finite():
        return str(value)
    return f"{number.quantize(Decimal('0.0001')).normalize():f}"


def _page_number(request) -> int:
    try:
        return min(max(int(request.GET.get("page", 1)), 1), 10_000)
    except (TypeError, ValueError):
        return 1


def _positive_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _form_errors(form, error: ValidationError) -> None:
    """A service's ValidationError onto the form: on the field when the form has it, else on top."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _decision_table(rows: list[dict]):
    if not rows:
        return _("No decision rows.")
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((row["code"], row["name"], row["action_label"], row["volume"], row["reason"]) for row in rows),
    )
    return format_html(
        "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        _("code"),
        _("name"),
        _("action"),
        _("volume"),
        _("reason"),
        body,
    )


def _snapshot_link(snapshot_id):
    if not snapshot_id:
        return "—"
    return format_html(
        '<a href="{}">#{}</a>',
        reverse("admin:positions_targetsnapshot_change", args=[snapshot_id]),
        snapshot_id,
    )


# --- Factor Cat accounts ------------------------------------------------------------------------


@admin.register(FactorCatAccount)
class FactorCatAccountAdmin(ConfirmedActionsMixin, admin.ModelAdmin):
    form = FactorCatAccountForm
    list_display = [
        "name",
        "username",
        "base_url",
        "remember_password",
        "tls_label",
        "token_state",
        "last_login_at",
        "last_error_short",
    ]
    list_filter = ["remember_password", "verify_tls"]
    search_fields = ["name", "username", "base_url"]
    actions = ["log_in_now"]
    object_actions = ("log_in_now",)
    readonly_fields = [
        "tools",
        "password_state",
        "tls_warning",
        "token_state",
        "token_expires_at",
        "last_login_at",
        "last_error",
    ]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (None, {"fields": ["name", "base_url", "username"]}),
                (
                    _("Password"),
                    {
                        "fields": ["password", "remember_password"],
                        "description": _("The password is stored encrypted and never shown again."),
                    },
                ),
                (_("Connection"), {"fields": ["verify_tls", "tls_warning"]}),
            ]
        return [
            (None, {"fields": ["name", "base_url", "username", "tools"]}),
            (
                _("Password"),
                {
                    "fields": ["password_state", "password", "clear_password", "remember_password"],
                    "description": _(
                        "The password is stored encrypted and never shown again: type a new one to replace it."
                    ),
                },
            ),
            (_("Connection"), {"fields": ["verify_tls", "tls_warning"]}),
            (_("Login"), {"fields": ["token_state", "token_expires_at", "last_login_at", "last_error"]}),
        ]

    # Error reports (and their e-mails) must never carry the typed password.
    @method_decorator(sensitive_post_parameters("password"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    @method_decorator(sensitive_post_parameters("password"))
    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, extra_context)

    @method_decorator(sensitive_post_parameters("password"))
    def object_action_view(self, request, object_id, action):
        return super().object_action_view(request, object_id, action)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "base_url":
            kwargs["assume_scheme"] = "https"  # Factor Cat is HTTPS; Django 6 makes this the default
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change and {"base_url", "username"} & set(form.changed_data):
            # The stored token belongs to the old user or server.
            obj.token_encrypted, obj.token_expires_at = "", None
        if "verify_tls" in form.changed_data or (not change and not obj.verify_tls):
            logger.warning(
                "Factor Cat account %s: TLS certificate verification turned %s by %s",
                obj.name,
                "ON" if obj.verify_tls else "OFF",
                request.user,
            )
        if change:
            # Only what the form edits: a job may be storing a fresh token at this moment.
            model_fields = {field.name for field in self.opts.concrete_fields}
            fields = [name for name in form.cleaned_data if name in model_fields]
            obj.save(update_fields=[*fields, "token_encrypted", "token_expires_at"])
        else:
            obj.save()
        password = form.cleaned_data.get("password") or ""
        try:
            if password:
                factorcat_password_set(account=obj, password=password)
            elif obj.password_encrypted and (
                form.cleaned_data.get("clear_password") or not obj.remember_password
            ):
                factorcat_password_set(account=obj, password="")
                self.message_user(request, _("The stored password was forgotten."), messages.INFO)
        except crypto.CryptoError as exc:  # the form checked the key; it changed in between
            self.message_user(
                request, _("The password was not stored: %(why)s") % {"why": exc}, messages.ERROR
            )

    # -- columns --

    @admin.display(description=_("password"))
    def password_state(self, obj):
        if obj is not None and obj.password_encrypted:
            return _("stored (encrypted)")
        return _("not stored")

    @admin.display(description=_("verify TLS certificates"), ordering="verify_tls")
    def tls_label(self, obj):
        if obj.verify_tls:
            return _("on")
        return format_html('<strong style="color: #ba2121">{}</strong>', _("OFF"))

    @admin.display(description=_("TLS warning"))
    def tls_warning(self, obj):
        if obj is None or obj.verify_tls:
            return "—"
        return format_html(
            '<strong style="color: #ba2121">{}</strong>',
            _(
                "Certificate verification is OFF: anyone on the network path can read the password and "
                "the token. Turn it off only for a server whose certificate is known to be broken."
            ),
        )

    @admin.display(description=_("token"))
    def token_state(self, obj):
        if obj is None or not obj.token_encrypted:
            return _("no token")
        if obj.token_expires_at is None:
            return _("stored, no expiry in the token")
        if obj.token_expires_at <= timezone.now():
            return _("expired at %(at)s") % {"at": _local(obj.token_expires_at)}
        return _("valid until %(at)s") % {"at": _local(obj.token_expires_at)}

    @admin.display(description=_("last error"))
    def last_error_short(self, obj):
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else (obj.last_error or "—")

    @admin.display(description=_("actions"))
    def tools(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        return _buttons(
            [
                (self.object_action_url(obj, "log_in_now"), _("Log in now…")),
                (
                    reverse("admin:rotation_factorcataccount_browse", args=[obj.pk]),
                    _("Browse strategies and create a rotation"),
                ),
            ]
        )

    # -- log in --

    @admin.action(description=_("Log in to Factor Cat now"), permissions=["change"])
    def log_in_now(self, request, queryset):
        accounts = list(queryset)
        if len(accounts) != 1:
            self.message_user(request, _("Log in one account at a time."), messages.ERROR)
            return None
        account = accounts[0]
        remembered = account.remember_password and bool(account.password_encrypted)
        confirmed = self.confirmed(request)
        form = FactorCatLoginForm(request.POST if confirmed else None)
        if confirmed and form.is_valid():
            password = form.cleaned_data["password"]
            if password or remembered:
                try:
                    if password:
                        factorcat_login(account=account, password=password)
                    else:
                        factorcat_client_for(account=account, force_login=True)
                except FactorCatError as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    return None
                self.log_change(request, account, "Logged in to Factor Cat")
                self.message_user(
                    request,
                    _("Logged in to Factor Cat as %(user)s. Token: %(token)s.")
                    % {"user": account.username, "token": self.token_state(account)},
                    messages.SUCCESS,
                )
                return None
            form.add_error("password", _("Enter the password: none is remembered for this account."))
        return self.confirm_page(
            request,
            "admin/rotation/factorcataccount/login_confirm.html",
            action="log_in_now",
            selected=[account],
            title=_("Log in to Factor Cat as %(user)s?") % {"user": account.username},
            account=account,
            form=form,
            remembered=remembered,
        )

    # -- browsing Factor Cat --

    def get_urls(self):
        own = [
            path(
                "<int:pk>/browse/",
                self.admin_site.admin_view(self.browse_strategies_view),
                name="rotation_factorcataccount_browse",
            ),
            path(
                "<int:pk>/browse/<int:strategy_id>/",
                self.admin_site.admin_view(self.browse_histories_view),
                name="rotation_factorcataccount_histories",
            ),
            path(
                "<int:pk>/browse/<int:strategy_id>/<int:history_id>/",
                self.admin_site.admin_view(self.create_rotation_view),
                name="rotation_factorcataccount_create_rotation",
            ),
        ]
        return own + super().get_urls()

    def _browsed_account(self, request, pk) -> FactorCatAccount:
        account = get_object_or_404(FactorCatAccount, pk=pk)
        if not self.has_view_permission(request, account):
            raise PermissionDenied
        return account

    def _factorcat(self, request, account, call):
        """One Factor Cat call (logging in again on a refused token); an error becomes a message and None."""
        try:
            return with_relogin(account, call)
        except FactorCatError as exc:
            self.message_user(request, _("Factor Cat: %(why)s") % {"why": exc}, messages.ERROR)
            return None

    def _browse_context(self, request, account, title, **context):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "account": account,
            "title": title,
            "browse_url": reverse("admin:rotation_factorcataccount_browse", args=[account.pk]),
            **context,
        }

    def browse_strategies_view(self, request, pk):
        account = self._browsed_account(request, pk)
        search = (request.GET.get("q") or "").strip()[:SEARCH_MAX_CHARS]
        number = _page_number(request)
        page = self._factorcat(
            request,
            account,
            lambda client: client.strategies(page=number, limit=BROWSE_PAGE_SIZE, search=search),
        )
        rows = []
        for item in page.items if page else []:
            strategy_id = _positive_int(item.get("id"))
            name = str(item.get("name") or "")
            rows.append(
                {
                    "id": item.get("id"),
                    "name": name,
                    "description": str(item.get("description") or ""),
                    "backtest_count": item.get("backtest_count"),
                    "created_at": str(item.get("created_at") or ""),
                    "url": reverse(
                        "admin:rotation_factorcataccount_histories", args=[account.pk, strategy_id]
                    )
                    + "?"
                    + urlencode({"name": name})
                    if strategy_id
                    else None,
                }
            )
        return TemplateResponse(
            request,
            "admin/rotation/factorcataccount/browse_strategies.html",
            self._browse_context(
                request,
                account,
                _("Factor Cat strategies (%(account)s)") % {"account": account.name},
                page=page,
                rows=rows,
                search=search,
            ),
        )

    def browse_histories_view(self, request, pk, strategy_id):
        account = self._browsed_account(request, pk)
        strategy_name = (request.GET.get("name") or "").strip()[:200]
        number = _page_number(request)
        page = self._factorcat(
            request,
            account,
            lambda client: client.histories(strategy_id, page=number, limit=BROWSE_PAGE_SIZE),
        )
        rows = []
        for item in page.items if page else []:
            history_id = _positive_int(item.get("id"))
            rows.append(
                {
                    "id": item.get("id"),
                    "backtest_time": str(item.get("backtest_time") or ""),
                    "strategy_return": _figure(item.get("strategy_return")),
                    "win_rate": _figure(item.get("win_rate")),
                    "annualized_return": _figure(item.get("annualized_return")),
                    "max_drawdown": _figure(item.get("max_drawdown")),
                    "sharpe_ratio": _figure(item.get("sharpe_ratio")),
                    "url": reverse(
                        "admin:rotation_factorcataccount_create_rotation",
                        args=[account.pk, strategy_id, history_id],
                    )
                    + "?"
                    + urlencode({"name": strategy_name})
                    if history_id
                    else None,
                }
            )
        return TemplateResponse(
            request,
            "admin/rotation/factorcataccount/browse_histories.html",
            self._browse_context(
                request,
                account,
                _("Backtest records of %(strategy)s") % {"strategy": strategy_name or strategy_id},
                page=page,
                rows=rows,
                strategy_id=strategy_id,
                strategy_name=strategy_name,
            ),
        )

    def create_rotation_view(self, request, pk, strategy_id, history_id):
        account = self._browsed_account(request, pk)
        if not request.user.has_perm("rotation.add_rotationstrategy"):
            raise PermissionDenied
        strategy_name = (request.GET.get("name") or "").strip()[:200]
        # Fetched on every request, so what is stored is the server's, never what the page posted back.
        parameters = self._factorcat(
            request, account, lambda client: client.parameters(strategy_id, history_id)
        )
        if request.method == "POST":
            form = RotationFromRecordForm(request.POST)
            if form.is_valid() and parameters is not None:
                fields = dict(form.cleaned_data)
                name, rotation_account = fields.pop("name"), fields.pop("account")
                try:
                    rotation = rotation_create(
                        name=name,
                        account=rotation_account,
                        source=RotationStrategy.Source.FACTORCAT,
                        factorcat_account=account,
                        factorcat_strategy_id=strategy_id,
                        factorcat_history_id=history_id,
                        factorcat_parameters=parameters,
                        **fields,
                    )
                except ValidationError as exc:
                    _form_errors(form, exc)
                else:
                    self.log_addition(
                        request,
                        rotation,
                        f"Created from Factor Cat strategy {strategy_id}, backtest record {history_id}",
                    )
                    self.message_user(
                        request,
                        _(
                            "Rotation strategy %(name)s created from backtest record %(record)s; "
                            "account %(account)s follows its target."
                        )
                        % {"name": rotation.name, "record": history_id, "account": rotation_account.name},
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(
                        reverse("admin:rotation_rotationstrategy_change", args=[rotation.pk])
                    )
        else:
            initial = {"factorcat_strategy_name": strategy_name}
            if parameters and (hold := _positive_int(parameters.get("holdNum"))):
                initial["top_n"] = min(hold, 32767)
            form = RotationFromRecordForm(initial=initial)
        form.fields["account"].queryset = BrokerAccount.objects.order_by("name")
        take_profit, stop_loss = ratios_effective(RotationStrategy(factorcat_parameters=parameters or {}))
        return TemplateResponse(
            request,
            "admin/rotation/factorcataccount/create_rotation.html",
            self._browse_context(
                request,
                account,
                _("New rotation from backtest record %(record)s") % {"record": history_id},
                form=form,
                strategy_id=strategy_id,
                strategy_name=strategy_name,
                history_id=history_id,
                histories_url=reverse(
                    "admin:rotation_factorcataccount_histories", args=[account.pk, strategy_id]
                )
                + "?"
                + urlencode({"name": strategy_name}),
                parameters=_pretty_json(parameters) if parameters is not None else None,
                take_profit=ratio_percent(take_profit),
                stop_loss=ratio_percent(stop_loss),
            ),
        )


# --- rotation strategies ------------------------------------------------------------------------


@admin.register(RotationStrategy)
class RotationStrategyAdmin(ConfirmedActionsMixin, admin.ModelAdmin):
    form = RotationStrategyForm
    list_display = [
        "name",
        "account",
        "source",
        "schedule_text",
        "sizing",
        "top_n",
        "take_profit_effective",
        "stop_loss_effective",
        "enabled",
        "next_run_at",
    ]
    list_filter = ["enabled", "source", "schedule", "sizing", "account"]
    list_select_related = ["account", "factorcat_account"]
    search_fields = ["name", "factorcat_strategy_name", "account__name"]
    autocomplete_fields = ["account", "factorcat_account"]
    actions = ["run_now", "dry_run"]
    object_actions = ("run_now", "dry_run")
    readonly_fields = [
        "strategy",
        "tools",
        "next_run_at",
        "ratios_effective_text",
        "parameters_pretty",
        "created_at",
    ]

    def get_fieldsets(self, request, obj=None):
        adding = obj is None
        identity = (
            ["name", "account", "enabled"] if adding else ["name", "account", "strategy", "enabled", "tools"]
        )
        return [
            (None, {"fields": identity}),
            (
                _("Selection source"),
                {
                    "fields": [
                        "source",
                        "factorcat_account",
                        "factorcat_strategy_id",
                        "factorcat_strategy_name",
                        "factorcat_history_id",
                        *([] if adding else ["parameters_pretty"]),
                    ],
                    "description": _(
                        "To follow a Factor Cat backtest record, create the rotation from the record: "
                        "Factor Cat accounts → Browse strategies. Uploaded lists come as CSV (button above) "
                        "or through the API."
                    ),
                },
            ),
            (
                _("Schedule"),
                {
                    "fields": [
                        "schedule",
                        "weekday",
                        "month_day",
                        "run_time",
                        "max_lateness",
                        *([] if adding else ["next_run_at"]),
                    ]
                },
            ),
            (_("Sizing"), {"fields": ["sizing", "amount_per_bond", "top_n", "excluded_codes"]}),
            (
                _("Take-profit / stop-loss"),
                {
                    "fields": [
                        "take_profit_ratio",
                        "stop_loss_ratio",
                        *([] if adding else ["ratios_effective_text"]),
                        "refill_after_tp_sl",
                    ]
                },
            ),
            *([] if adding else [(_("Record"), {"fields": ["created_at"]})]),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        # Renaming would break the API address; moving to another account would leave the
        # rotation's bonds and subscription behind in the old one.
        return ["name", "account", *self.readonly_fields]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account", "strategy", "factorcat_account")

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # A new rotation gets its own target strategy, the account's subscription and an empty target.
        fields = {name: value for name, value in form.cleaned_data.items() if name not in ("name", "account")}
        created = rotation_create(
            name=form.cleaned_data["name"], account=form.cleaned_data["account"], **fields
        )
        for field in self.opts.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding, obj._state.db = False, created._state.db

    # -- columns --

    @admin.display(description=_("schedule"), ordering="schedule")
    def schedule_text(self, obj):
        return schedule_describe(obj)

    def _ratio_text(self, override, effective):
        text = ratio_percent(effective)
        if override is None and effective is not None:
            return _("%(ratio)s (from the record)") % {"ratio": text}
        return text

    @admin.display(description=_("take-profit"))
    def take_profit_effective(self, obj):
        return self._ratio_text(obj.take_profit_ratio, ratios_effective(obj)[0])

    @admin.display(description=_("stop-loss"))
    def stop_loss_effective(self, obj):
        return self._ratio_text(obj.stop_loss_ratio, ratios_effective(obj)[1])

    @admin.display(description=_("in effect"))
    def ratios_effective_text(self, obj):
        take_profit, stop_loss = ratios_effective(obj)
        return _("take-profit %(tp)s, stop-loss %(sl)s (profit versus the holding's cost basis)") % {
            "tp": self._ratio_text(obj.take_profit_ratio, take_profit),
            "sl": self._ratio_text(obj.stop_loss_ratio, stop_loss),
        }

    @admin.display(description=_("next run"))
    def next_run_at(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        return _local(next_run(obj, timezone.now()))

    @admin.display(description=_("backtest parameters"))
    def parameters_pretty(self, obj):
        return _pretty_json(obj.factorcat_parameters) if obj and obj.factorcat_parameters else "—"

    @admin.display(description=_("actions"))
    def tools(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        links = [
            (self.object_action_url(obj, "dry_run"), _("Dry run…")),
            (self.object_action_url(obj, "run_now"), _("Run now…")),
            (
                reverse("admin:rotation_rotationstrategy_upload_selection", args=[obj.pk]),
                _("Upload selection (CSV)…"),
            ),
        ]
        if page := admin_url("rotation:rotation-detail", obj.name):
            links.append((page, _("Page")))
        return _buttons(links)

    # -- run now / dry run --

    def _confirm_rows(self, rotations):
        today = timezone.localdate()
        rows = []
        for rotation in rotations:
            selection = (
                Selection.objects.filter(rotation=rotation, trade_date=today)
                .annotate(item_count=Count("items"))
                .order_by("-created_at", "-id")
                .first()
            )
            snapshot = rotation.strategy.current_snapshot
            rows.append(
                {
                    "rotation": rotation,
                    "from_factorcat": rotation.source == RotationStrategy.Source.FACTORCAT,
                    "selection": selection,
                    "target_count": snapshot.positions_count if snapshot else 0,
                }
            )
        return rows

    @admin.action(description=_("Run now (writes the rotation's new target)"), permissions=["change"])
    def run_now(self, request, queryset):
        rotations = list(queryset.select_related("account", "strategy__current_snapshot").order_by("name"))
        if not self.confirmed(request):
            return self.confirm_page(
                request,
                "admin/rotation/rotationstrategy/run_confirm.html",
                action="run_now",
                selected=rotations,
                title=_("Run these rotations now?"),
                rows=self._confirm_rows(rotations),
                dry_run=False,
            )
        results = []
        for rotation in rotations:
            try:
                run, _decision, message = rotation_run_now(rotation=rotation, now=timezone.now())
            except RotationError as exc:
                results.append(
                    {"rotation": rotation, "run": None, "rows": [], "budget": None, "error": str(exc)}
                )
                continue
            self.log_change(request, rotation, f"Run now: {run.status}")
            results.append(
                {
                    "rotation": rotation,
                    "run": run,
                    "rows": decision_rows(run.decision),
                    "budget": None,
                    "error": message if run.status == RotationRun.Status.FAILED else "",
                }
            )
        return self._results_page(request, results, dry_run=False)

    @admin.action(description=_("Dry run (decide now, write no target)"), permissions=["change"])
    def dry_run(self, request, queryset):
        rotations = list(queryset.select_related("account", "strategy__current_snapshot").order_by("name"))
        if not self.confirmed(request):
            return self.confirm_page(
                request,
                "admin/rotation/rotationstrategy/run_confirm.html",
                action="dry_run",
                selected=rotations,
                title=_("Dry run these rotations?"),
                rows=self._confirm_rows(rotations),
                dry_run=True,
            )
        results = []
        for rotation in rotations:
            try:
                _run, decision, message = rotation_run_now(
                    rotation=rotation, now=timezone.now(), dry_run=True
                )
            except (RotationError, FactorCatError) as exc:
                decision, message = None, str(exc)
            except Exception as exc:  # shown to the user instead of a server error; the log has the rest
                logger.exception("dry run of rotation %s failed", rotation.name)
                decision, message = None, str(exc) or exc.__class__.__name__
            results.append(
                {
                    "rotation": rotation,
                    "run": None,
                    "rows": decision_rows([row.as_dict() for row in decision.rows]) if decision else [],
                    "budget": decision.budget if decision else None,
                    "error": message if decision is None else "",
                }
            )
        return self._results_page(request, results, dry_run=True)

    def _results_page(self, request, results, *, dry_run: bool):
        for result in results:
            result["change_url"] = reverse(
                "admin:rotation_rotationstrategy_change", args=[result["rotation"].pk]
            )
            result["run_now_url"] = self.object_action_url(result["rotation"], "run_now")
            run = result["run"]
            result["run_url"] = reverse("admin:rotation_rotationrun_change", args=[run.pk]) if run else None
        return TemplateResponse(
            request,
            "admin/rotation/rotationstrategy/run_result.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Dry run") if dry_run else _("Run now"),
                "results": results,
                "dry_run": dry_run,
            },
        )

    # -- CSV upload --

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/upload-selection/",
                self.admin_site.admin_view(self.upload_selection_view),
                name="rotation_rotationstrategy_upload_selection",
            )
        ]
        return own + super().get_urls()

    def upload_selection_view(self, request, object_id):
        rotation = self.get_object(request, object_id)
        if rotation is None:
            raise Http404
        if not self.has_change_permission(request, rotation):
            raise PermissionDenied
        from_factorcat = rotation.source == RotationStrategy.Source.FACTORCAT
        if request.method == "POST" and not from_factorcat:
            form = SelectionUploadForm(request.POST, request.FILES)
            if form.is_valid():
                trade_date, bonds = form.cleaned_data["trade_date"], form.cleaned_data["bonds"]
                selection = selection_store(
                    rotation=rotation,
                    trade_date=trade_date,
                    bonds=bonds,
                    source=Selection.Source.CSV,
                    received_from=f"admin:{request.user}",
                )
                self.log_change(
                    request, rotation, f"Uploaded the selection of {trade_date} ({len(bonds)} bonds)"
                )
                self.message_user(
                    request,
                    _("Selection of %(date)s stored: %(count)d bonds.")
                    % {"date": trade_date, "count": len(bonds)},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:rotation_selection_change", args=[selection.pk]))
        else:
            form = SelectionUploadForm()
        return TemplateResponse(
            request,
            "admin/rotation/rotationstrategy/upload_selection.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Upload the selection of %(name)s") % {"name": rotation.name},
                "rotation": rotation,
                "form": form,
                "from_factorcat": from_factorcat,
            },
        )


# --- read-only records --------------------------------------------------------------------------


class SelectionItemInline(ReadOnlyInline):
    model = SelectionItem
    fields = ["rank", "code", "name", "price"]


@admin.register(Selection)
class SelectionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["trade_date", "rotation", "source", "item_count", "received_from", "created_at"]
    list_filter = ["source", "rotation"]
    list_select_related = ["rotation"]
    search_fields = ["rotation__name", "items__code", "items__name", "received_from"]
    date_hierarchy = "trade_date"
    inlines = [SelectionItemInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(item_count=Count("items"))

    def get_search_results(self, request, queryset, search_term):
        queryset, _may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False

    @admin.display(description=_("bonds"), ordering="item_count")
    def item_count(self, obj):
        return obj.item_count


@admin.register(RotationRun)
class RotationRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "slot",
        "rotation",
        "trigger",
        "status",
        "actions_summary",
        "message_short",
        "finished_at",
    ]
    list_filter = ["status", "trigger", "rotation"]
    list_select_related = ["rotation"]
    search_fields = ["rotation__name", "message"]
    date_hierarchy = "slot"
    fields = [
        "rotation",
        "slot",
        "trigger",
        "status",
        "selection_link",
        "decision_table",
        "target_link",
        "message",
        "started_at",
        "finished_at",
    ]
    readonly_fields = ["selection_link", "decision_table", "target_link"]

    @admin.display(description=_("decision"))
    def decision_table(self, obj):
        return _decision_table(decision_rows(obj.decision))

    @admin.display(description=_("decision"))
    def actions_summary(self, obj):
        counts = {}
        for row in decision_rows(obj.decision):
            counts[row["action_label"]] = counts.get(row["action_label"], 0) + 1
        return " · ".join(f"{label} {count}" for label, count in counts.items()) or "—"

    @admin.display(description=_("message"))
    def message_short(self, obj):
        return (obj.message[:100] + "…") if len(obj.message) > 100 else (obj.message or "—")

    @admin.display(description=_("selection"))
    def selection_link(self, obj):
        if obj.selection_id is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:rotation_selection_change", args=[obj.selection_id]),
            obj.selection,
        )

    @admin.display(description=_("target written"))
    def target_link(self, obj):
        return _snapshot_link(obj.target_snapshot_id)


@admin.register(TpSlEvent)
class TpSlEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "rotation", "kind", "code", "price", "cost", "profit", "ratio_text", "refill_code"]
    list_filter = ["kind", "rotation"]
    list_select_related = ["rotation"]
    search_fields = ["code", "rotation__name", "refill_code"]
    date_hierarchy = "at"
    readonly_fields = ["profit", "target_link"]

    @admin.display(description=_("profit vs cost"))
    def profit(self, obj):
        if not obj.cost:
            return "—"
        return f"{(obj.price - obj.cost) / obj.cost:+.2%}"

    @admin.display(description=_("ratio"), ordering="ratio")
    def ratio_text(self, obj):
        return ratio_percent(obj.ratio)

    @admin.display(description=_("target written"))
    def target_link(self, obj):
        return _snapshot_link(obj.target_snapshot_id)

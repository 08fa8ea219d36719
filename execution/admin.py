import json
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_permission_codename
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from positions.codes import CodeError, normalize

from . import calendar
from .models import (
    AccountState,
    BrokerAccount,
    EquityPoint,
    Fill,
    Holding,
    ManualQuote,
    Order,
    OrderEvent,
    OrderStatus,
    PaperBook,
    PaperOrder,
    PaperPosition,
    PaperTrade,
    ReservedHolding,
    Round,
    Subscription,
    TradingDay,
    WorkerLease,
)
from .services import admin_actions
from .services import rounds as round_services

# --- calendar ---


@admin.register(TradingDay)
class TradingDayAdmin(admin.ModelAdmin):
    list_display = ["date", "weekday", "is_open", "source", "note", "updated_at"]
    list_editable = ["is_open"]
    list_filter = ["is_open", "source"]
    date_hierarchy = "date"
    search_fields = ["note"]
    fields = ["date", "is_open", "note", "source", "updated_at"]
    readonly_fields = ["source", "updated_at"]
    actions = ["seed_from_exchange_calendars"]
    list_per_page = 100

    @admin.display(description=_("weekday"))
    def weekday(self, obj):
        return WEEKDAYS_ABBR[obj.date.weekday()]

    def get_readonly_fields(self, request, obj=None):
        # A row is one date: change the day's status, or add another date.
        return [*self.readonly_fields, "date"] if obj else self.readonly_fields

    # Whatever an admin saves is theirs: refreshes never overwrite admin rows.
    def save_model(self, request, obj, form, change):
        obj.source = TradingDay.Source.ADMIN
        super().save_model(request, obj, form, change)

    @admin.action(
        description=_("Seed last, this and next year from exchange_calendars (XSHG)"), permissions=["change"]
    )
    def seed_from_exchange_calendars(self, request, queryset):
        """Works on the calendar, not on the selected rows (it may run with none selected)."""
        start, end = calendar.default_refresh_range(timezone.localdate(timezone=calendar.SHANGHAI))
        try:
            stored = calendar.calendar_seed_from_exchange_calendars(start=start, end=end)
        except calendar.CalendarSourceError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(
            request,
            _("%(count)s days added or changed; the calendar is known until %(date)s.")
            % {"count": stored, "date": calendar.calendar_known_until()},
            messages.SUCCESS,
        )
        warning = calendar.calendar_warning(timezone.localdate(timezone=calendar.SHANGHAI))
        if warning:
            self.message_user(request, warning, messages.WARNING)

    def changelist_view(self, request, extra_context=None):
        # Django runs actions only with rows ticked; seeding is about the calendar, so it needs none.
        if (
            request.method == "POST"
            and request.POST.get("action") == "seed_from_exchange_calendars"
            and not request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
            and self.has_change_permission(request)
        ):
            self.seed_from_exchange_calendars(request, self.get_queryset(request).none())
            return HttpResponseRedirect(request.get_full_path())
        return super().changelist_view(request, extra_context)


# --- shared -------------------------------------------------------------------------------------


def _related_or_none(obj, name: str):
    """A reverse one-to-one (state, lease) that may not exist yet; select_related caches the absence."""
    try:
        return getattr(obj, name)
    except ObjectDoesNotExist:
        return None


def _pretty_json(value):
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


def _buttons(links):
    return format_html_join(" ", '<a class="button" href="{}">{}</a>', links)


class ReadOnlyAdminMixin:
    """Rows written by the worker and services only: admin shows them and never edits or deletes them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        own = [f.name for f in self.opts.concrete_fields if not f.primary_key]
        return [*own, *self.readonly_fields]


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False


class ConfirmedActionsMixin:
    """Actions that show a confirmation page first, as Django's "delete selected" does.

    An action runs twice: the first POST (from the changelist) renders the
    page; the page posts back with `confirm=yes` and the action calls its
    service. The names in `object_actions` are also reachable for one row at
    <pk>/confirm/<action>/, linked from buttons on the change page.
    """

    object_actions: tuple[str, ...] = ()

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/confirm/<str:action>/",
                self.admin_site.admin_view(self.object_action_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_object_action",
            )
        ]
        return own + super().get_urls()

    def object_action_url(self, obj, action: str) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_object_action", args=[obj.pk, action]
        )

    def object_action_view(self, request, object_id, action):
        if action not in self.object_actions:
            raise Http404
        available = self.get_actions(request)
        if action not in available:
            raise PermissionDenied
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404
        func = available[action][0]
        response = func(self, request, self.get_queryset(request).filter(pk=obj.pk))
        if response is not None:
            return response
        return HttpResponseRedirect(
            reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        )

    @staticmethod
    def confirmed(request) -> bool:
        return request.method == "POST" and request.POST.get("confirm") == "yes"

    def confirm_page(self, request, template: str, *, action: str, selected, title, **context):
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                "action": action,
                "selected": [obj.pk for obj in selected],
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                **context,
            },
        )

    def has_model_permission(self, request, codename: str) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename(codename, self.opts)}")


class CodeFormMixin:
    """Codes typed by a person are stored in the canonical QMT form, or rejected with the reason."""

    def clean_code(self):
        try:
            return normalize(self.cleaned_data["code"])
        except CodeError as exc:
            raise forms.ValidationError(str(exc))


# --- accounts -----------------------------------------------------------------------------------


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    fields = ["strategy", "scaling", "ratio", "capital", "enabled"]
    autocomplete_fields = ["strategy"]
    extra = 0


class ReservedHoldingForm(CodeFormMixin, forms.ModelForm):
    class Meta:
        model = ReservedHolding
        fields = ["code", "volume", "note"]


class ReservedHoldingInline(admin.TabularInline):
    model = ReservedHolding
    form = ReservedHoldingForm
    fields = ["code", "volume", "note"]
    extra = 0


RISK_FIELDS = [
    "max_order_value",
    "max_daily_turnover",
    "slippage",
    "order_timeout",
    "stale_after",
    "approval_threshold",
    "sell_unmanaged",
    "ignore_codes",
]
PAPER_FIELDS = ["paper_starting_cash", "commission_rate", "min_commission", "stamp_duty_rate"]


class BrokerAccountForm(forms.ModelForm):
    class Meta:
        model = BrokerAccount
        # The admin narrows this per page; `trading_enabled` is never a form field.
        fields = [
            "name",
            "account_id",
            "mode",
            "userdata_mini_path",
            "enabled",
            "enforce_trading_hours",
            "allow_closing_auction",
            *RISK_FIELDS,
            *PAPER_FIELDS,
        ]

    def clean(self):
        cleaned = super().clean()
        # On the change form `mode` is read-only and comes from the stored row.
        mode = cleaned.get("mode", self.instance.mode)
        if mode == BrokerAccount.Mode.LIVE and not (cleaned.get("userdata_mini_path") or "").strip():
            self.add_error("userdata_mini_path", _("A live account needs its MiniQMT userdata_mini path."))
        return cleaned


@admin.register(BrokerAccount)
class BrokerAccountAdmin(ConfirmedActionsMixin, admin.ModelAdmin):
    form = BrokerAccountForm
    list_display = [
        "name",
        "account_id",
        "mode_label",
        "trading_enabled",
        "enabled",
        "enforce_trading_hours",
        "total_asset",
        "state_updated_at",
        "lease_holder",
        "lease_heartbeat",
    ]
    list_filter = ["mode", "trading_enabled", "enabled"]
    list_select_related = ["state", "lease"]
    search_fields = ["name", "account_id"]
    inlines = [SubscriptionInline, ReservedHoldingInline]
    actions = ["trading_off", "trading_on", "switch_to_live", "switch_to_paper"]
    object_actions = ("trading_off", "trading_on", "switch_to_live", "switch_to_paper")
    readonly_fields = ["mode_label", "tools", "state_summary", "lease_summary", "created_at"]

    def get_fieldsets(self, request, obj=None):
        adding = obj is None
        identity = ["name", "account_id", "mode" if adding else "mode_label", "userdata_mini_path", "enabled"]
        switch = ["trading_enabled", "enforce_trading_hours", "allow_closing_auction"]
        fieldsets = [
            (None, {"fields": identity}),
            (
                _("Trading switch and hours"),
                {
                    "fields": switch if adding else ["tools", *switch],
                    "description": _(
                        "New accounts start with trading OFF. The trading switch and the mode change only "
                        "through the actions, each behind a confirmation page."
                    ),
                },
            ),
            (_("Risk"), {"fields": RISK_FIELDS}),
            (_("Paper trading"), {"fields": PAPER_FIELDS}),
        ]
        if not adding:
            fieldsets.append(
                (_("Worker and state"), {"fields": ["state_summary", "lease_summary", "created_at"]})
            )
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        # The kill switch and the mode are never form fields: only the confirmed actions change them.
        protected = ["trading_enabled"] if obj is None else ["mode", "trading_enabled"]
        return [*protected, *self.readonly_fields]

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        # A full save would write back a kill switch someone flipped while this form was being saved.
        obj.save(
            update_fields=[
                f.name
                for f in self.opts.concrete_fields
                if not f.primary_key and f.name not in ("mode", "trading_enabled", "created_at")
            ]
        )

    @admin.display(description=_("mode"), ordering="mode")
    def mode_label(self, obj):
        if obj.mode == BrokerAccount.Mode.LIVE:
            return format_html(
                '<span style="background: #ba2121; color: #fff; padding: 1px 6px; border-radius: 3px; '
                'font-weight: bold; white-space: nowrap">{}</span>',
                obj.get_mode_display(),
            )
        return format_html('<span style="white-space: nowrap">{}</span>', obj.get_mode_display())

    @admin.display(description=_("total asset"), ordering="state__total_asset")
    def total_asset(self, obj):
        state = _related_or_none(obj, "state")
        return state.total_asset if state else None

    @admin.display(description=_("state updated at"), ordering="state__updated_at")
    def state_updated_at(self, obj):
        state = _related_or_none(obj, "state")
        return state.updated_at if state else None

    @admin.display(description=_("worker"), ordering="lease__holder")
    def lease_holder(self, obj):
        lease = _related_or_none(obj, "lease")
        if lease is None:
            return None
        if lease.expires_at < timezone.now():
            return format_html('<span style="color: #999">{} ({})</span>', lease.holder, _("expired"))
        return lease.holder

    @admin.display(description=_("last heartbeat"), ordering="lease__heartbeat_at")
    def lease_heartbeat(self, obj):
        lease = _related_or_none(obj, "lease")
        return lease.heartbeat_at if lease else None

    @admin.display(description=_("account state"))
    def state_summary(self, obj):
        state = _related_or_none(obj, "state")
        if state is None:
            return _("No state reported yet.")
        return format_html(
            "{} {} · {} {} · {} {} · {} {}",
            _("cash"),
            state.cash,
            _("frozen cash"),
            state.frozen_cash,
            _("total asset"),
            state.total_asset,
            _("updated at"),
            date_format(timezone.localtime(state.updated_at), "DATETIME_FORMAT"),
        )

    @admin.display(description=_("worker lease"))
    def lease_summary(self, obj):
        lease = _related_or_none(obj, "lease")
        if lease is None:
            return _("No worker holds this account.")
        return format_html(
            "{} · {} {} · {} {}",
            lease.holder,
            _("last heartbeat"),
            date_format(timezone.localtime(lease.heartbeat_at), "DATETIME_FORMAT"),
            _("expires at"),
            date_format(timezone.localtime(lease.expires_at), "DATETIME_FORMAT"),
        )

    @admin.display(description=_("actions"))
    def tools(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        if obj.trading_enabled:
            links = [(self.object_action_url(obj, "trading_off"), _("Turn trading OFF"))]
        else:
            links = [(self.object_action_url(obj, "trading_on"), _("Turn trading ON"))]
        if obj.mode == BrokerAccount.Mode.PAPER:
            links.append((self.object_action_url(obj, "switch_to_live"), _("Switch to live…")))
        else:
            links.append((self.object_action_url(obj, "switch_to_paper"), _("Switch to paper…")))
        return _buttons(links)

    # -- kill switch --

    @admin.action(description=_("Turn trading OFF (kill switch)"), permissions=["change"])
    def trading_off(self, request, queryset):
        return self._trading(request, queryset, enabled=False)

    @admin.action(description=_("Turn trading ON"), permissions=["change"])
    def trading_on(self, request, queryset):
        return self._trading(request, queryset, enabled=True)

    def _trading(self, request, queryset, *, enabled: bool):
        accounts = list(queryset.order_by("name"))
        if self.confirmed(request):
            changed, unchanged = [], []
            for account in accounts:
                flipped = admin_actions.account_trading_set(
                    account=account, enabled=enabled, user=request.user
                )
                (changed if flipped else unchanged).append(account.name)
            if changed:
                done = (
                    _("Trading turned ON for: %(names)s.")
                    if enabled
                    else _("Trading turned OFF for: %(names)s.")
                )
                self.message_user(request, done % {"names": ", ".join(changed)}, messages.SUCCESS)
            if unchanged:
                already = _("Already ON: %(names)s.") if enabled else _("Already OFF: %(names)s.")
                self.message_user(request, already % {"names": ", ".join(unchanged)}, messages.INFO)
            return None
        return self.confirm_page(
            request,
            "admin/execution/brokeraccount/trading_confirm.html",
            action="trading_on" if enabled else "trading_off",
            selected=accounts,
            title=_("Turn trading ON?") if enabled else _("Turn trading OFF?"),
            accounts=accounts,
            enabled=enabled,
            live_names=[a.name for a in accounts if a.mode == BrokerAccount.Mode.LIVE],
            global_switch_off=not settings.TRADING_ENABLED,
        )

    # -- mode --

    @admin.action(description=_("Switch paper → live (real money)"), permissions=["change"])
    def switch_to_live(self, request, queryset):
        accounts = list(queryset.select_related("lease"))
        if len(accounts) != 1:
            self.message_user(request, _("Switch one account at a time to live."), messages.ERROR)
            return None
        account = accounts[0]
        problems = admin_actions.account_live_switch_problems(account=account)
        if problems:
            self.message_user(
                request, _("Not switched: %(why)s") % {"why": " ".join(problems)}, messages.ERROR
            )
            return None
        name_error = ""
        if self.confirmed(request):
            if request.POST.get("confirm_name", "").strip() == account.name:
                try:
                    admin_actions.account_switch_to_live(account=account, user=request.user)
                except admin_actions.ActionRefused as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    return None
                self.message_user(
                    request,
                    _(
                        "%(name)s is now LIVE with trading OFF. Start qmt_worker on the trading PC, then turn trading on."
                    )
                    % {"name": account.name},
                    messages.WARNING,
                )
                return None
            name_error = _("The name you typed does not match the account name; nothing was changed.")
        lease = _related_or_none(account, "lease")
        return self.confirm_page(
            request,
            "admin/execution/brokeraccount/switch_live_confirm.html",
            action="switch_to_live",
            selected=[account],
            title=_("Switch %(name)s to LIVE trading?") % {"name": account.name},
            account=account,
            lease=lease if lease and lease.expires_at >= timezone.now() else None,
            name_error=name_error,
        )

    @admin.action(description=_("Switch live → paper"), permissions=["change"])
    def switch_to_paper(self, request, queryset):
        accounts = list(queryset.order_by("name"))
        live = [a for a in accounts if a.mode == BrokerAccount.Mode.LIVE]
        if not live:
            self.message_user(request, _("None of the selected accounts is live."), messages.ERROR)
            return None
        if self.confirmed(request):
            for account in accounts:
                try:
                    admin_actions.account_switch_to_paper(account=account, user=request.user)
                except admin_actions.ActionRefused as exc:
                    self.message_user(request, str(exc), messages.INFO)
                    continue
                self.message_user(
                    request,
                    _("%(name)s is now paper with trading OFF.") % {"name": account.name},
                    messages.SUCCESS,
                )
            return None
        return self.confirm_page(
            request,
            "admin/execution/brokeraccount/switch_paper_confirm.html",
            action="switch_to_paper",
            selected=live,
            title=_("Switch to paper trading?"),
            names=[a.name for a in live],
            skipped=[a.name for a in accounts if a not in live],
        )


# --- rounds and orders --------------------------------------------------------------------------


class RoundOrderInline(ReadOnlyInline):
    model = Order
    fields = ["code", "side", "volume", "limit_price", "status", "filled_volume", "avg_fill_price", "key"]
    show_change_link = True


@admin.register(Round)
class RoundAdmin(ConfirmedActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "account",
        "trigger",
        "status",
        "orders_count",
        "skips_count",
        "short_message",
        "approved_by",
    ]
    list_filter = ["status", "trigger", "account"]
    list_select_related = ["account", "approved_by"]
    date_hierarchy = "created_at"
    search_fields = ["account__name", "message"]
    fields = [
        "account",
        "trigger",
        "status",
        "message",
        "created_at",
        "finished_at",
        "approved_by",
        "approved_at",
        "tools",
        "targets_pretty",
        "planned_pretty",
        "diff_pretty",
        "skips_pretty",
    ]
    readonly_fields = ["tools", "targets_pretty", "planned_pretty", "diff_pretty", "skips_pretty"]
    inlines = [RoundOrderInline]
    actions = ["approve_held"]
    object_actions = ("approve_held",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(orders_count=Count("orders"))

    def has_approve_permission(self, request):
        return self.has_model_permission(request, "change")

    @admin.display(description=_("orders"), ordering="orders_count")
    def orders_count(self, obj):
        return obj.orders_count

    @admin.display(description=_("skipped lines"))
    def skips_count(self, obj):
        return len(obj.skips or [])

    @admin.display(description=_("message"), ordering="message")
    def short_message(self, obj):
        return Truncator(obj.message).chars(80)

    @admin.display(description=_("target versions used"))
    def targets_pretty(self, obj):
        return _pretty_json(obj.targets)

    @admin.display(description=_("planned orders"))
    def planned_pretty(self, obj):
        return _pretty_json(obj.planned)

    @admin.display(description=_("diff"))
    def diff_pretty(self, obj):
        return _pretty_json(obj.diff)

    @admin.display(description=_("skipped lines"))
    def skips_pretty(self, obj):
        return _pretty_json(obj.skips)

    @admin.display(description=_("approval"))
    def tools(self, obj):
        if obj.status != Round.Status.HELD:
            return "-"
        problem = admin_actions.round_approval_problem(round_=obj)
        if problem:
            return problem
        return _buttons([(self.object_action_url(obj, "approve_held"), _("Approve this round…"))])

    @admin.action(description=_("Approve held round"), permissions=["approve"])
    def approve_held(self, request, queryset):
        rounds = list(queryset.select_related("account__state", "approved_by").order_by("created_at"))
        if self.confirmed(request):
            for round_ in rounds:
                try:
                    admin_actions.held_round_approve(round_=round_, user=request.user)
                except admin_actions.ActionRefused as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    continue
                self.message_user(
                    request,
                    _("Round #%(id)s of %(account)s approved; the worker re-plans and places it.")
                    % {"id": round_.pk, "account": round_.account.name},
                    messages.SUCCESS,
                )
            return None
        eligible, refused = [], []
        for round_ in rounds:
            problem = admin_actions.round_approval_problem(round_=round_)
            if problem:
                refused.append(problem)
            else:
                eligible.append(round_)
        if not eligible:
            for problem in refused:
                self.message_user(request, problem, messages.ERROR)
            return None
        return self.confirm_page(
            request,
            "admin/execution/round/approve_confirm.html",
            action="approve_held",
            selected=eligible,
            title=_("Approve the held round?"),
            plans=[_round_plan(round_) for round_ in eligible],
            refused=refused,
            tolerance_percent=(round_services.APPROVAL_TOLERANCE - 1) * 100,
        )


def _round_plan(round_: Round) -> dict:
    """What a held round would trade, priced at its planned limit prices, against the account's assets."""
    lines = []
    for planned in round_.planned:
        price = Decimal(str(planned.get("limit_price") or 0))
        volume = int(planned.get("volume") or 0)
        side = planned.get("side", "")
        lines.append(
            {
                "code": planned.get("code", ""),
                "side": Order.Side(side).label if side in Order.Side.values else side,
                "volume": volume,
                "limit_price": price,
                "value": Decimal(str(planned["value"])) if planned.get("value") else price * volume,
                "price_source": planned.get("price_source", ""),
                "reason": planned.get("reason", ""),
            }
        )
    total = sum((line["value"] for line in lines), Decimal(0))
    state = _related_or_none(round_.account, "state")
    total_asset = state.total_asset if state else None
    threshold = round_.account.approval_threshold
    return {
        "round": round_,
        "lines": lines,
        "total": total,
        "total_asset": total_asset,
        "share_percent": total / total_asset * 100 if total_asset else None,
        "threshold_percent": threshold * 100 if threshold is not None else None,
    }


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ["at", "status", "filled_volume", "message"]


class FillInline(ReadOnlyInline):
    model = Fill
    fields = ["traded_at", "trade_id", "volume", "price", "amount", "fee"]


@admin.register(Order)
class OrderAdmin(ConfirmedActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "account",
        "code",
        "side",
        "volume",
        "limit_price",
        "status",
        "filled_volume",
        "avg_fill_price",
        "price_source",
        "broker_order_id",
        "key",
    ]
    list_filter = ["status", "side", "account", "price_source"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    search_fields = ["code", "key", "=broker_order_id"]
    fields = [
        "key",
        "account",
        "round",
        "code",
        "side",
        "volume",
        "price_type",
        "limit_price",
        "price_source",
        "reason",
        "strategies",
        "status",
        "filled_volume",
        "avg_fill_price",
        "broker_order_id",
        "message",
        "created_at",
        "sent_at",
        "updated_at",
        "cancel_requested_at",
        "user_cancel_requested_at",
        "tools",
    ]
    readonly_fields = ["tools"]
    inlines = [OrderEventInline, FillInline]
    actions = ["ask_cancel"]
    object_actions = ("ask_cancel",)

    def has_cancel_permission(self, request):
        return self.has_model_permission(request, "change")

    @admin.display(description=_("cancel"))
    def tools(self, obj):
        if obj.is_final:
            return "-"
        if obj.user_cancel_requested_at:
            return _("Cancel asked at %(at)s; the worker sends it.") % {
                "at": date_format(timezone.localtime(obj.user_cancel_requested_at), "DATETIME_FORMAT")
            }
        return _buttons([(self.object_action_url(obj, "ask_cancel"), _("Ask the worker to cancel…"))])

    @admin.action(description=_("Ask the worker to cancel"), permissions=["cancel"])
    def ask_cancel(self, request, queryset):
        orders = list(queryset.select_related("account").order_by("created_at"))
        if self.confirmed(request):
            outcome = admin_actions.orders_ask_cancel(orders=orders, user=request.user)
            if outcome.requested:
                self.message_user(
                    request,
                    _("Cancel asked for %(count)d order(s); the worker sends it on its next cycle.")
                    % {"count": len(outcome.requested)},
                    messages.SUCCESS,
                )
            if outcome.already_requested:
                self.message_user(
                    request,
                    _("Cancel was already asked for: %(codes)s.")
                    % {"codes": ", ".join(o.code for o in outcome.already_requested)},
                    messages.INFO,
                )
            if outcome.final:
                self.message_user(
                    request,
                    _("Skipped %(count)d final order(s): %(codes)s.")
                    % {"count": len(outcome.final), "codes": ", ".join(o.code for o in outcome.final)},
                    messages.WARNING,
                )
            return None
        if all(order.is_final for order in orders):
            self.message_user(
                request,
                _("None of the selected orders is open: final orders cannot be cancelled."),
                messages.ERROR,
            )
            return None
        return self.confirm_page(
            request,
            "admin/execution/order/cancel_confirm.html",
            action="ask_cancel",
            selected=orders,
            title=_("Ask the worker to cancel these orders?"),
            orders=orders,
        )


@admin.register(Fill)
class FillAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "traded_at",
        "account",
        "code",
        "side",
        "volume",
        "price",
        "amount",
        "fee",
        "trade_id",
        "order",
    ]
    list_filter = ["side", "account"]
    list_select_related = ["account", "order"]
    date_hierarchy = "traded_at"
    search_fields = ["code", "trade_id", "order__key"]


# --- state reported by the worker ---------------------------------------------------------------


@admin.register(AccountState)
class AccountStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["account", "cash", "frozen_cash", "market_value", "total_asset", "updated_at"]
    list_filter = ["account__mode"]
    list_select_related = ["account"]
    search_fields = ["account__name"]


@admin.register(Holding)
class HoldingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "account",
        "code",
        "volume",
        "can_use_volume",
        "avg_cost",
        "last_price",
        "market_value",
        "updated_at",
    ]
    list_filter = ["account"]
    list_select_related = ["account"]
    search_fields = ["code", "account__name"]


@admin.register(EquityPoint)
class EquityPointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "account", "cash", "market_value", "total_asset"]
    list_filter = ["account"]
    list_select_related = ["account"]
    date_hierarchy = "at"
    search_fields = ["account__name"]


@admin.register(WorkerLease)
class WorkerLeaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["account", "holder", "acquired_at", "heartbeat_at", "expires_at", "is_active"]
    list_select_related = ["account"]
    search_fields = ["account__name", "holder"]

    @admin.display(boolean=True, description=_("active"))
    def is_active(self, obj):
        return obj.expires_at >= timezone.now()


class ManualQuoteForm(CodeFormMixin, forms.ModelForm):
    class Meta:
        model = ManualQuote
        fields = ["code", "last_price", "prev_close", "up_stop", "down_stop", "suspended"]


@admin.register(ManualQuote)
class ManualQuoteAdmin(admin.ModelAdmin):
    form = ManualQuoteForm
    list_display = ["code", "last_price", "prev_close", "up_stop", "down_stop", "suspended", "updated_at"]
    list_filter = ["suspended"]
    search_fields = ["code"]
    readonly_fields = ["updated_at"]


# --- the paper broker's own books ---------------------------------------------------------------


@admin.register(PaperBook)
class PaperBookAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["account", "cash", "frozen_cash", "next_order_id", "next_trade_id"]
    list_select_related = ["account"]
    search_fields = ["account__name"]


@admin.register(PaperPosition)
class PaperPositionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["account", "code", "volume", "avg_price", "bought_today", "bought_on", "frozen_volume"]
    list_filter = ["account"]
    list_select_related = ["account"]
    search_fields = ["code", "account__name"]


@admin.register(PaperOrder)
class PaperOrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "account",
        "broker_order_id",
        "remark",
        "code",
        "side",
        "volume",
        "price",
        "status_label",
        "traded_volume",
        "traded_price",
        "price_source",
    ]
    list_filter = ["account", "side", "price_source"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    search_fields = ["code", "remark", "=broker_order_id"]

    @admin.display(description=_("status"), ordering="status")
    def status_label(self, obj):
        return OrderStatus(obj.status).label if obj.status in OrderStatus.values else obj.status


@admin.register(PaperTrade)
class PaperTradeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "traded_at",
        "account",
        "trade_id",
        "code",
        "side",
        "volume",
        "price",
        "amount",
        "commission",
        "stamp_duty",
        "fee",
    ]
    list_filter = ["account", "side"]
    list_select_related = ["account"]
    date_hierarchy = "traded_at"
    search_fields = ["code", "trade_id"]

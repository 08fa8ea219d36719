"""Execution admin: accounts."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from qmtjq import display
from qmtjq.admin_widgets import ReadableFieldsMixin
from qmtjq.trading import trading_globally_enabled

from ..models import (
    BrokerAccount,
    ReservedHolding,
    Subscription,
)
from ..services import admin_actions
from .base import (
    CodeFormMixin,
    ConfirmedActionsMixin,
    _buttons,
    _related_or_none,
)
from .lease import lease_history_html

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
    "hold_rule_exits",
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
class BrokerAccountAdmin(ReadableFieldsMixin, ConfirmedActionsMixin, admin.ModelAdmin):
    form = BrokerAccountForm
    ratio_fields = ("approval_threshold", "slippage", "commission_rate", "stamp_duty_rate")
    list_display = [
        "name",
        "account_id",
        "mode_label",
        "trading_enabled",
        "enabled",
        "enforce_trading_hours",
        "stale_after_shown",
        "approval_threshold_shown",
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
    readonly_fields = ["mode_label", "tools", "state_summary", "lease_summary", "lease_history", "created_at"]

    @admin.display(description=_("targets stale after"), ordering="stale_after")
    def stale_after_shown(self, obj):
        return display.duration(obj.stale_after)

    @admin.display(description=_("approval threshold"), ordering="approval_threshold")
    def approval_threshold_shown(self, obj):
        return _("never held") if obj.approval_threshold is None else display.percent(obj.approval_threshold)

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
                (
                    _("Worker and state"),
                    {"fields": ["state_summary", "lease_summary", "lease_history", "created_at"]},
                )
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
            return format_html('<span class="mode-label live">{}</span>', obj.get_mode_display())
        return format_html('<span class="mode-label">{}</span>', obj.get_mode_display())

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
            return format_html('<span class="lease-expired">{} ({})</span>', lease.holder, _("expired"))
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

    @admin.display(description=_("Lease history"))
    def lease_history(self, obj):
        return lease_history_html(obj)

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
            global_switch_off=not trading_globally_enabled(),
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

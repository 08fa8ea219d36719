"""Execution admin: state."""

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..models import (
    AccountState,
    EquityPoint,
    Holding,
    LeaseEvent,
    ManualQuote,
    WorkerLease,
)
from .base import (
    CodeFormMixin,
    ReadOnlyAdminMixin,
)

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


@admin.register(LeaseEvent)
class LeaseEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who took which account from whom, at which epoch and why: written by the lease service only."""

    list_display = ["at", "account", "kind", "holder", "previous_holder", "epoch", "reason"]
    list_filter = ["kind", "reason", "account"]
    list_select_related = ["account"]
    search_fields = ["account__name", "holder", "previous_holder"]
    date_hierarchy = "at"


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

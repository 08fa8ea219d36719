"""Execution admin: paper."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ..models import (
    OrderStatus,
    PaperBook,
    PaperOrder,
    PaperPosition,
    PaperTrade,
)
from .base import (
    ReadOnlyAdminMixin,
)

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
        "transfer_fee",
        "fee",
    ]
    list_filter = ["account", "side"]
    list_select_related = ["account"]
    date_hierarchy = "traded_at"
    search_fields = ["code", "trade_id"]

"""Execution admin: orders."""

from decimal import Decimal

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from qmtjq import display

from ..models import (
    Fill,
    Order,
    OrderEvent,
    Round,
)
from ..quotes import SOURCE_TARGET_COST
from ..services import admin_actions
from ..services import rounds as round_services
from ..views import round_skips_labelled
from .base import (
    ConfirmedActionsMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    _buttons,
    _related_or_none,
)
from .large import LargeTableAdminMixin, PriceSourceFilter, search_q

# --- rounds and orders --------------------------------------------------------------------------


class RoundOrderInline(ReadOnlyInline):
    model = Order
    fields = ["code", "side", "volume", "limit_price", "status", "filled_volume", "avg_fill_price", "key"]
    show_change_link = True


class RoundChangeList(ChangeList):
    """Order counts for the rounds of the page only, in one grouped query on the order table's round
    index. Any count in the rounds query itself (a join, or a subquery per row) was computed for every
    round before the page's LIMIT: 1.8-4 s at 222,000 rounds and 1,000,000 orders."""

    def get_results(self, request):
        super().get_results(request)
        rounds = list(self.result_list)
        counts = dict(
            Order.objects.filter(round__in=[r.pk for r in rounds])
            .order_by()
            .values_list("round")
            .annotate(n=Count("pk"))
        )
        for round_ in rounds:
            round_.orders_count_shown = counts.get(round_.pk, 0)
        self.result_list = rounds


@admin.register(Round)
class RoundAdmin(LargeTableAdminMixin, ConfirmedActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    # Rounds grow with every cycle that trades: bounded counts, no facets, accounts prefetched
    # (joined, MariaDB sorted every round for the page: 1.0 s at 222,000 rounds).
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
    # No date_hierarchy: its year links are a SELECT DISTINCT over every round (1.8 s at 222,000 rounds).
    list_filter = ["status", "trigger", "account", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ()  # () = no join at all (False would join the list's foreign keys)
    list_prefetch_related = ("account", "approved_by")
    search_fields = ["account__name", "message"]
    fields = [
        "account",
        "trigger",
        "status",
        "message_shown",
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
    readonly_fields = ["tools", "message_shown", "targets_pretty", "planned_pretty", "diff_pretty", "skips_pretty"]
    inlines = [RoundOrderInline]
    actions = ["approve_held"]
    object_actions = ("approve_held",)

    def get_changelist(self, request, **kwargs):
        return RoundChangeList

    def has_approve_permission(self, request):
        return self.has_model_permission(request, "change")

    @admin.display(description=_("orders"))
    def orders_count(self, obj):
        count = getattr(obj, "orders_count_shown", None)  # set for the changelist's page
        return obj.orders.count() if count is None else count

    @admin.display(description=_("skipped lines"))
    def skips_count(self, obj):
        return len(obj.skips or [])

    @admin.display(description=_("message"), ordering="message")
    def short_message(self, obj):
        return Truncator(display.round_message(obj)).chars(80)

    @admin.display(description=_("message"))
    def message_shown(self, obj):
        return display.round_message(obj) or "—"

    # The same tables as the round page, so a trader reads a round one way everywhere.
    @staticmethod
    def _round_table(name: str, **context):
        return render_to_string(f"execution/_round_{name}.html", {"in_admin": True, **context})

    @admin.display(description=_("target versions used"))
    def targets_pretty(self, obj):
        return self._round_table("targets", targets=sorted((obj.targets or {}).items()))

    @admin.display(description=_("planned orders"))
    def planned_pretty(self, obj):
        return self._round_table("planned", planned=obj.planned, target_cost=SOURCE_TARGET_COST)

    @admin.display(description=_("diff"))
    def diff_pretty(self, obj):
        return self._round_table("diff", diff=obj.diff)

    @admin.display(description=_("skipped lines"))
    def skips_pretty(self, obj):
        return self._round_table("skips", skips=round_skips_labelled(round_=obj))

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
class OrderAdmin(LargeTableAdminMixin, ConfirmedActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
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
    # No date_hierarchy: its year links are a SELECT DISTINCT over every order; the date filter's
    # choices (today, 7 days, month, year) cost nothing and filter on the created_at index.
    list_filter = ["status", "side", "account", PriceSourceFilter, ("created_at", admin.DateFieldListFilter)]
    list_select_related = ()
    list_prefetch_related = ("account",)
    search_fields = ["code", "key", "broker_order_id"]  # see get_search_results
    search_help_text = _("A code (600000.SH) or its first digits, an order key or a broker order id.")
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

    def get_search_results(self, request, queryset, search_term):
        for term in search_term.split():
            queryset = queryset.filter(
                search_q(term, code_field="code", key_field="key", number_field="broker_order_id")
            )
        return queryset, False

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
class FillAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
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
    list_filter = ["side", "account", ("traded_at", admin.DateFieldListFilter)]  # no date_hierarchy: see OrderAdmin
    list_select_related = ()
    list_prefetch_related = ("account", "order")
    search_fields = ["code", "trade_id", "order__key"]  # see get_search_results
    search_help_text = _("A code (600000.SH) or its first digits, a broker trade id or an order key.")

    def get_search_results(self, request, queryset, search_term):
        for term in search_term.split():
            queryset = queryset.filter(
                search_q(term, code_field="code", key_field="order__key") | Q(trade_id=term)
            )
        return queryset, False

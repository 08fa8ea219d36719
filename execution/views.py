"""Pages: order history (with CSV export), rounds, accounts."""

import csv
from collections.abc import Iterator

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from positions.models import Strategy
from qmtjq.names import security_names_get
from qmtjq.trading import trading_globally_enabled
from qmtjq.validation import InputError, query_page

from . import account_tables, charts, pagination, selectors, selectors_pnl, selectors_status
from .calendar import SHANGHAI
from .filters import OrderFilterForm, RoundFilterForm, order_filter_apply, round_filter_apply
from .models import BrokerAccount, Order, OrderStatus, Round
from .planner import SkipReason
from .quotes import SOURCE_TARGET_COST

PAGE_SIZE = 50
# Order lists prefetch their accounts instead of joining them: with the join, MariaDB reads the
# few accounts first and sorts the whole order table for ORDER BY created_at LIMIT 50 (7 s at 1M).
EXPORT_BATCH = 1000
LATEST_ROUNDS = 10

SKIP_REASON_LABELS = {
    SkipReason.IGNORED: gettext_lazy("ignored (never traded or on the ignore list)"),
    SkipReason.UNMANAGED: gettext_lazy("unmanaged holding, left alone"),
    SkipReason.NO_QUOTE: gettext_lazy("no quote"),
    SkipReason.SUSPENDED: gettext_lazy("suspended"),
    SkipReason.LIMIT_UP: gettext_lazy("limit-up, cannot buy"),
    SkipReason.LIMIT_DOWN: gettext_lazy("limit-down, cannot sell"),
    SkipReason.LOT_TOO_SMALL: gettext_lazy("less than one lot"),
    SkipReason.T_PLUS_1: gettext_lazy("T+1: not sellable today"),
    SkipReason.CASH: gettext_lazy("not enough cash"),
    SkipReason.RISK_ORDER_CAP: gettext_lazy("over the max order value"),
    SkipReason.RISK_TURNOVER_CAP: gettext_lazy("over the max daily turnover"),
    SkipReason.NOT_TRADABLE: gettext_lazy("not tradable"),
}


def round_skips_labelled(*, round_: Round) -> list[dict]:
    """The round's skipped lines with a translated label for their reason code."""
    return [
        {**skip, "label": SKIP_REASON_LABELS.get(skip.get("reason"), skip.get("reason"))}
        for skip in round_.skips or []
        if isinstance(skip, dict)
    ]


def _page(request, queryset: QuerySet):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _reverse_or_none(name: str, *args) -> str | None:
    # Admin pages of execution models are optional here: no link rather than a crash.
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _related_or_none(instance, name: str):
    try:
        return getattr(instance, name)
    except ObjectDoesNotExist:
        return None


# --- orders ---


def _page_number(request) -> int:
    # Bad page numbers show page 1, as Django's Paginator.get_page does.
    try:
        return query_page(request.GET)
    except InputError:
        return 1


def _cursor(request) -> pagination.Cursor | None:
    # A damaged cursor shows page 1 too.
    try:
        return pagination.cursor_decode(request.GET["cursor"]) if request.GET.get("cursor") else None
    except InputError:
        return None


def _names_of(codes) -> dict[str, str]:
    """Every code shown, with "" for codes without a name, so the template never asks per row."""
    codes = set(codes)
    return {code: "" for code in codes} | security_names_get(codes)


@login_required
def order_list(request):
    form = OrderFilterForm(request.GET)
    orders, errors = order_filter_apply(Order.objects.prefetch_related("account"), form)
    page = None
    if not errors:  # a half-applied filter would look like a wrong answer: show the errors, not rows
        page = pagination.order_page_get(
            queryset=orders, size=PAGE_SIZE, page=_page_number(request), cursor=_cursor(request), clamp=True
        )
    return render(
        request,
        "execution/order_list.html",
        {
            "form": form,
            "errors": errors,
            "page": page,
            "strategy_names": Strategy.objects.order_by("name").values_list("name", flat=True),
            "target_cost": SOURCE_TARGET_COST,
            "security_names": _names_of(order.code for order in page.rows) if page else {},
        },
    )


@login_required
def order_detail(request, pk: int):
    order = get_object_or_404(Order.objects.select_related("account", "round"), pk=pk)
    return render(
        request,
        "execution/order_detail.html",
        {
            "order": order,
            "fills": order.fills.all(),
            "events": order.events.all(),
            "target_cost": SOURCE_TARGET_COST,
        },
    )


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer can feed a stream."""

    def write(self, value: str) -> str:
        return value


def _orders_in_batches(queryset: QuerySet) -> Iterator[Order]:
    """All rows newest first, fetched by keyset in batches.

    mysqlclient reads a whole result set into memory even with .iterator(),
    so a big export is cut into bounded queries instead.
    """
    queryset = queryset.order_by("-created_at", "-id")
    after = None
    while True:
        batch = queryset
        if after is not None:
            batch = batch.filter(
                Q(created_at__lt=after.created_at) | Q(created_at=after.created_at, id__lt=after.id)
            )
        rows = list(batch[:EXPORT_BATCH])
        yield from rows
        if len(rows) < EXPORT_BATCH:
            return
        after = rows[-1]


def _text_cell(value: str) -> str:
    # Excel runs a cell starting with = + - @ as a formula; strategy names and reasons come from users.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv_lines(queryset: QuerySet) -> Iterator[str]:
    # Labels are resolved now, while the request's language is active; the rows stream later.
    header = [
        _("Created at"),
        _("Account"),
        _("Code"),
        _("Side"),
        _("Volume"),
        _("Limit price"),
        _("Status code"),
        _("Status"),
        _("Filled volume"),
        _("Average fill price"),
        _("Price source"),
        _("Strategies"),
        _("Reason"),
        _("Order key"),
        _("Broker order id"),
    ]
    sides = {value: str(label) for value, label in Order.Side.choices}
    statuses = {value: str(label) for value, label in OrderStatus.choices}
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        # The BOM makes Excel (Chinese Windows) read the file as UTF-8 instead of GBK.
        yield "\ufeff" + writer.writerow(header)
        for order in _orders_in_batches(queryset):
            yield writer.writerow(
                [
                    timezone.localtime(order.created_at, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
                    order.account.name,
                    order.code,
                    sides.get(order.side, order.side),
                    order.volume,
                    order.limit_price,
                    order.status,
                    statuses.get(order.status, str(order.status)),
                    order.filled_volume,
                    "" if order.avg_fill_price is None else order.avg_fill_price,
                    order.price_source,
                    _text_cell(";".join(str(name) for name in order.strategies or [])),
                    _text_cell(order.reason),
                    order.key,
                    "" if order.broker_order_id is None else order.broker_order_id,
                ]
            )

    return lines()


@login_required
def order_export_csv(request):
    """The orders page's rows (same filters, no pagination) as a streamed CSV file."""
    form = OrderFilterForm(request.GET)
    orders, errors = order_filter_apply(Order.objects.prefetch_related("account"), form)
    if errors:
        text = "\n".join(f"{field}: {message}" for field, message in errors.items())
        return HttpResponse(text + "\n", status=400, content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(_csv_lines(orders), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime(timezone.now(), SHANGHAI).strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="orders-{stamp}.csv"'
    return response


# --- rounds ---


def _rounds_newest_first(queryset: QuerySet) -> QuerySet:
    return queryset.prefetch_related("account").defer("diff", "planned").order_by("-created_at", "-id")


def _with_order_counts(rounds) -> list[Round]:
    """The shown rounds with `order_count`, counted for those rounds only.

    An annotated Count over the whole list would group every round's orders
    (hundreds of thousands) before the page's LIMIT applies.
    """
    rounds = list(rounds)
    counts = dict(
        Order.objects.filter(round_id__in=[r.pk for r in rounds])
        .order_by()
        .values("round_id")
        .annotate(n=Count("id"))
        .values_list("round_id", "n")
    )
    for round_ in rounds:
        round_.order_count = counts.get(round_.pk, 0)
    return rounds


@login_required
def round_list(request):
    form = RoundFilterForm(request.GET)
    rounds, errors = round_filter_apply(_rounds_newest_first(Round.objects.all()), form)
    page_obj = None
    if not errors:
        page_obj = _page(request, rounds)
        page_obj.object_list = _with_order_counts(page_obj.object_list)
    return render(
        request,
        "execution/round_list.html",
        {"form": form, "errors": errors, "page_obj": page_obj},
    )


@login_required
def round_detail(request, pk: int):
    round_ = get_object_or_404(Round.objects.select_related("account", "approved_by"), pk=pk)
    skips = round_skips_labelled(round_=round_)
    return render(
        request,
        "execution/round_detail.html",
        {
            "round": round_,
            "held_here": [round_],
            "targets": sorted((round_.targets or {}).items()),
            "skips": skips,
            "diff": round_.diff,
            "planned": round_.planned,
            "orders": round_.orders.select_related("account"),
            "target_cost": SOURCE_TARGET_COST,
            "admin_url": _reverse_or_none("admin:execution_round_change", round_.pk)
            if request.user.is_staff
            else None,
        },
    )


# --- accounts ---


def _lease_running(lease, now) -> bool:
    return lease is not None and lease.expires_at > now


@login_required
def account_list(request):
    now = timezone.now()
    accounts = BrokerAccount.objects.select_related("state", "lease")
    rows = [
        {
            "account": account,
            "state": _related_or_none(account, "state"),
            "worker_running": _lease_running(_related_or_none(account, "lease"), now),
        }
        for account in accounts
    ]
    return render(
        request,
        "execution/account_list.html",
        {
            "rows": rows,
            "global_trading_enabled": trading_globally_enabled(),
            "statuses": selectors_status.account_statuses(now=now),
            "held_rounds": selectors_status.held_rounds(),
        },
    )


@login_required
def account_detail(request, name: str):
    account = get_object_or_404(BrokerAccount.objects.select_related("state", "lease"), name=name)
    lease = _related_or_none(account, "lease")
    state = _related_or_none(account, "state")
    now = timezone.now()
    curve = selectors_pnl.equity_curve(account=account)
    tracking = selectors_pnl.tracking(account=account, curve=curve)
    drift = selectors.drift(account=account)
    holdings = selectors_pnl.holdings_pnl(account=account, total_asset=state.total_asset if state else None)
    status = selectors_status.account_status(account=account, now=now, drift=drift)
    reserved = list(account.reserved.all())
    open_orders = selectors.open_orders_list(account=account)
    names = _names_of(
        [h.code for h in holdings]
        + [row["code"] for row in drift]
        + [line.code for line in reserved]
        + [order.code for order in open_orders]
    )
    return render(
        request,
        "execution/account_detail.html",
        {
            "account": account,
            "state": state,
            "status": status,
            "status_list": [status],
            "held_rounds": selectors_status.held_rounds(accounts=[account]),
            "holdings": holdings,
            "drift": drift,
            "reserved": reserved,
            "subscriptions": account.subscriptions.select_related("strategy").order_by("strategy__name"),
            "rounds": _with_order_counts(_rounds_newest_first(account.rounds.all())[:LATEST_ROUNDS]),
            "open_orders": open_orders,
            "lease": lease,
            "worker_running": _lease_running(lease, now),
            "global_trading_enabled": trading_globally_enabled(),
            "target_cost": SOURCE_TARGET_COST,
            "curve": curve,
            "drawdown": selectors_pnl.drawdown(curve),
            "equity_chart": charts.equity_chart(curve, title=_("Total asset")),
            "tracking": [
                {
                    "row": row,
                    "chart": charts.tracking_chart(row.series, account=account.name, strategy=row.strategy),
                    "chart_id": f"tracking-data-{index}",
                }
                for index, row in enumerate(tracking)
            ],
            "slippage": selectors_pnl.slippage(account=account, now=now),
            "security_names": names,
            # The three long tables, written in one pass (account_tables: the template engine per cell was most of the page).
            "holdings_rows": account_tables.holdings_rows(holdings, names=names),
            "drift_rows": account_tables.drift_rows(drift, names=names),
            "equity_rows": account_tables.equity_rows(curve),
        },
    )

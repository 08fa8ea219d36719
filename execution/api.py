"""Read API for accounts and orders (same auth as the ingest API)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from positions.api import format_time
from positions.authentication import ClientAuth
from positions.schema import text_param_schema
from qmtjq.api import ApiError, ApiView
from qmtjq.validation import PAGE_MAX, query_page

from . import selectors
from .filters import orders_filter
from .models import AccountState, BrokerAccount, Order
from .pagination import cursor_decode, order_page_get

ACCOUNT_NAME = OpenApiParameter("name", text_param_schema(max_length=100), OpenApiParameter.PATH)


def _require_unscoped(request) -> None:
    """Accounts mix strategies: a client limited to some strategies may not read them."""
    auth = request.auth
    if isinstance(auth, ClientAuth) and not auth.client.all_strategies:
        raise ApiError(
            f"client {auth.client.client_id!r} is limited to some strategies and may not read accounts", 403
        )


def _account(name: str) -> BrokerAccount:
    account = BrokerAccount.objects.filter(name=name).first()
    if account is None:
        raise ApiError(f"account {name!r} does not exist", 404)
    return account


def _money(value) -> float | None:
    return float(value) if value is not None else None


class AccountPositionsApi(ApiView):
    @extend_schema(
        summary="An account's cash and holdings as last reported by its worker",
        parameters=[ACCOUNT_NAME],
        responses={200: dict},
    )
    def get(self, request, name: str):
        _require_unscoped(request)
        account = _account(name)
        state = AccountState.objects.filter(account=account).first()
        holdings = account.holdings.order_by("code")
        return Response(
            {
                "account": account.name,
                "mode": account.mode,
                "cash": _money(state.cash) if state else None,
                "frozen_cash": _money(state.frozen_cash) if state else None,
                "total_asset": _money(state.total_asset) if state else None,
                "positions": [
                    {
                        "code": h.code,
                        "volume": h.volume,
                        "can_use_volume": h.can_use_volume,
                        "avg_cost": _money(h.avg_cost),
                        "last_price": _money(h.last_price),
                        "market_value": _money(h.market_value),
                    }
                    for h in holdings
                ],
                "updated_at": format_time(state.updated_at) if state else None,
            }
        )


class AccountDriftApi(ApiView):
    @extend_schema(
        summary="Target vs actual per code for an account", parameters=[ACCOUNT_NAME], responses={200: dict}
    )
    def get(self, request, name: str):
        _require_unscoped(request)
        account = _account(name)
        state = AccountState.objects.filter(account=account).first()
        return Response(
            {
                "account": account.name,
                "rows": selectors.drift(account=account),
                "updated_at": format_time(state.updated_at) if state else None,
            }
        )


ORDERS_PAGE_SIZE = 100


def _order_out(order) -> dict:
    return {
        "id": order.pk,
        "key": order.key,
        "account": order.account.name,
        "code": order.code,
        "side": order.side,
        "volume": order.volume,
        "limit_price": float(order.limit_price),
        "price_source": order.price_source,
        "status": order.status,
        "status_label": order.get_status_display(),
        "final": order.is_final,
        "filled_volume": order.filled_volume,
        "avg_fill_price": _money(order.avg_fill_price),
        "broker_order_id": order.broker_order_id,
        "strategies": order.strategies,
        "reason": order.reason,
        "message": order.message,
        "round": order.round_id,
        "created_at": format_time(order.created_at),
        "sent_at": format_time(order.sent_at),
        "updated_at": format_time(order.updated_at),
    }


class OrdersApi(ApiView):
    @extend_schema(
        summary="Order history, newest first, 100 per page",
        description=(
            "`count` is exact up to 1,000 rows; beyond that `count_exact` is false and `count` is 1,000 "
            "(a lower bound). `next` / `previous` carry a `cursor` (keyset on created_at, id): following "
            "them costs the same at any depth, while a large `page` number reads every row it skips."
        ),
        parameters=[
            OpenApiParameter("account", text_param_schema(max_length=100)),
            OpenApiParameter(
                "status",
                text_param_schema(max_length=5, pattern=r"^([0-9]{2,3}|open|final)$"),
                description="xtquant status code, 'open' or 'final'",
            ),
            OpenApiParameter("strategy", text_param_schema(max_length=100)),
            OpenApiParameter("side", str, enum=["buy", "sell"]),
            OpenApiParameter(
                "code",
                text_param_schema(max_length=16),
                description="A full code (600000.SH, 600000.XSHG) or its first digits",
            ),
            OpenApiParameter("date_from", {"type": "string", "format": "date"}),
            OpenApiParameter("date_to", {"type": "string", "format": "date"}),
            OpenApiParameter("since", {"type": "string", "format": "date-time"}, description="ISO 8601"),
            OpenApiParameter(
                "cursor",
                text_param_schema(max_length=60),
                description="From a next/previous link; not together with page",
            ),
            OpenApiParameter(
                "page",
                {"type": "integer", "minimum": 1, "maximum": PAGE_MAX, "default": 1},
                description="ASCII digits only",
            ),
        ],
        responses={200: dict},
    )
    def get(self, request):
        _require_unscoped(request)
        # Prefetched, not joined: see execution.views.PAGE_SIZE.
        queryset, errors = orders_filter(Order.objects.prefetch_related("account"), request.query_params)
        if errors:
            raise ApiError("; ".join(f"{field}: {message}" for field, message in errors.items()))
        page = query_page(request.query_params)
        cursor = None
        if request.query_params.get("cursor"):
            if "page" in request.query_params:
                raise ApiError("page: give page or cursor, not both")
            cursor = cursor_decode(request.query_params["cursor"])
        result = order_page_get(
            queryset=queryset, size=ORDERS_PAGE_SIZE, page=page, cursor=cursor, deep_pages=False
        )

        def link(cursor_text):
            params = request.query_params.copy()
            params.pop("page", None)
            params["cursor"] = cursor_text
            return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")

        return Response(
            {
                "count": result.count,
                "count_exact": result.count_exact,
                "page": result.number,
                "next": link(result.next_cursor) if result.next_cursor else None,
                "previous": link(result.previous_cursor) if result.previous_cursor else None,
                "results": [_order_out(order) for order in result.rows],
            }
        )

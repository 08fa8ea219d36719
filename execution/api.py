"""Read API for accounts and orders (same auth as the ingest API)."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from positions.api import format_time
from positions.authentication import ClientAuth
from qmtjq.api import ApiError

from . import selectors
from .models import AccountState, BrokerAccount


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


class AccountPositionsApi(APIView):
    @extend_schema(
        summary="An account's cash and holdings as last reported by its worker", responses={200: dict}
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


class AccountDriftApi(APIView):
    @extend_schema(summary="Target vs actual per code for an account", responses={200: dict})
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

"""Ingest and read API (DESIGN §7). Views are thin: parse, call a service, shape the answer."""

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from qmtjq.api import ApiError, ApiView, request_json
from qmtjq.validation import query_text

from . import selectors, services
from .authentication import ClientAuth, client_ip
from .models import Strategy
from .permissions import IsApiClient
from .schema import text_param_schema
from .validation import (
    MAX_VOLUME,
    SECURITY_NAME_MAX,
    SNAPSHOT_ID_RE,
    STRATEGY_NAME_MAX,
    parse_upload,
    validate_strategy_name,
)

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def format_time(value) -> str | None:
    return timezone.localtime(value).strftime(TIME_FORMAT) if value else None


def _client(request):
    return request.auth.client if isinstance(request.auth, ClientAuth) else None


def _line_out(line, update_time: str | None) -> dict:
    return {
        "code": line.jq_code,
        "qmt_code": line.code,
        "name": line.name,
        "volume": line.volume,
        "cost": float(line.cost),
        "update_time": update_time,
    }


def _strategy_out(strategy: Strategy) -> dict:
    snapshot = strategy.current_snapshot
    update_time = format_time(snapshot.created_at) if snapshot else None
    return {
        "strategy_name": strategy.name,
        "positions": [_line_out(line, update_time) for line in selectors.target_lines(strategy)],
        "update_time": update_time,
        "confirmed_time": format_time(strategy.confirmed_at),
        "total_value": float(snapshot.total_value) if snapshot and snapshot.total_value is not None else None,
        "cash": float(snapshot.cash) if snapshot and snapshot.cash is not None else None,
    }


_position_in = inline_serializer(
    "PositionIn",
    {
        "code": serializers.CharField(
            min_length=6, max_length=16, help_text="600000.XSHG, 000001.SZ, sh600000 ..."
        ),
        "volume": serializers.IntegerField(min_value=0, max_value=MAX_VOLUME - 1),
        "cost": serializers.FloatField(min_value=0),
        "name": serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=SECURITY_NAME_MAX,
            help_text="No control or invisible formatting characters.",
        ),
    },
)
STRATEGY_NAME_SCHEMA = text_param_schema(max_length=STRATEGY_NAME_MAX, pattern=r"^[^/]+$")
_error_out = inline_serializer("Error", {"error": serializers.CharField()})


class PositionsUpdateApi(ApiView):
    permission_classes = [IsApiClient]

    @extend_schema(
        request=inline_serializer(
            "PositionsUpdateIn",
            {
                "strategy_name": serializers.CharField(
                    min_length=1,
                    max_length=STRATEGY_NAME_MAX,
                    help_text="No '/', control or invisible formatting characters; no surrounding spaces.",
                ),
                "positions": _position_in.__class__(many=True),
                "total_value": serializers.FloatField(required=False, allow_null=True),
                "cash": serializers.FloatField(required=False, allow_null=True),
                "snapshot_id": serializers.RegexField(
                    SNAPSHOT_ID_RE.pattern, required=False, min_length=1, max_length=64
                ),
            },
        ),
        responses={
            200: inline_serializer(
                "PositionsUpdateOut",
                {
                    "message": serializers.CharField(),
                    "client_id": serializers.CharField(),
                    "auth_type": serializers.CharField(),
                    "strategy_name": serializers.CharField(),
                    "snapshot_id": serializers.CharField(),
                    "changed": serializers.BooleanField(),
                    "duplicate": serializers.BooleanField(),
                    "positions_count": serializers.IntegerField(),
                    "update_time": serializers.CharField(),
                },
            ),
            400: _error_out,
            401: _error_out,
            403: _error_out,
            409: _error_out,
            413: _error_out,
            429: _error_out,
        },
        summary="Upload a strategy's target positions",
    )
    def post(self, request):
        upload = parse_upload(request_json(request))
        auth = request.auth
        result = services.snapshot_ingest(
            upload=upload, client=auth.client, auth_type=auth.auth_type, remote_addr=client_ip(request)
        )
        if result.duplicate:
            message = "duplicate snapshot_id: returning the first result, nothing stored"
        elif result.changed:
            message = "positions updated"
        else:
            message = "positions unchanged; target confirmed"
        return Response(
            {
                "message": message,
                "client_id": auth.client.client_id,
                "auth_type": auth.auth_type,
                "strategy_name": result.strategy.name,
                "snapshot_id": result.snapshot_id,
                "changed": result.changed,
                "duplicate": result.duplicate,
                "positions_count": result.snapshot.positions_count,
                "update_time": format_time(result.received_at),
            }
        )


class StrategyPositionsApi(ApiView):
    @extend_schema(
        summary="A strategy's current target positions",
        parameters=[OpenApiParameter("name", STRATEGY_NAME_SCHEMA, OpenApiParameter.PATH)],
        responses={200: dict, 403: _error_out, 404: _error_out},
    )
    def get(self, request, name: str):
        validate_strategy_name(name, "strategy name")
        strategy = services.strategy_get(name=name)
        client = _client(request)
        if client is not None and not client.allows_strategy(name):
            raise ApiError(f"client {client.client_id!r} may not read strategy {name!r}", 403)
        if strategy is None:
            raise ApiError(f"strategy {name!r} does not exist", 404)
        (strategy,) = selectors.strategies_with_targets(Strategy.objects.filter(pk=strategy.pk))
        return Response(_strategy_out(strategy))


class TotalPositionsApi(ApiView):
    @extend_schema(
        summary="Sum of current targets over strategies",
        parameters=[
            OpenApiParameter(
                "strategies",
                text_param_schema(max_length=10_000),
                description="Comma-separated strategy names",
            )
        ],
        responses={200: dict, 403: _error_out, 404: _error_out},
    )
    def get(self, request):
        client = _client(request)
        queryset = selectors.strategies_visible(client=client)
        requested = query_text(request.query_params, "strategies", max_length=10_000)
        if requested:
            names = [name.strip() for name in requested.split(",") if name.strip()]
            strategies = []
            for name in names:
                validate_strategy_name(name, "strategies")
                strategy = services.strategy_get(name=name)
                if client is not None and not client.allows_strategy(name):
                    raise ApiError(f"client {client.client_id!r} may not read strategy {name!r}", 403)
                if strategy is None:
                    raise ApiError(f"strategy {name!r} does not exist", 404)
                strategies.append(strategy.pk)
            queryset = queryset.filter(pk__in=strategies)
        strategies = selectors.strategies_with_targets(queryset)
        lines, latest = selectors.positions_total(strategies)
        return Response(
            {
                "positions": [
                    {
                        "code": line.jq_code,
                        "qmt_code": line.code,
                        "name": line.name,
                        "total_volume": line.total_volume,
                        "avg_cost": float(line.avg_cost),
                    }
                    for line in lines
                ],
                "strategies": [strategy.name for strategy in strategies],
                "update_time": format_time(latest),
            }
        )


class AllPositionsApi(ApiView):
    @extend_schema(summary="Every visible strategy with its current target", responses={200: dict})
    def get(self, request):
        strategies = selectors.strategies_with_targets(selectors.strategies_visible(client=_client(request)))
        return Response({"strategies": [_strategy_out(strategy) for strategy in strategies]})


class AuthInfoApi(ApiView):
    """Which auth schemes the server accepts. Public: it reveals nothing secret."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = []

    @extend_schema(summary="Accepted authentication schemes", responses={200: dict})
    def get(self, request):
        skew = settings.API_TOKEN_MAX_SKEW_SECONDS
        return Response(
            {
                "schemes": [
                    {"type": "api_key", "header": "X-API-Key"},
                    {
                        "type": "rsa_signature",
                        "header": "X-Auth-Token",
                        "versions": [1, 2],
                        "algorithm": "RSA-PSS MGF1-SHA256 max salt, SHA-256",
                        "signed": "json.dumps(auth_data, sort_keys=True)",
                        "v1_fields": ["client_id", "timestamp"],
                        "v2_fields": [
                            "client_id",
                            "timestamp",
                            "version",
                            "method",
                            "path",
                            "body_sha256",
                            "nonce",
                        ],
                        "max_clock_skew_seconds": skew,
                        "replay_protection": True,
                    },
                ],
                "server_time": int(timezone.now().timestamp()),
            }
        )

"""`POST /api/v1/rotation/<name>/selection`: a day's bond list for an uploaded-list rotation."""

from datetime import date

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from positions.authentication import client_ip
from positions.permissions import IsApiClient
from positions.schema import text_param_schema
from qmtjq.api import ApiError, ApiView, request_json
from qmtjq.validation import InputError, text_check

from .models import RotationStrategy, Selection
from .services import selection_store, selection_validate

BOND_NAME_MAX = 64
RANK_MAX = 2**31 - 1  # Selection items store the rank in a PositiveIntegerField


def _bonds_precheck(bonds: object) -> None:
    """Bond names follow the rules of security names (no control or invisible characters); ranks fit the column."""
    if not isinstance(bonds, list):
        return  # selection_validate names the shape error
    for index, item in enumerate(bonds):
        if not isinstance(item, dict):
            continue
        name, rank = item.get("name"), item.get("rank")
        if isinstance(name, str):
            text_check(name.strip(), f"bonds[{index}].name", max_length=BOND_NAME_MAX, name=True)
        if isinstance(rank, int) and not isinstance(rank, bool) and rank > RANK_MAX:
            raise InputError(f"bonds[{index}].rank: must be at most {RANK_MAX}")


class SelectionApi(ApiView):
    permission_classes = [IsApiClient]

    @extend_schema(
        summary="Post a rotation's selection for a trade date",
        request=inline_serializer(
            "SelectionIn",
            {
                "trade_date": serializers.DateField(help_text="YYYY-MM-DD"),
                "bonds": inline_serializer(
                    "SelectedBondIn",
                    {
                        "code": serializers.CharField(min_length=6, max_length=16),
                        "name": serializers.CharField(
                            required=False,
                            allow_blank=True,
                            max_length=BOND_NAME_MAX,
                            help_text="No control or invisible formatting characters.",
                        ),
                        "rank": serializers.IntegerField(required=False, min_value=1, max_value=RANK_MAX),
                        "trade_date": serializers.DateField(
                            required=False, help_text="If given, the list's trade_date."
                        ),
                    },
                    many=True,
                ),
            },
        ),
        parameters=[OpenApiParameter("name", text_param_schema(max_length=100), OpenApiParameter.PATH)],
        responses={200: dict},
    )
    def post(self, request, name: str):
        rotation = RotationStrategy.objects.select_related("strategy").filter(name=name).first()
        if rotation is None:
            raise ApiError(f"rotation {name!r} does not exist", 404)
        client = request.auth.client
        if not client.allows_strategy(rotation.strategy.name):
            raise ApiError(f"client {client.client_id!r} may not use rotation {name!r}", 403)
        payload = request_json(request)
        if not isinstance(payload, dict):
            raise ApiError("body must be a JSON object with trade_date and bonds")
        raw_date = payload.get("trade_date")
        try:
            trade_date = date.fromisoformat(raw_date) if isinstance(raw_date, str) else None
        except ValueError:
            trade_date = None
        if trade_date is None:
            raise ApiError("trade_date: required, as YYYY-MM-DD")
        _bonds_precheck(payload.get("bonds"))
        try:
            bonds = selection_validate(payload.get("bonds"), trade_date=trade_date)
        except ValueError as exc:
            raise ApiError(str(exc))
        selection = selection_store(
            rotation=rotation,
            trade_date=trade_date,
            bonds=bonds,
            source=Selection.Source.API,
            received_from=f"{client.client_id}@{client_ip(request) or '?'}",
        )
        return Response(
            {
                "rotation": rotation.name,
                "trade_date": trade_date.isoformat(),
                "selection_id": selection.pk,
                "bonds": [{"rank": i.rank, "code": i.code, "name": i.name} for i in selection.items.all()],
            }
        )

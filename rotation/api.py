"""`POST /api/v1/rotation/<name>/selection`: a day's bond list for an uploaded-list rotation."""

from datetime import date

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from positions.authentication import client_ip
from positions.permissions import IsApiClient
from positions.validation import UploadError, parse_json_body
from qmtjq.api import ApiError

from .models import RotationStrategy, Selection
from .services import selection_store, selection_validate


class SelectionApi(APIView):
    permission_classes = [IsApiClient]

    @extend_schema(
        summary="Post a rotation's selection for a trade date",
        request=inline_serializer(
            "SelectionIn",
            {
                "trade_date": serializers.DateField(),
                "bonds": inline_serializer(
                    "SelectedBondIn",
                    {
                        "code": serializers.CharField(),
                        "name": serializers.CharField(required=False),
                        "rank": serializers.IntegerField(required=False, min_value=1),
                        "trade_date": serializers.DateField(
                            required=False, help_text="If given, the list's trade_date."
                        ),
                    },
                    many=True,
                ),
            },
        ),
        responses={200: dict},
    )
    def post(self, request, name: str):
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > settings.API_MAX_BODY_BYTES:
            raise ApiError("request body is larger than 1 MiB", 413)
        rotation = RotationStrategy.objects.select_related("strategy").filter(name=name).first()
        if rotation is None:
            raise ApiError(f"rotation {name!r} does not exist", 404)
        client = request.auth.client
        if not client.allows_strategy(rotation.strategy.name):
            raise ApiError(f"client {client.client_id!r} may not use rotation {name!r}", 403)
        try:
            payload = parse_json_body(request.body)
        except UploadError as exc:
            raise ApiError(str(exc))
        if not isinstance(payload, dict):
            raise ApiError("body must be a JSON object with trade_date and bonds")
        raw_date = payload.get("trade_date")
        try:
            trade_date = date.fromisoformat(raw_date) if isinstance(raw_date, str) else None
        except ValueError:
            trade_date = None
        if trade_date is None:
            raise ApiError("trade_date: required, as YYYY-MM-DD")
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

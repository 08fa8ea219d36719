"""The worker endpoints: `GET /api/v1/worker/feed` (long-poll) and `POST /api/v1/worker/report`.

Only worker credentials get in (`auth`); each reads and writes its own account only.
"""

import re
from dataclasses import asdict

from django.conf import settings
from django.db import connection
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from positions.authentication import client_ip
from positions.validation import UploadError, parse_json_body
from qmtjq.api import ApiError

from ..models import BrokerAccount
from .auth import IsWorkerClient, WorkerAuthentication
from .feed import feed_build, feed_version
from .longpoll import FeedWatcherBusy, feed_waiters_limit, feed_watcher
from .mirror import ReportConflict, report_apply
from .parse import report_parse
from .report import ReportError
from .wire import time_out

_VERSION = re.compile(r'^(?:W/)?"?([0-9a-f]{1,64})"?$')


def _scoped_account(request, name: str | None) -> BrokerAccount:
    """The credential's account; naming any other account is refused (403), existing or not."""
    account = request.auth.client.account
    if name not in (None, "", account.name):
        raise ApiError(f"this worker credential may only use account {account.name!r}", 403)
    return account


def _version_asked(request) -> str:
    text = request.query_params.get("version") or request.META.get("HTTP_IF_NONE_MATCH") or ""
    match = _VERSION.match(text.strip())
    return match.group(1) if match else ""


class _WorkerApi(APIView):
    authentication_classes = [WorkerAuthentication]
    permission_classes = [IsWorkerClient]
    throttle_classes: list = []


class WorkerFeedApi(_WorkerApi):
    @extend_schema(
        summary="The account's feed for its trading PC; long-polls while ?version= is current",
        parameters=[
            OpenApiParameter("account", str, description="must be the credential's account (optional)"),
            OpenApiParameter("version", str, description="the version you have (or send If-None-Match)"),
        ],
        responses={200: dict, 304: None},
    )
    def get(self, request):
        account = _scoped_account(request, request.query_params.get("account"))
        asked = _version_asked(request)
        if asked and asked == feed_version(account_id=account.pk):
            # Wait without a database connection; one poller thread per process watches the version.
            connection.close()
            try:
                changed = feed_watcher().wait(
                    account_id=account.pk,
                    version=asked,
                    timeout=settings.WORKER_FEED_WAIT_SECONDS,
                    limit=feed_waiters_limit(),
                )
            except FeedWatcherBusy:
                # Every thread but one already waits: answer now, so uploads and pages keep a thread.
                response = self._not_modified(asked)
                response["Retry-After"] = str(settings.WORKER_FEED_BUSY_RETRY_SECONDS)
                return response
            if not changed:
                return self._not_modified(asked)
        feed = feed_build(account_id=account.pk)
        if feed["version"] == asked:
            return self._not_modified(asked)  # changed and changed back while we waited
        response = Response(feed)
        response["ETag"] = f'"{feed["version"]}"'
        response["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def _not_modified(version: str) -> Response:
        response = Response(status=304)
        response["ETag"] = f'"{version}"'
        response["Cache-Control"] = "no-store"
        return response


class WorkerReportApi(_WorkerApi):
    def initial(self, request, *args, **kwargs):
        # Before authentication reads the body for a v2 token.
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > settings.WORKER_REPORT_MAX_BYTES:
            raise ApiError(
                f"report is larger than {settings.WORKER_REPORT_MAX_BYTES} bytes; send smaller batches", 413
            )
        super().initial(request, *args, **kwargs)

    @extend_schema(
        summary="Store a batch of the trading PC's ledger (idempotent)", request=dict, responses={200: dict}
    )
    def post(self, request):
        try:
            report = report_parse(parse_json_body(request.body))
        except (UploadError, ReportError) as exc:
            raise ApiError(str(exc))
        account = _scoped_account(request, report.account)
        now = timezone.now()
        try:
            result = report_apply(
                account=account,
                client=request.auth.client,
                report=report,
                now=now,
                remote_addr=client_ip(request),
            )
        except ReportConflict as exc:
            raise ApiError(str(exc), 409)
        return Response({"stored": asdict(result), "server_time": time_out(now)})

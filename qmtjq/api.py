"""One place that turns errors into the API's `{"error": ...}` JSON."""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from .validation import InputError, json_parse, query_params_check, text_check

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A domain error with the HTTP status it maps to."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """The API speaks JSON only: answer JSON whatever `Accept` says.

    DRF's default negotiation parses `Accept` on every request to choose among
    renderers (and answers 406 when none matches); with one renderer there is
    nothing to choose (issue 12: per-request CPU). Parsers are still chosen by
    Content-Type as before.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type


class ApiView(APIView):
    """Base of every API view: after auth, every query and path parameter is checked before the handler runs."""

    content_negotiation_class = JsonOnlyNegotiation

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        query_params_check(request.query_params)
        for field, value in kwargs.items():
            if isinstance(value, str):
                text_check(value, field, max_length=200)


def request_json(request) -> object:
    """The request's JSON body, size-checked (413) and decoded strictly (400 naming the field)."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isascii() or not length.isdigit():
        raise ApiError("Content-Length: must be a whole number of bytes")
    if int(length) > settings.API_MAX_BODY_BYTES:
        raise ApiError("request body is larger than 1 MiB", 413)
    return json_parse(request.body)


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(item) for item in detail)
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, ApiError):
        return Response({"error": exc.message}, status=exc.status_code)
    if isinstance(exc, InputError):
        return Response({"error": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"error": "request body is larger than 1 MiB"}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        )
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 0) + 1 if exc.wait is not None else None
        message = "rate limit exceeded" + (f"; retry in {wait} s" if wait else "")
        response = Response({"error": message}, status=status.HTTP_429_TOO_MANY_REQUESTS)
        if wait:
            response["Retry-After"] = str(wait)
        return response
    if isinstance(exc, exceptions.NotAuthenticated):
        exc.detail = "authentication required: send X-API-Key or X-Auth-Token"
    if isinstance(exc, Http404):
        return Response({"error": str(exc) or "not found"}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        return Response({"error": str(exc) or "permission denied"}, status=status.HTTP_403_FORBIDDEN)
    response = drf_exception_handler(exc, context)
    if response is not None:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data
        response.data = {"error": _flatten(detail)}
    return response


# --- Django's own error pages, as JSON under /api/ ----------------------------------------------


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/v1/")


def _json_or(default_view, status_code: int, message: str):
    from django.http import JsonResponse

    def view(request, *args, **kwargs):
        if _is_api(request):
            return JsonResponse({"error": message}, status=status_code)
        return default_view(request, *args, **kwargs)

    return view


def _defaults():
    from django.views import defaults

    return defaults


def not_found(request, exception=None):
    """An unknown /api/ path is JSON like every other API answer; pages keep Django's page."""
    return _json_or(_defaults().page_not_found, 404, "no such API endpoint")(request, exception)


def bad_request(request, exception=None):
    return _json_or(_defaults().bad_request, 400, "bad request")(request, exception)


def permission_denied(request, exception=None):
    return _json_or(_defaults().permission_denied, 403, "permission denied")(request, exception)


def server_error(request):
    return _json_or(_defaults().server_error, 500, "internal server error; the server log has the details")(
        request
    )

"""The WSGI application: credentialed API calls take the short middleware chain, everything else the full one."""

import io
import json

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from qmtjq import wsgi


@pytest.fixture
def call(db):
    """Call qmtjq.wsgi.application in this thread, inside the test's transaction (as Django's test client does)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)

    def run(method, path, *, body=b"", **headers):
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.url_scheme": "http",
            **headers,
        }
        answer = {}

        def start_response(status, response_headers, exc_info=None):
            answer["status"] = int(status.split()[0])
            answer["headers"] = dict(response_headers)

        chunks = wsgi.application(environ, start_response)
        answer["body"] = b"".join(chunks)
        chunks.close()
        return answer

    yield run
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_api_key_upload_takes_the_short_chain_and_keeps_the_security_headers(call, make_api_client):
    _, key = make_api_client(rate_limit_per_minute=0)
    body = json.dumps(
        {"strategy_name": "wsgi", "positions": [{"code": "600000.XSHG", "volume": 100, "cost": 9}]}
    )
    answer = call("POST", "/api/v1/positions/update", body=body.encode(), HTTP_X_API_KEY=key)
    assert answer["status"] == 200, answer["body"]
    assert json.loads(answer["body"])["changed"] is True
    assert answer["headers"]["X-Content-Type-Options"] == "nosniff"
    assert answer["headers"]["X-Frame-Options"] == "DENY"
    chain = [type(m).__name__ for m in _middleware_instances(wsgi.application.api_client)]
    assert "SessionMiddleware" not in chain and "CsrfViewMiddleware" not in chain
    assert "SecurityMiddleware" in chain
    site = [type(m).__name__ for m in _middleware_instances(wsgi.application.site)]
    assert "SessionMiddleware" in site and "CsrfViewMiddleware" in site


def test_a_bad_key_is_still_a_json_401(call):
    answer = call("GET", "/api/v1/positions/all", HTTP_X_API_KEY="qk_wrong")
    assert answer["status"] == 401 and json.loads(answer["body"]) == {"error": "invalid credentials"}


def test_requests_without_credentials_keep_the_full_chain(call):
    """A staff session or a page needs sessions and CSRF: no credential header, full middleware."""
    answer = call("GET", "/api/v1/positions/all")
    assert answer["status"] in (401, 403)
    assert "sessionid" not in answer["headers"].get("Set-Cookie", "")
    page = call("GET", "/admin/login/")
    assert page["status"] == 200 and "csrftoken" in page["headers"].get("Set-Cookie", "")


def _middleware_instances(handler):
    """Walk the handler's middleware chain (each middleware holds the next as get_response)."""
    found, current = [], handler._middleware_chain
    while current is not None:
        inner = getattr(current, "__wrapped__", None) or current
        target = getattr(inner, "get_response", None)
        if target is None:
            break
        found.append(inner)
        current = target
    return found

"""The trading PC's HTTP client for the server (remote mode): the feed (long-poll) and reports.

Every call has a bounded timeout. TLS certificates are verified unless
`QMTJQ_SERVER_TLS_VERIFY=false`, which is logged as a warning on every start.
It signs in with the worker credential: a v2 signed token per request when a
private key file is set (binding method, path with the server's prefix, body
hash and a nonce), else the API key.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.conf import settings

from positions import tokens

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
REPORT_TIMEOUT = 20.0
FEED_PATH = "/api/v1/worker/feed"
REPORT_PATH = "/api/v1/worker/report"
MAX_RETRY_AFTER = 60.0  # seconds: a wild Retry-After never silences the feed for long


@dataclass(frozen=True)
class FeedUnchanged:
    """The server answered 304: the feed is as we have it; `retry_after` > 0 asks us to wait before the next poll."""

    retry_after: float = 0.0


def retry_after_seconds(value: str | None) -> float:
    """A Retry-After header in seconds (0 when absent or not a whole number), at most MAX_RETRY_AFTER."""
    value = (value or "").strip()
    if not value.isascii() or not value.isdigit():
        return 0.0
    return min(float(value), MAX_RETRY_AFTER)


class ServerUnreachable(Exception):
    """No answer, a timeout, or a 5xx: try again later (the worker keeps its last target meanwhile)."""


class ServerRefused(Exception):
    """A 4xx: the server read the request and said no (credential, scope, a bad report)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class ServerClient:
    def __init__(
        self,
        *,
        server_url: str,
        account: str,
        api_key: str = "",
        client_id: str = "",
        private_key_pem: bytes = b"",
        verify: bool = True,
        feed_wait: float = 25.0,
    ):
        parts = urlsplit(server_url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"server URL {server_url!r}: use https://host or https://host/prefix")
        if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            logger.warning(
                "the server %s is reached over plain HTTP: use HTTPS across the internet", server_url
            )
        if not api_key and not private_key_pem:
            raise ValueError(
                "no worker credential: set QMTJQ_WORKER_API_KEY or QMTJQ_WORKER_PRIVATE_KEY_FILE"
            )
        if private_key_pem and not client_id:
            raise ValueError("signed tokens need the credential's client id: set QMTJQ_WORKER_CLIENT_ID")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.prefix = parts.path.rstrip("/")
        self.account = account
        self.api_key, self.client_id, self.private_key_pem = api_key, client_id, private_key_pem
        self.verify = verify
        self.feed_wait = feed_wait
        self.session = requests.Session()
        if not verify:
            logger.warning("TLS verification of %s is OFF (QMTJQ_SERVER_TLS_VERIFY=false)", server_url)

    @property
    def url(self) -> str:
        return self.origin + self.prefix

    def _headers(self, method: str, path: str, body: bytes) -> dict:
        if self.private_key_pem:
            token = tokens.token_sign(
                self.private_key_pem, self.client_id, version=2, method=method, path=path, body=body
            )
            return {"X-Auth-Token": token}
        return {"X-API-Key": self.api_key}

    def _call(self, method: str, path: str, *, body: bytes = b"", timeout: float) -> requests.Response:
        full_path = self.prefix + path
        headers = self._headers(method, full_path, body)
        if body:
            headers["Content-Type"] = "application/json"
        try:
            response = self.session.request(
                method,
                self.origin + full_path,
                data=body or None,
                headers=headers,
                timeout=(CONNECT_TIMEOUT, timeout),
                verify=self.verify,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise ServerUnreachable(f"{type(exc).__name__}: {exc}"[:300]) from None
        if response.status_code >= 500 or response.status_code in (301, 302, 307, 308, 429):
            raise ServerUnreachable(f"HTTP {response.status_code} from {self.url}")
        if response.status_code >= 400:
            try:
                message = response.json().get("error") or response.text[:200]
            except ValueError:
                message = response.text[:200]
            raise ServerRefused(response.status_code, str(message))
        return response

    def feed(self, *, version: str = "") -> dict | FeedUnchanged:
        """The account's feed; with `version`, waits on the server until it changes (or FeedUnchanged)."""
        query = f"?account={self.account}" + (f"&version={version}" if version else "")
        response = self._call("GET", FEED_PATH + query, timeout=self.feed_wait + 10)
        if response.status_code == 304:
            return FeedUnchanged(retry_after=retry_after_seconds(response.headers.get("Retry-After")))
        try:
            return response.json()
        except ValueError:
            raise ServerUnreachable("the feed is not JSON (a proxy's page?)") from None

    def report(self, body: dict) -> dict:
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        response = self._call("POST", REPORT_PATH, body=data, timeout=REPORT_TIMEOUT)
        try:
            return response.json()
        except ValueError:
            raise ServerUnreachable("the report's answer is not JSON (a proxy's page?)") from None


def server_client_from_settings(*, server_url: str, account: str) -> ServerClient:
    """The client the settings describe (.env: QMTJQ_WORKER_API_KEY or QMTJQ_WORKER_PRIVATE_KEY_FILE)."""
    private_key_pem = b""
    if settings.QMTJQ_WORKER_PRIVATE_KEY_FILE:
        path = Path(settings.QMTJQ_WORKER_PRIVATE_KEY_FILE)
        try:
            private_key_pem = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"QMTJQ_WORKER_PRIVATE_KEY_FILE {path}: cannot read it ({exc})")
    return ServerClient(
        server_url=server_url,
        account=account,
        api_key=settings.QMTJQ_WORKER_API_KEY,
        client_id=settings.QMTJQ_WORKER_CLIENT_ID,
        private_key_pem=private_key_pem,
        verify=settings.QMTJQ_SERVER_TLS_VERIFY,
        feed_wait=settings.WORKER_FEED_WAIT_SECONDS,
    )

"""HTTP client for Factor Cat (因子猫), the endpoints of DESIGN §8.

Plain JSON over HTTPS with `Authorization: Bearer <token>`. Every call has a
timeout; connection errors, timeouts, 5xx and 429 are retried a bounded number
of times with exponential backoff, other 4xx never (they will not change).
Errors raise `FactorCatError` carrying the server's own message, which the
admin shows to the user; 401 raises `FactorCatAuthError`.

Passwords are never logged; tokens at most by their last four characters.
"""

import logging
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import requests

from positions.codes import CodeError, normalize

from .wire import (
    FactorCatAuthError,
    FactorCatError,
    LoginResult,
    Page,
    SelectedBond,
    TodaySelection,
    _date_field,
    _int,
    _price,
    server_message,
    token_expires_at,
    token_tail,
)

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (3.05, 15)  # (connect, read) seconds
# Bounds paging through a list whose total_pages a broken server might inflate.
MAX_PAGES = 200
# A server asking us to wait longer than this (Retry-After) is not worth waiting for inside a job.
MAX_RETRY_SLEEP = 30.0
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))
# Worth another try: the network or the server may be fine a moment later.
_TRANSIENT = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class FactorCatClient:
    """One Factor Cat server, optionally with a token; not thread-safe (one per job)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = 2,
        backoff: float = 0.5,
        verify_tls: bool = True,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).hostname or self.base_url
        self.token = token
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = max(0.0, backoff)
        self.verify_tls = verify_tls
        if session is None:
            session = requests.Session()
            session.headers["Accept"] = "application/json"
        self.session = session
        if not verify_tls:
            logger.warning(
                "TLS certificate verification is OFF for Factor Cat host %s: "
                "the connection can be intercepted",
                self.host,
            )

    def __repr__(self) -> str:
        return f"<FactorCatClient {self.base_url} token={token_tail(self.token)}>"

    # --- transport -----------------------------------------------------------
    def _request(self, method: str, path: str, *, params=None, json_body=None) -> Any:
        url = f"{self.base_url}{path}"
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            delay = self.backoff * 2 ** (attempt - 1)
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers=headers,
                    timeout=self.timeout,
                    verify=self.verify_tls,
                    allow_redirects=False,
                )
            except requests.exceptions.SSLError as exc:
                # Not retried: a certificate does not fix itself in a second.
                raise FactorCatError(
                    f"TLS connection to {self.host} failed ({_reason(exc)}). If the server's certificate "
                    f"is known to be broken, turn off TLS verification for this account.",
                ) from None
            except _TRANSIENT as exc:
                if isinstance(exc, requests.exceptions.Timeout):
                    problem = "did not answer in time"
                elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
                    problem = "broke off its answer"
                else:
                    problem = "could not be reached"
                if attempt < attempts:
                    logger.warning(
                        "Factor Cat %s %s %s (attempt %d of %d); retrying in %.1fs",
                        method,
                        path,
                        problem,
                        attempt,
                        attempts,
                        delay,
                    )
                    time.sleep(delay)
                    continue
                raise FactorCatError(
                    f"Factor Cat ({self.host}) {problem} after {attempts} attempt{'s' if attempts > 1 else ''}: "
                    f"{_reason(exc)}"
                ) from None
            except requests.exceptions.RequestException as exc:
                # A malformed base URL and the like: retrying cannot help.
                raise FactorCatError(f"Factor Cat request to {url} failed: {_reason(exc)}") from None
            status = response.status_code
            if status in _RETRY_STATUSES and attempt < attempts:
                delay = max(delay, _retry_after(response))
                logger.warning(
                    "Factor Cat %s %s answered HTTP %d (attempt %d of %d); retrying in %.1fs",
                    method,
                    path,
                    status,
                    attempt,
                    attempts,
                    delay,
                )
                response.close()
                time.sleep(delay)
                continue
            return self._answer(response, method, path)
        raise AssertionError("unreachable")  # pragma: no cover

    def _answer(self, response: requests.Response, method: str, path: str) -> Any:
        status = response.status_code
        if status >= 300:
            if status < 400:
                # Not followed: a redirect would turn a POST into a GET and may carry the token elsewhere.
                message = f"Factor Cat redirected {path} to {response.headers.get('Location', '?')}; check the base URL"
            else:
                message = server_message(response)
            logger.warning("Factor Cat %s %s failed: HTTP %d %s", method, path, status, message)
            if _is_auth_failure(status, message):
                raise FactorCatAuthError(message, status)
            raise FactorCatError(message, status)
        try:
            return response.json()
        except ValueError:
            raise FactorCatError(
                f"Factor Cat answered {path} with something that is not JSON (HTTP {status})", status
            ) from None

    # --- endpoints -------------------------------------------------------------
    def login(self, username: str, password: str) -> LoginResult:
        """POST /auth/login; the client keeps the new token."""
        body = self._request("POST", "/auth/login", json_body={"username": username, "password": password})
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise FactorCatAuthError("Factor Cat accepted the login but sent no access_token")
        self.token = token
        result = LoginResult(
            access_token=token,
            username=str(body.get("username") or username),
            role_name=str(body.get("role_name") or ""),
            expires_at=token_expires_at(token),
        )
        logger.info(
            "Factor Cat login as %s (role %s) ok; token %s expires %s",
            result.username,
            result.role_name or "-",
            token_tail(token),
            result.expires_at,
        )
        return result

    def long_term_token(self) -> str:
        """POST /auth/generate-long-term-token; the client switches to the long-lived token."""
        body = self._request("POST", "/auth/generate-long-term-token")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise FactorCatError("Factor Cat sent no long-term access_token")
        self.token = token
        logger.info("Factor Cat long-term token %s expires %s", token_tail(token), token_expires_at(token))
        return token

    def strategies(self, page: int = 1, limit: int = 20, search: str = "") -> Page:
        """GET /strategies/ — one page of strategies: {id, name, description, backtest_count, created_at}."""
        params = {"page": page, "limit": limit}
        if search:
            params["search"] = search
        return self._page(self._request("GET", "/strategies/", params=params), page, limit)

    def strategies_all(self, search: str = "", limit: int = 50) -> list[dict]:
        """Every strategy, page by page to the last (bounded by total_pages and MAX_PAGES)."""
        return list(self._all(lambda page: self.strategies(page=page, limit=limit, search=search)))

    def histories(self, strategy_id: int, page: int = 1, limit: int = 20) -> Page:
        """GET /strategies/{id}/histories — backtest records with their return, drawdown, Sharpe."""
        body = self._request(
            "GET", f"/strategies/{int(strategy_id)}/histories", params={"page": page, "limit": limit}
        )
        return self._page(body, page, limit)

    def parameters(self, strategy_id: int, history_id: int) -> dict:
        """The parameters of a backtest record (incl. profitTargetRatio / stopLossRatio; 0 = disabled)."""
        body = self._request("GET", f"/strategies/{int(strategy_id)}/histories/{int(history_id)}/parameters")
        if not isinstance(body, dict):
            raise FactorCatError("Factor Cat sent backtest parameters in an unexpected shape")
        parameters = body.get("parameters", {})
        if parameters is None:
            return {}
        if not isinstance(parameters, dict):
            raise FactorCatError("Factor Cat sent backtest parameters in an unexpected shape")
        return parameters

    def today_selection(self, history_id: int) -> TodaySelection:
        """Today's bonds for a backtest record, in the server's order, codes normalised to QMT form.

        An item that is not an object, whose code cannot be normalised, or whose
        trade_date cannot be read is a problem (logged and listed); a repeated
        code keeps its first place.
        """
        body = self._request(
            "POST", "/bond-selection/today-bond-selection", json_body={"strategy_history_id": int(history_id)}
        )
        if isinstance(body, list):
            first = body[0] if body else {}
        else:
            first = body
        if not isinstance(first, dict):
            raise FactorCatError("Factor Cat sent today's selection in an unexpected shape")
        raw_items = first.get("selected_bonds") or []
        if not isinstance(raw_items, list):
            raise FactorCatError("Factor Cat sent today's selection in an unexpected shape")
        problems: list[str] = []
        listed = _date_field(first, "", problems)
        bonds: list[SelectedBond] = []
        seen: set[str] = set()
        for position, item in enumerate(raw_items, start=1):
            if not isinstance(item, dict):
                problems.append(f"item {position} is not an object")
                continue
            raw_code = item.get("kzz_code") or item.get("code")
            try:
                code = normalize(str(raw_code).strip() if raw_code is not None else "")
            except CodeError as exc:
                problems.append(f"item {position}: {exc}")
                continue
            trade_date = _date_field(item, f"item {position} ({code}): ", problems)
            if code in seen:
                logger.warning("Factor Cat selection %s lists %s twice; kept the first", history_id, code)
                continue
            seen.add(code)
            bonds.append(
                SelectedBond(
                    code=code,
                    name=str(item.get("name") or "").strip(),
                    price=_price(item.get("price")),
                    trade_date=trade_date,
                    rank=len(bonds) + 1,
                )
            )
        for problem in problems:
            logger.warning("Factor Cat selection %s: %s", history_id, problem)
        logger.info("Factor Cat selection %s: %d bonds, dated %s", history_id, len(bonds), listed or "-")
        return TodaySelection(trade_date=listed, bonds=bonds, problems=problems)

    # --- paging ----------------------------------------------------------------
    @staticmethod
    def _page(body: Any, page: int, limit: int) -> Page:
        if not isinstance(body, dict) or not isinstance(body.get("items", []), list):
            raise FactorCatError("Factor Cat sent a page in an unexpected shape")
        items = [item for item in body.get("items") or [] if isinstance(item, dict)]
        limit = _int(body.get("limit"), limit) or limit
        total_count = _int(body.get("total_count"), len(items))
        total_pages = _int(body.get("total_pages"), -(-total_count // limit) if limit else 1)
        return Page(
            items=items,
            total_count=total_count,
            total_pages=total_pages,
            page=_int(body.get("page"), page),
            limit=limit,
        )

    @staticmethod
    def _all(fetch) -> Iterable[dict]:
        seen_ids = set()
        for number in range(1, MAX_PAGES + 1):
            page = fetch(number)
            for item in page.items:
                # Rows shift between pages while someone adds a strategy: keep each id once.
                key = item.get("id")
                if key is not None:
                    if key in seen_ids:
                        continue
                    seen_ids.add(key)
                yield item
            if not page.items or number >= page.total_pages:
                return
        logger.warning("Factor Cat paging stopped at the cap of %d pages", MAX_PAGES)


def _is_auth_failure(status: int, message: str) -> bool:
    # FastAPI's HTTPBearer answers a missing/garbled Authorization header with 403 "Not authenticated".
    return status == 401 or (status == 403 and message.strip().lower() == "not authenticated")


def _retry_after(response: requests.Response) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_SLEEP)
    except ValueError:
        return 0.0


def _reason(exc: Exception) -> str:
    """The underlying transport problem (certificate, refused, timed out), short enough for an admin column."""
    cause: object = exc.args[0] if exc.args else exc
    cause = getattr(cause, "reason", cause)  # urllib3's MaxRetryError wraps the real problem
    while isinstance(cause, BaseException) and cause.args and isinstance(cause.args[0], BaseException):
        cause = cause.args[0]
    text = str(cause)
    return text if len(text) <= 200 else text[:199] + "…"

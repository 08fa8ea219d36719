"""聚宽 (JoinQuant) 端持仓上传客户端 / JoinQuant-side client of the qmtjq position server.

1. 把本文件放到聚宽"研究"根目录 / copy this file into the JoinQuant research root.
2. 修改下面的 API_URL、CLIENT_ID / set API_URL and CLIENT_ID below (shown in the server admin).
3. 认证: 填 API_KEY, 或把私钥 private_key.pem (PKCS#8) 放在同一目录 (有私钥时优先用 RSA v2 签名)。
   Auth: set API_KEY, or put private_key.pem next to this file (RSA-signed v2 tokens win when present).
4. 用法 / usage:  from jq_qmt_api import JQQMTAPI;  g.jq_qmt_api = JQQMTAPI()
   g.jq_qmt_api.update_positions('我的策略', [{'code': '000001.XSHE', 'volume': 1000, 'cost': 12.5}])
   g.jq_qmt_api.save_all_positions(context, '我的策略')  # 调仓后上传全部持仓 / after each rebalance
失败默认不抛异常: 打印并记录警告, 返回 None / failures are printed and logged, the call returns None.
"""

API_URL = "http://127.0.0.1:8000"
CLIENT_ID = ""
API_KEY = ""
PRIVATE_KEY_FILE = "private_key.pem"

# The settings above come first so users see them; imports follow.
# ruff: noqa: E402
import base64
import hashlib
import json
import logging
import time
import uuid

try:  # Python 3
    from urllib.parse import quote
except ImportError:  # pragma: no cover
    from urllib import quote

import requests

__all__ = ["JQQMTAPI", "JQQMTAPIError"]
__version__ = "2.0"

logger = logging.getLogger("jq_qmt_api")

UPDATE_PATH = "/api/v1/positions/update"
STRATEGY_PATH = "/api/v1/positions/strategy/"
TOTAL_PATH = "/api/v1/positions/total"
ALL_PATH = "/api/v1/positions/all"

# Characters left unescaped in a path segment: the same set the server re-escapes
# with, so the path we sign is the path the server reconstructs.
_PATH_SAFE = ":@&+$,!~*'()"


class JQQMTAPIError(Exception):
    """An upload or read failed. `status` is the HTTP status (None for network errors),
    `server_message` the server's `{"error": ...}` text when there was one."""

    def __init__(self, message, status=None, server_message=None, attempts=0):
        Exception.__init__(self, message)
        self.message = message
        self.status = status
        self.server_message = server_message
        self.attempts = attempts

    def __str__(self):
        return self.message


class _Retryable(Exception):
    def __init__(self, error, retry_after=None):
        Exception.__init__(self, str(error))
        self.error = error
        self.retry_after = retry_after


def _json_default(value):
    # numpy scalars (numpy.int64 etc.) are not JSON serialisable; they have .item().
    item = getattr(value, "item", None)
    if item is not None:
        return item()
    raise TypeError("%r is not JSON serialisable" % (value,))


def _whole(value):
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):  # also numpy.float64
        return int(value) if value.is_integer() else value
    item = getattr(value, "item", None)  # other numpy scalars, e.g. numpy.int64
    if callable(item):
        try:
            return _whole(item())
        except Exception:
            return value
    return value


def _number(value):
    if value is None or isinstance(value, bool):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _normalise_position(item):
    """Lenient client-side clean-up; validation and code normalisation are the server's job."""
    if not isinstance(item, dict):
        return item
    out = {"code": item.get("code"), "volume": _whole(item.get("volume")), "cost": _number(item.get("cost"))}
    if item.get("name") is not None:
        out["name"] = item["name"]
    return out


def _warn(message):
    logger.warning(message)
    print("[jq_qmt_api] " + message)


class JQQMTAPI(object):
    """Client for the position server. Plain data only, so JoinQuant can pickle it inside `g`."""

    def __init__(self, api_url=None, client_id=None, api_key=None, private_key_file=None,
                 private_key_pem=None, timeout=(3.0, 10.0), max_retries=2, backoff=0.5, backoff_max=4.0,
                 deadline=20.0, raise_errors=False, only_sim_trade=False, verbose=False):
        """Arguments override the module constants at the top of the file.

        timeout: seconds per request, a number or (connect, read); max_retries: retries after the
        first attempt (2 -> at most 3 attempts); backoff/backoff_max: exponential delay between
        attempts; deadline: overall seconds one call may take; raise_errors: raise JQQMTAPIError
        instead of logging and returning None; only_sim_trade: save_all_positions skips backtests;
        verbose: also print successful uploads.
        """
        self.api_url = (API_URL if api_url is None else api_url).rstrip("/")
        self.client_id = CLIENT_ID if client_id is None else client_id
        self.api_key = API_KEY if api_key is None else api_key
        self.private_key_file = PRIVATE_KEY_FILE if private_key_file is None else private_key_file
        if isinstance(private_key_pem, str):
            private_key_pem = private_key_pem.encode("ascii")
        self.private_key_pem = private_key_pem
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff = float(backoff)
        self.backoff_max = float(backoff_max)
        self.deadline = float(deadline)
        self.raise_errors = raise_errors
        self.only_sim_trade = only_sim_trade
        self.verbose = verbose
        self._key_cache = None  # (pem bytes or None, loaded key or None); rebuilt lazily, never pickled

    # --- pickling (JoinQuant pickles `g` between runs) ---------------------

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_key_cache"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._key_cache = None

    def __repr__(self):
        return "JQQMTAPI(api_url=%r, client_id=%r)" % (self.api_url, self.client_id)

    # --- public API ---------------------------------------------------------

    def update_positions(self, strategy_name, positions, total_value=None, cash=None, snapshot_id=None):
        """Upload a strategy's full current positions. Returns the server's answer (dict) or None."""
        try:
            if positions is None:
                positions = []
            if isinstance(positions, dict):
                raise JQQMTAPIError("positions must be a list of dicts, not a dict")
            payload = {
                "strategy_name": strategy_name,
                "positions": [_normalise_position(p) for p in positions],
                # One id per logical upload, reused by every retry: the server stores it once.
                "snapshot_id": snapshot_id or uuid.uuid4().hex,
            }
            if total_value is not None:
                payload["total_value"] = _number(total_value)
            if cash is not None:
                payload["cash"] = _number(cash)
            result = self._request("POST", UPDATE_PATH, payload=payload)
        except JQQMTAPIError as exc:
            return self._fail(exc, "持仓上传失败 / upload of %r failed" % (strategy_name,))
        except Exception as exc:  # never let a client bug stop the strategy
            return self._fail(JQQMTAPIError("%s: %s" % (type(exc).__name__, exc)),
                              "持仓上传失败 / upload of %r failed" % (strategy_name,))
        message = "持仓已上传 / uploaded %r: %s positions, changed=%s" % (
            strategy_name, result.get("positions_count"), result.get("changed"))
        logger.info(message)
        if self.verbose:
            print("[jq_qmt_api] " + message)
        return result

    def save_all_positions(self, context, strategy_name):
        """Upload everything in `context.portfolio.positions` (with total value, cash and names)."""
        try:
            if self.only_sim_trade:
                run_type = getattr(getattr(context, "run_params", None), "type", None)
                if run_type != "sim_trade":
                    logger.info("not a simulated-trading run (%s); positions of %r not uploaded",
                                run_type, strategy_name)
                    return None
            portfolio = context.portfolio
            positions = []
            for code, position in list(portfolio.positions.items()):
                amount = getattr(position, "total_amount", 0) or 0
                if amount <= 0:
                    continue
                security = getattr(position, "security", None) or code
                line = {"code": security, "volume": amount, "cost": getattr(position, "avg_cost", None)}
                name = _display_name(security)
                if name:
                    line["name"] = name
                positions.append(line)
            total_value = getattr(portfolio, "total_value", None)
            cash = getattr(portfolio, "available_cash", None)
            if cash is None:
                cash = getattr(portfolio, "cash", None)
        except Exception as exc:
            return self._fail(JQQMTAPIError("cannot read the portfolio: %s: %s" % (type(exc).__name__, exc)),
                              "持仓上传失败 / upload of %r failed" % (strategy_name,))
        return self.update_positions(strategy_name, positions, total_value=total_value, cash=cash)

    def get_strategy_positions(self, strategy_name):
        """The server's current target of one strategy, or None."""
        path = STRATEGY_PATH + quote(str(strategy_name), safe=_PATH_SAFE)
        return self._read(path, None, "strategy %r" % (strategy_name,))

    def get_total_positions(self, strategies=None):
        """Positions summed over strategies (a list of names or "a,b"; None = all visible)."""
        query = None
        if strategies:
            if not isinstance(strategies, str):
                strategies = ",".join(str(s) for s in strategies)
            query = "strategies=" + quote(strategies, safe=",")
        return self._read(TOTAL_PATH, query, "total positions")

    def get_all_positions(self):
        """Every strategy visible to this client with its current target."""
        return self._read(ALL_PATH, None, "all positions")

    # --- internals ----------------------------------------------------------

    def _read(self, path, query, what):
        try:
            return self._request("GET", path, query=query)
        except JQQMTAPIError as exc:
            return self._fail(exc, "读取失败 / reading %s failed" % what)
        except Exception as exc:
            return self._fail(JQQMTAPIError("%s: %s" % (type(exc).__name__, exc)),
                              "读取失败 / reading %s failed" % what)

    def _fail(self, error, context):
        if self.raise_errors:
            raise error
        _warn("%s: %s" % (context, error))
        return None

    def _private_key(self):
        """The loaded RSA key, or None when no key is configured or it cannot be used."""
        if self._key_cache is None:
            pem = self.private_key_pem
            if pem is None and self.private_key_file:
                pem = _read_key_file(self.private_key_file)
            key = None
            if pem:
                try:
                    key = _load_private_key(pem)
                except Exception as exc:
                    fallback = "using the API key" if self.api_key else "requests will not be authenticated"
                    _warn("私钥不可用 / private key unusable (%s: %s); %s"
                          % (type(exc).__name__, exc, fallback))
            self._key_cache = (pem, key)
        return self._key_cache[1]

    def _auth_headers(self, method, path_url, body):
        key = self._private_key()
        if key is not None:
            if not self.client_id:
                raise JQQMTAPIError("CLIENT_ID is empty; RSA signing needs the client id from the admin")
            return {"X-Auth-Token": _sign_token(key, self.client_id, method, path_url, body)}
        if self.api_key:
            return {"X-API-Key": self.api_key}
        raise JQQMTAPIError("no credentials: set API_KEY, or put %s (PKCS#8 private key) next to this file"
                            % (self.private_key_file or "private_key.pem"))

    def _timeouts(self, remaining):
        if isinstance(self.timeout, (tuple, list)):
            connect, read = self.timeout
        else:
            connect = read = self.timeout
        remaining = max(remaining, 0.05)
        return (min(float(connect), remaining), min(float(read), remaining))

    def _request(self, method, path, payload=None, query=None):
        url = self.api_url + path + ("?" + query if query else "")
        if payload is None:
            body = b""
            headers = {"Accept": "application/json"}
        else:
            body = json.dumps(payload, ensure_ascii=False, default=_json_default).encode("utf-8")
            headers = {"Accept": "application/json", "Content-Type": "application/json; charset=utf-8"}
        headers["User-Agent"] = "jq_qmt_api/" + __version__
        started = time.monotonic()
        attempts_allowed = 1 + self.max_retries
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(method, url, body if payload is not None else None, headers,
                                     self.deadline - (time.monotonic() - started))
            except JQQMTAPIError as exc:
                exc.attempts = attempt
                raise
            except _Retryable as retry:
                error = retry.error
                error.attempts = attempt
                delay = min(self.backoff * (2 ** (attempt - 1)), self.backoff_max)
                if retry.retry_after is not None:
                    delay = max(delay, retry.retry_after)
                elapsed = time.monotonic() - started
                if attempt >= attempts_allowed or elapsed + delay >= self.deadline:
                    if attempt > 1:
                        error.message += " (gave up after %d attempts, %.1f s)" % (attempt, elapsed)
                    raise error
                logger.info("attempt %d failed (%s); retrying in %.2f s", attempt, error, delay)
                time.sleep(delay)

    def _attempt(self, method, url, body, headers, remaining):
        if remaining <= 0:
            raise JQQMTAPIError("deadline of %.1f s exceeded" % self.deadline)
        session = requests.Session()
        try:
            prepared = session.prepare_request(requests.Request(method, url, data=body, headers=headers))
            # Sign what goes on the wire: path_url is the exact path + query requests sends.
            prepared.headers.update(self._auth_headers(method, prepared.path_url, body or b""))
            settings = session.merge_environment_settings(prepared.url, {}, None, None, None)
            response = session.send(prepared, timeout=self._timeouts(remaining), allow_redirects=False,
                                    **settings)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            kind = "timeout" if isinstance(exc, requests.exceptions.Timeout) else "connection error"
            raise _Retryable(JQQMTAPIError("%s talking to %s: %s" % (kind, self.api_url, exc)))
        except requests.exceptions.RequestException as exc:
            raise JQQMTAPIError("request to %s failed: %s" % (url, exc))
        finally:
            session.close()
        return self._handle(response)

    def _handle(self, response):
        status = response.status_code
        try:
            data = response.json()
        except ValueError:
            data = None
        if 200 <= status < 300:
            if not isinstance(data, dict):
                raise JQQMTAPIError("server answered %d without a JSON object" % status, status)
            return data
        server_message = data.get("error") if isinstance(data, dict) else None
        if server_message is None:
            server_message = (response.text or "")[:200].strip() or None
        if 300 <= status < 400:
            raise JQQMTAPIError("server redirected to %s; set API_URL to that address"
                                % response.headers.get("Location"), status, server_message)
        error = JQQMTAPIError("HTTP %d: %s" % (status, server_message or response.reason),
                              status, server_message)
        if status == 429 or status >= 500:
            raise _Retryable(error, _retry_after(response))
        raise error


def _retry_after(response):
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _display_name(code):
    """The security's display name from JoinQuant, or None outside JoinQuant / on any failure."""
    try:
        from jqdata import get_security_info
        return get_security_info(code).display_name or None
    except Exception:
        return None


def _read_key_file(path):
    """The key file's bytes: JoinQuant's read_file (research root), else the local file system."""
    try:
        from jqdata import read_file
    except Exception:
        read_file = None
    try:
        if read_file is not None:
            data = read_file(path)
        else:
            with open(path, "rb") as handle:
                data = handle.read()
    except Exception:
        return None
    if isinstance(data, str):
        data = data.encode("ascii", "ignore")
    return data or None


def _load_private_key(pem):
    from cryptography.hazmat.backends import default_backend
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem.strip(), password=None, backend=default_backend())


def _sign_token(key, client_id, method, path_url, body):
    """A v2 X-Auth-Token binding method, path, body and a fresh nonce and timestamp."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    auth_data = {
        "client_id": client_id,
        "timestamp": int(time.time()),
        "version": 2,
        "method": method.upper(),
        "path": path_url,
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "nonce": uuid.uuid4().hex,
    }
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    signature = key.sign(json.dumps(auth_data, sort_keys=True).encode("utf-8"), pss, hashes.SHA256())
    token = {"auth_data": auth_data, "signature": base64.b64encode(signature).decode("ascii")}
    return base64.b64encode(json.dumps(token).encode("utf-8")).decode("ascii")

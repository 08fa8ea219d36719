"""Request signing of DingTalk and Feishu group bots ("加签" / "签名校验"), HMAC-SHA256 over the timestamp.

DingTalk (custom robot, security setting "加签"): timestamp in milliseconds,
sign = base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")), sent
url-encoded as `&timestamp=...&sign=...` on the webhook URL. The bot refuses a
timestamp more than an hour off.

Feishu (custom bot, "签名校验"): timestamp in seconds,
sign = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")), sent as
"timestamp" and "sign" in the JSON body. Note the key/message order differs
from DingTalk's.
"""

import base64
import hashlib
import hmac
from urllib.parse import urlencode

SIGNING_KINDS = ("dingtalk", "feishu")


def dingtalk_sign(*, secret: str, timestamp_ms: int) -> str:
    """The DingTalk signature, before url-encoding."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def feishu_sign(*, secret: str, timestamp: int) -> str:
    """The Feishu signature: the string to sign is the HMAC key, the message is empty."""
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def webhook_sign(*, kind: str, url: str, payload: dict, secret: str, now: float) -> tuple[str, dict]:
    """The URL and JSON body to post, signed for `kind` at time `now` (seconds since the epoch)."""
    if kind == "dingtalk":
        timestamp_ms = int(now * 1000)
        query = urlencode({"timestamp": timestamp_ms, "sign": dingtalk_sign(secret=secret, timestamp_ms=timestamp_ms)})
        return f"{url}{'&' if '?' in url else '?'}{query}", payload
    if kind == "feishu":
        timestamp = int(now)
        return url, {"timestamp": str(timestamp), "sign": feishu_sign(secret=secret, timestamp=timestamp), **payload}
    raise ValueError(f"{kind} bots do not sign requests")

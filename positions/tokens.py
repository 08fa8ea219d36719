"""API keys and RSA-PSS signed `X-Auth-Token`s (DESIGN §7).

Token: base64(json({"auth_data": {...}, "signature": base64(sig)})), where sig
is RSA-PSS (MGF1-SHA256, maximum salt) with SHA-256 over
`json.dumps(auth_data, sort_keys=True)`.

v1 auth_data: {client_id, timestamp} (the jq2qmt client's format).
v2 auth_data adds {version: 2, method, path, body_sha256, nonce}, binding the
token to one request: a captured token cannot be replayed with another body.
"""

import base64
import binascii
import functools
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from qmtjq.keys import key_digest, key_generate
from qmtjq.validation import InputError, json_parse

API_KEY_PREFIX = "qk_"
MAX_TOKEN_HEADER = 8192
V2_FIELDS = ("method", "path", "body_sha256", "nonce")
MIN_RSA_BITS, MAX_RSA_BITS = 2048, 4096
CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Unix seconds beyond this (year 33658) are not a clock reading; also keeps float() from overflowing.
MAX_TIMESTAMP = 10**12
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)


class TokenError(ValueError):
    """The token is unusable; the message says why (never anything secret)."""


# --- API keys -------------------------------------------------------------


def api_key_generate() -> str:
    return key_generate(API_KEY_PREFIX)


def api_key_digest(key: str) -> str:
    return key_digest(key)


# --- RSA keys -------------------------------------------------------------


def public_key_load(pem: str) -> rsa.RSAPublicKey:
    """Parse an X.509 SPKI PEM RSA public key of 2048-4096 bits or raise TokenError."""
    try:
        key = serialization.load_pem_public_key(pem.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
        raise TokenError("public key is not an X.509 SubjectPublicKeyInfo PEM")
    if not isinstance(key, rsa.RSAPublicKey):
        raise TokenError("public key is not an RSA key")
    if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        raise TokenError(f"RSA key must be {MIN_RSA_BITS}-{MAX_RSA_BITS} bits, got {key.key_size}")
    return key


def key_pair_generate(bits: int = 2048) -> tuple[bytes, bytes]:
    """Return (PKCS#8 private PEM, SPKI public PEM)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def _canonical(auth_data: dict) -> bytes:
    return json.dumps(auth_data, sort_keys=True).encode("utf-8")


@functools.lru_cache(maxsize=16)
def _private_key_load(pem: bytes):
    # Parsing checks the key (~47 ms); scripts and benchmarks sign many tokens with one key.
    return serialization.load_pem_private_key(pem, password=None)


@functools.lru_cache(maxsize=64)
def _public_key_cached(pem: str) -> rsa.RSAPublicKey:
    return public_key_load(pem)


def token_sign(
    private_key_pem: bytes | str,
    client_id: str,
    *,
    version: int = 1,
    method: str = "",
    path: str = "",
    body: bytes = b"",
    timestamp: float | None = None,
    nonce: str | None = None,
) -> str:
    """Build an X-Auth-Token (used by tests, benchmarks and scripts; the JoinQuant file has its own)."""
    if isinstance(private_key_pem, str):
        private_key_pem = private_key_pem.encode("ascii")
    private = _private_key_load(private_key_pem)
    auth_data: dict = {
        "client_id": client_id,
        "timestamp": int(time.time() if timestamp is None else timestamp),
    }
    if version == 2:
        auth_data.update(
            version=2,
            method=method.upper(),
            path=path,
            body_sha256=hashlib.sha256(body).hexdigest(),
            nonce=nonce or uuid.uuid4().hex,
        )
    signature = private.sign(_canonical(auth_data), _PSS, hashes.SHA256())
    token = {"auth_data": auth_data, "signature": base64.b64encode(signature).decode("ascii")}
    return base64.b64encode(json.dumps(token).encode("utf-8")).decode("ascii")


# --- Verification ---------------------------------------------------------


@dataclass(frozen=True)
class ParsedToken:
    auth_data: dict
    signature: bytes
    client_id: str
    timestamp: float
    version: int

    @property
    def replay_digest(self) -> str:
        if self.version == 2:
            material = f"n|{self.client_id}|{self.auth_data['nonce']}"
        else:
            material = "s|" + base64.b64encode(self.signature).decode("ascii")
        return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise TokenError(f"{what} is not valid base64")


def token_parse(header: str) -> ParsedToken:
    """Decode the token's structure; no cryptography yet."""
    if len(header) > MAX_TOKEN_HEADER:
        raise TokenError("X-Auth-Token is too long")
    try:
        outer = json_parse(_b64decode(header.strip(), "X-Auth-Token"), what="X-Auth-Token")
    except InputError as exc:
        raise TokenError(f"X-Auth-Token does not decode to usable JSON ({exc})")
    if not isinstance(outer, dict) or not isinstance(outer.get("auth_data"), dict):
        raise TokenError("X-Auth-Token must carry an auth_data object")
    if not isinstance(outer.get("signature"), str):
        raise TokenError("X-Auth-Token must carry a base64 signature")
    auth_data = outer["auth_data"]
    client_id = auth_data.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise TokenError("auth_data.client_id is missing")
    if not CLIENT_ID_RE.fullmatch(client_id):
        raise TokenError("auth_data.client_id must be 1-64 letters, digits, '.', '_' or '-'")
    timestamp = auth_data.get("timestamp")
    if (
        isinstance(timestamp, bool)
        or not isinstance(timestamp, int | float)
        or not -MAX_TIMESTAMP
        < timestamp
        < MAX_TIMESTAMP  # also refuses NaN and inf; no float() of a huge int
    ):
        raise TokenError("auth_data.timestamp must be unix seconds")
    is_v2 = auth_data.get("version") == 2 or any(field in auth_data for field in V2_FIELDS)
    if is_v2:
        if auth_data.get("version") != 2:
            raise TokenError("auth_data.version must be 2 when method/path/body_sha256/nonce are present")
        for field in V2_FIELDS:
            if not isinstance(auth_data.get(field), str) or not auth_data[field]:
                raise TokenError(f"auth_data.{field} is missing from the v2 token")
        if not 8 <= len(auth_data["nonce"]) <= 64:
            raise TokenError("auth_data.nonce must be 8-64 characters")
    signature = _b64decode(outer["signature"], "signature")
    return ParsedToken(auth_data, signature, client_id, float(timestamp), 2 if is_v2 else 1)


def token_verify_signature(token: ParsedToken, public_key_pem: str) -> None:
    key = _public_key_cached(public_key_pem)
    try:
        key.verify(token.signature, _canonical(token.auth_data), _PSS, hashes.SHA256())
    except InvalidSignature:
        raise TokenError("signature does not verify against the client's public key")


@functools.lru_cache(maxsize=1)
def _dummy_public_key() -> rsa.RSAPublicKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()


def token_verify_dummy(token: ParsedToken) -> None:
    """Spend the time of a verification when there is no key to verify against (the outcome is ignored)."""
    try:
        _dummy_public_key().verify(token.signature, _canonical(token.auth_data), _PSS, hashes.SHA256())
    except (InvalidSignature, ValueError):
        pass


def token_check_time(token: ParsedToken, *, now: float, max_skew: int) -> None:
    if token.timestamp < now - max_skew:
        raise TokenError(f"token expired: its timestamp is more than {max_skew} s old")
    if token.timestamp > now + max_skew:
        raise TokenError(f"token timestamp is more than {max_skew} s in the future; check the clock")


def token_check_request(token: ParsedToken, *, method: str, path: str, body: bytes) -> None:
    """v2 only: the token must name exactly this request."""
    data = token.auth_data
    if data["method"].upper() != method.upper():
        raise TokenError(f"token was signed for {data['method']}, not {method}")
    if data["path"] != path:
        raise TokenError("token was signed for another path")
    if data["body_sha256"].lower() != hashlib.sha256(body).hexdigest():
        raise TokenError("body does not match the token's body_sha256")

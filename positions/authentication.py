"""DRF authentication for API clients: `X-API-Key` or a signed `X-Auth-Token`."""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from qmtjq import keys
from qmtjq.credential_cache import credential_cache
from qmtjq.db import serialized_writes

from . import services, tokens
from .models import ApiClient, ApiKey, SeenToken

AUTH_API_KEY = "api_key"
AUTH_RSA_V1 = "rsa_v1"
AUTH_RSA_V2 = "rsa_v2"
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class ClientPrincipal:
    """Stands in `request.user` for an API client: authenticated, never staff."""

    client: ApiClient
    is_authenticated: bool = True
    is_staff: bool = False
    is_active: bool = True

    @property
    def pk(self):
        return f"client:{self.client.pk}"


@dataclass(frozen=True)
class ClientAuth:
    """`request.auth` for an API client."""

    client: ApiClient
    auth_type: str


def client_ip(request) -> str | None:
    meta = request.META
    remote = meta.get("REMOTE_ADDR") or None
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if forwarded and remote in settings.TRUSTED_PROXIES:
        return forwarded.split(",")[-1].strip() or remote
    return remote


# One answer for every credential problem that depends on the client: the
# caller learns nothing about which client ids exist, are disabled or need v2.
GENERIC_FAILURE = "invalid credentials"
logger = logging.getLogger("positions.auth")


def _fail(message: str):
    raise exceptions.AuthenticationFailed(message)


def _refuse(reason: str, *, client: ApiClient | None = None, ip: str | None = None):
    """Answer the generic 401; the reason goes to the server log and the client's admin page."""
    logger.warning(
        "API authentication refused (%s) from %s: %s", client.client_id if client else "no client", ip, reason
    )
    if client is not None:
        services.api_client_auth_failed(client=client, reason=reason)
    _fail(GENERIC_FAILURE)


class ApiClientAuthentication(BaseAuthentication):
    def authenticate(self, request):
        key = request.META.get("HTTP_X_API_KEY")
        token = request.META.get("HTTP_X_AUTH_TOKEN")
        if key is None and token is None:
            return None
        if key is not None and token is not None:
            _fail("send either X-API-Key or X-Auth-Token, not both")
        ip = client_ip(request)
        if key is not None:
            client, auth_type = self._by_api_key(key.strip(), ip), AUTH_API_KEY
        else:
            client, auth_type = self._by_token(request, token, ip)
        self._touch(client, ip)
        return ClientPrincipal(client), ClientAuth(client, auth_type)

    def authenticate_header(self, request):
        return 'X-API-Key realm="qmtjq"'

    def _by_api_key(self, key: str, ip: str | None) -> ApiClient:
        if not key:
            _fail("X-API-Key is empty")
        digest = keys.key_digest(key)
        row = credential_cache.get("key:" + digest)
        if row is None:
            version = credential_cache.version()
            row = ApiKey.objects.select_related("client").filter(digest=digest).first()
            if row is None:
                _refuse("unknown API key", ip=ip)
            credential_cache.put("key:" + digest, row, version=version)
        # Dates are checked on every request: expiry needs no invalidation.
        problem = row.problem(timezone.now())
        client = row.client
        if problem:
            _refuse(f"API key {row.prefix}… is {problem}", client=client, ip=ip)
        if not client.enabled:
            _refuse("API key used while the client is disabled", client=client, ip=ip)
        if client.require_v2:
            _refuse("API key used, but the client requires v2 signed tokens", client=client, ip=ip)
        now = timezone.now()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=row.pk).update(last_used_at=now)
            row.last_used_at = now  # the cached row too, so the next minute's requests write nothing
        return client

    def _by_token(self, request, header: str, ip: str | None) -> tuple[ApiClient, str]:
        # Checks that depend only on the token come first and may say what is wrong;
        # everything that depends on the client answers the generic failure.
        try:
            token = tokens.token_parse(header)
        except tokens.TokenError as exc:
            _fail(f"malformed X-Auth-Token: {exc}")
        max_skew = settings.API_TOKEN_MAX_SKEW_SECONDS
        try:
            tokens.token_check_time(token, now=time.time(), max_skew=max_skew)
        except tokens.TokenError as exc:
            _fail(str(exc))
        client = credential_cache.get("id:" + token.client_id)
        if client is None:
            version = credential_cache.version()
            client = ApiClient.objects.filter(client_id=token.client_id).first()
            if client is not None:
                credential_cache.put("id:" + token.client_id, client, version=version)
        if client is None or not client.public_key:
            # Verify against a stand-in key anyway, so an unknown id takes as long as a bad signature.
            tokens.token_verify_dummy(token)
            if client is None:
                _refuse(f"unknown client_id {token.client_id!r} in X-Auth-Token", ip=ip)
            _refuse("signed token used, but the client has no RSA public key", client=client, ip=ip)
        try:
            tokens.token_verify_signature(token, client.public_key)
        except tokens.TokenError as exc:
            _refuse(str(exc), client=client, ip=ip)
        if not client.enabled:
            _refuse("signed token used while the client is disabled", client=client, ip=ip)
        if client.require_v2 and token.version != 2:
            _refuse("v1 token used, but the client requires v2 signed tokens", client=client, ip=ip)
        if token.version == 2:
            try:
                tokens.token_check_request(
                    token, method=request.method, path=request.get_full_path(), body=request.body
                )
            except tokens.TokenError as exc:
                _fail(str(exc))  # the caller proved it holds the key: tell it what it signed wrong
        self._remember(token, max_skew)
        return client, AUTH_RSA_V2 if token.version == 2 else AUTH_RSA_V1

    @staticmethod
    def _remember(token: tokens.ParsedToken, max_skew: int) -> None:
        # A token stays acceptable until timestamp + skew, and timestamp may
        # be up to `skew` ahead of us: keep it for twice the window.
        expires_at = timezone.now() + timedelta(seconds=2 * max_skew)
        try:
            with serialized_writes(), transaction.atomic():
                SeenToken.objects.create(digest=token.replay_digest, expires_at=expires_at)
        except IntegrityError:
            _fail("token already used (replay); sign a fresh token for every request")

    @staticmethod
    def _touch(client: ApiClient, ip: str | None) -> None:
        now = timezone.now()
        if (
            client.last_used_at
            and now - client.last_used_at < LAST_USED_RESOLUTION
            and client.last_used_from == ip
        ):
            return
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now, last_used_from=ip)
        client.last_used_at, client.last_used_from = now, ip  # also in the cached instance

"""DRF authentication for API clients: `X-API-Key` or a signed `X-Auth-Token`."""

import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from qmtjq.db import serialized_writes

from . import tokens
from .models import ApiClient, SeenToken

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


def _fail(message: str):
    raise exceptions.AuthenticationFailed(message)


class ApiClientAuthentication(BaseAuthentication):
    def authenticate(self, request):
        key = request.META.get("HTTP_X_API_KEY")
        token = request.META.get("HTTP_X_AUTH_TOKEN")
        if key is None and token is None:
            return None
        if key is not None and token is not None:
            _fail("send either X-API-Key or X-Auth-Token, not both")
        if key is not None:
            client, auth_type = self._by_api_key(key.strip()), AUTH_API_KEY
        else:
            client, auth_type = self._by_token(request, token)
        self._touch(client, client_ip(request))
        return ClientPrincipal(client), ClientAuth(client, auth_type)

    def authenticate_header(self, request):
        return 'X-API-Key realm="qmtjq"'

    def _by_api_key(self, key: str) -> ApiClient:
        if not key:
            _fail("X-API-Key is empty")
        client = ApiClient.objects.filter(api_key_hash=tokens.api_key_digest(key)).first()
        if client is None:
            _fail("invalid API key")
        self._check_enabled(client)
        if client.require_v2:
            _fail("this client must use v2 signed X-Auth-Token, not an API key")
        return client

    def _by_token(self, request, header: str) -> tuple[ApiClient, str]:
        try:
            token = tokens.token_parse(header)
        except tokens.TokenError as exc:
            _fail(f"malformed X-Auth-Token: {exc}")
        client = ApiClient.objects.filter(client_id=token.client_id).first()
        if client is None:
            _fail("unknown client_id in X-Auth-Token")
        self._check_enabled(client)
        if not client.public_key:
            _fail("this client has no RSA public key; use its API key or add a key in admin")
        if client.require_v2 and token.version != 2:
            _fail("this client must use v2 tokens that sign method, path and body")
        max_skew = settings.API_TOKEN_MAX_SKEW_SECONDS
        try:
            tokens.token_check_time(token, now=time.time(), max_skew=max_skew)
            tokens.token_verify_signature(token, client.public_key)
            if token.version == 2:
                tokens.token_check_request(
                    token, method=request.method, path=request.get_full_path(), body=request.body
                )
        except tokens.TokenError as exc:
            _fail(str(exc))
        self._remember(token, max_skew)
        return client, AUTH_RSA_V2 if token.version == 2 else AUTH_RSA_V1

    @staticmethod
    def _check_enabled(client: ApiClient) -> None:
        if not client.enabled:
            _fail("this API client is disabled")

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

"""DRF authentication for worker credentials: `X-API-Key` or a signed `X-Auth-Token`, as the ingest API.

Verification is `positions.tokens`' and the replay store is the ingest API's
`SeenToken` table, so a token used once anywhere is refused everywhere. A
JoinQuant client's valid credential is recognised and refused with 403: it
may upload targets, never read an account's feed or write its ledger.
"""

import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from positions import tokens
from positions.authentication import client_ip
from positions.models import ApiClient, SeenToken
from qmtjq import keys
from qmtjq.db import serialized_writes

from ..models import WorkerClient, WorkerKey

AUTH_API_KEY = "api_key"
AUTH_RSA_V1 = "rsa_v1"
AUTH_RSA_V2 = "rsa_v2"
LAST_USED_RESOLUTION = timedelta(seconds=60)
INGEST_CREDENTIAL = "this is a JoinQuant API client credential; worker endpoints need a worker credential"


@dataclass(frozen=True)
class WorkerPrincipal:
    """Stands in `request.user` for a trading PC: authenticated, never staff."""

    client: WorkerClient
    is_authenticated: bool = True
    is_staff: bool = False
    is_active: bool = True

    @property
    def pk(self):
        return f"worker:{self.client.pk}"


@dataclass(frozen=True)
class WorkerAuth:
    """`request.auth` for a trading PC."""

    client: WorkerClient
    auth_type: str


def _fail(message: str):
    raise exceptions.AuthenticationFailed(message)


def _forbid_ingest_credential():
    raise exceptions.PermissionDenied(INGEST_CREDENTIAL)


def token_remember(token: tokens.ParsedToken) -> None:
    """Accept a signed token once (shared with the ingest API), or fail with 401."""
    # Acceptable until timestamp + skew, and timestamp may be `skew` ahead: keep twice the window.
    expires_at = timezone.now() + timedelta(seconds=2 * settings.API_TOKEN_MAX_SKEW_SECONDS)
    try:
        with serialized_writes(), transaction.atomic():
            SeenToken.objects.create(digest=token.replay_digest, expires_at=expires_at)
    except IntegrityError:
        _fail("token already used (replay); sign a fresh token for every request")


def _verifies(token: tokens.ParsedToken, public_key: str) -> bool:
    try:
        tokens.token_verify_signature(token, public_key)
    except tokens.TokenError:
        return False
    return True


class WorkerAuthentication(BaseAuthentication):
    def authenticate(self, request):
        key = request.META.get("HTTP_X_API_KEY")
        header = request.META.get("HTTP_X_AUTH_TOKEN")
        if key is None and header is None:
            return None
        if key is not None and header is not None:
            _fail("send either X-API-Key or X-Auth-Token, not both")
        if key is not None:
            client, auth_type = self._by_api_key(key.strip()), AUTH_API_KEY
        else:
            client, auth_type = self._by_token(request, header)
        self._touch(client, client_ip(request))
        return WorkerPrincipal(client), WorkerAuth(client, auth_type)

    def authenticate_header(self, request):
        return 'X-API-Key realm="qmtjq-worker"'

    def _by_api_key(self, key: str) -> WorkerClient:
        if not key:
            _fail("X-API-Key is empty")
        digest = tokens.api_key_digest(key)
        row, problem = keys.key_find(model=WorkerKey, raw=key)
        if row is not None:
            if problem:
                _fail(f"this worker API key is {problem}; use the new key from the rotation")
            client = WorkerClient.objects.select_related("account").get(pk=row.client_id)
            if row.last_used_at is None or timezone.now() - row.last_used_at >= LAST_USED_RESOLUTION:
                WorkerKey.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
        else:  # a key issued before key rotation existed
            client = WorkerClient.objects.select_related("account").filter(api_key_hash=digest).first()
        if client is None:
            if ApiClient.objects.filter(api_keys__digest=digest).exists():
                _forbid_ingest_credential()
            _fail("invalid API key")
        self._check_enabled(client)
        if client.require_v2:
            _fail("this worker credential must use v2 signed X-Auth-Token, not an API key")
        return client

    def _by_token(self, request, header: str) -> tuple[WorkerClient, str]:
        try:
            token = tokens.token_parse(header)
        except tokens.TokenError as exc:
            _fail(f"malformed X-Auth-Token: {exc}")
        client = WorkerClient.objects.select_related("account").filter(client_id=token.client_id).first()
        if client is None:
            ingest = ApiClient.objects.filter(client_id=token.client_id).exclude(public_key="").first()
            if ingest is not None and _verifies(token, ingest.public_key):
                _forbid_ingest_credential()
            _fail("unknown client_id in X-Auth-Token")
        self._check_enabled(client)
        if not client.public_key:
            _fail("this worker credential has no RSA public key; use its API key or add a key in admin")
        if client.require_v2 and token.version != 2:
            _fail("this worker credential must use v2 tokens that sign method, path and body")
        try:
            tokens.token_check_time(token, now=time.time(), max_skew=settings.API_TOKEN_MAX_SKEW_SECONDS)
            tokens.token_verify_signature(token, client.public_key)
            if token.version == 2:
                tokens.token_check_request(
                    token, method=request.method, path=request.get_full_path(), body=request.body
                )
        except tokens.TokenError as exc:
            _fail(str(exc))
        token_remember(token)
        return client, AUTH_RSA_V2 if token.version == 2 else AUTH_RSA_V1

    @staticmethod
    def _check_enabled(client: WorkerClient) -> None:
        if not client.enabled:
            _fail("this worker credential is disabled")

    @staticmethod
    def _touch(client: WorkerClient, ip: str | None) -> None:
        now = timezone.now()
        if (
            client.last_used_at
            and now - client.last_used_at < LAST_USED_RESOLUTION
            and client.last_used_from == ip
        ):
            return
        WorkerClient.objects.filter(pk=client.pk).update(last_used_at=now, last_used_from=ip)


class IsWorkerClient(BasePermission):
    message = "this endpoint needs a worker credential (X-API-Key or X-Auth-Token)"

    def has_permission(self, request, view):
        return isinstance(request.auth, WorkerAuth)

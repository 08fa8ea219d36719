"""Writes for API clients (the JoinQuant side's credentials): create, keys, enable, the client file."""

import json
import logging
import re
import uuid
from datetime import timedelta
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from qmtjq import keys

from . import tokens
from .models import ApiClient
from .services_strategies import strategy_get_or_create

logger = logging.getLogger("positions.services")  # the log name these lines had before the split


def api_client_create(
    *,
    name: str,
    client_id: str | None = None,
    public_key_pem: str = "",
    strategy_names: list[str] | tuple[str, ...] = (),
    require_v2: bool = False,
    can_create_strategies: bool = True,
    rate_limit_per_minute: int | None = None,
    api_key_lifetime_days: int | None = None,
) -> tuple[ApiClient, str]:
    """Create a client with a fresh API key; returns (client, key). The key is never stored in clear."""
    if public_key_pem:
        tokens.public_key_load(public_key_pem)  # raises TokenError with a clear reason
    with transaction.atomic():
        client = ApiClient(
            name=name,
            client_id=client_id or f"jq-{uuid.uuid4().hex[:12]}",
            public_key=public_key_pem.strip(),
            require_v2=require_v2,
            all_strategies=not strategy_names,
            can_create_strategies=can_create_strategies,
            api_key_lifetime_days=api_key_lifetime_days,
        )
        if rate_limit_per_minute is not None:
            client.rate_limit_per_minute = rate_limit_per_minute
        client.full_clean()
        client.save()
        if strategy_names:
            client.strategies.set(strategy_get_or_create(name=s)[0] for s in strategy_names)
        api_key = api_client_key_issue(client=client)
    return client, api_key


def api_client_key_issue(*, client: ApiClient) -> str:
    """The first API key of a new client (not a rotation: there is no old key). Returns the key."""
    api_key = _key_new(client=client, grace=timedelta(0))
    logger.info("API key issued for new client %s", client.client_id)
    return api_key


def _key_new(*, client: ApiClient, grace: timedelta) -> str:
    days = client.api_key_lifetime_days
    return keys.key_rotate(
        keys=client.api_keys,
        prefix=tokens.API_KEY_PREFIX,
        grace=grace,
        lifetime=timedelta(days=days) if days else None,
    )


def api_client_rotate_key(*, client: ApiClient, grace: timedelta = timedelta(0)) -> str:
    """Issue a new API key; the previous key keeps working for `grace`, then stops. Returns the new key.

    The new key expires after the client's `api_key_lifetime_days` (never when empty).
    """
    api_key = _key_new(client=client, grace=grace)
    logger.info("API key rotated for client %s (old key valid for %s more)", client.client_id, grace)
    return api_key


def api_client_revoke_keys(*, client: ApiClient) -> int:
    """Stop every API key of the client at once (a leaked key); returns how many were still valid."""
    count = keys.key_revoke(keys=client.api_keys)
    logger.info("API keys revoked for client %s: %d", client.client_id, count)
    return count


def api_client_auth_failed(*, client: ApiClient, reason: str) -> None:
    """Record why a caller presenting this client's id or key was refused (shown in admin)."""
    ApiClient.objects.filter(pk=client.pk).update(
        last_auth_failure=reason[:300], last_auth_failure_at=timezone.now()
    )


def api_client_set_enabled(*, client: ApiClient, enabled: bool) -> None:
    client.enabled = enabled
    client.save(update_fields=["enabled"])
    logger.info("API client %s %s", client.client_id, "enabled" if enabled else "disabled")


CLIENT_FILE = Path(__file__).resolve().parent / "clients" / "jq_qmt_api.py"


def client_file_render(*, client: ApiClient, api_url: str) -> str:
    """The JoinQuant client file with this server's URL and the client's id filled in.

    The API key is not included: it is stored hashed and was shown once.
    """
    source = CLIENT_FILE.read_text(encoding="utf-8")
    for name, value in (("API_URL", api_url), ("CLIENT_ID", client.client_id)):
        # json.dumps yields a valid Python string literal for any text.
        literal = json.dumps(value, ensure_ascii=False)
        source, count = re.subn(
            rf'^{name} = ".*"$',
            lambda _m, n=name, v=literal: f"{n} = {v}",
            source,
            count=1,
            flags=re.MULTILINE,
        )
        if count != 1:
            raise RuntimeError(f'{CLIENT_FILE} has no `{name} = "..."` line to fill in')
    return source

"""Worker credentials: one trading PC, one account (DESIGN §2)."""

import logging
import secrets

from django.db import transaction

from positions import tokens

from ..models import BrokerAccount, WorkerClient

logger = logging.getLogger(__name__)

WORKER_KEY_PREFIX = "qw_"  # never confused with an ingest key (qk_) in a log or a config file


def worker_key_generate() -> str:
    return WORKER_KEY_PREFIX + secrets.token_urlsafe(32)


def _key_fields(api_key: str) -> dict:
    return {"api_key_hash": tokens.api_key_digest(api_key), "api_key_prefix": api_key[:10]}


@transaction.atomic
def worker_client_create(
    *,
    account: BrokerAccount,
    name: str = "",
    client_id: str | None = None,
    public_key_pem: str = "",
    require_v2: bool = False,
) -> tuple[WorkerClient, str]:
    """Create a credential for `account`; returns (client, API key). Only the key's SHA-256 is stored."""
    if public_key_pem:
        tokens.public_key_load(public_key_pem)  # raises TokenError with a clear reason
    api_key = worker_key_generate()
    client = WorkerClient.objects.create(
        account=account,
        name=name or f"trading PC of {account.name}",
        client_id=client_id or f"w-{account.name[:40]}-{secrets.token_hex(4)}",
        public_key=public_key_pem.strip(),
        require_v2=require_v2,
        **_key_fields(api_key),
    )
    logger.info("worker credential %s created for account %s", client.client_id, account.name)
    return client, api_key


def worker_client_rotate_key(*, client: WorkerClient) -> str:
    """Replace the credential's API key; the old one stops working at once. Returns the new key."""
    api_key = worker_key_generate()
    for field, value in _key_fields(api_key).items():
        setattr(client, field, value)
    client.save(update_fields=["api_key_hash", "api_key_prefix"])
    logger.info("worker API key rotated for %s", client.client_id)
    return api_key


def worker_client_set_enabled(*, client: WorkerClient, enabled: bool) -> None:
    """Turn a credential off (every request with it is refused at once) or back on."""
    client.enabled = enabled
    client.save(update_fields=["enabled"])
    logger.info("worker credential %s %s", client.client_id, "enabled" if enabled else "disabled")

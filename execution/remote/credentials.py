"""Worker credentials: one trading PC, one account (DESIGN §2)."""

import logging
import secrets
from datetime import timedelta

from django.db import transaction

from positions import tokens
from qmtjq import keys

from ..models import BrokerAccount, WorkerClient

logger = logging.getLogger(__name__)

WORKER_KEY_PREFIX = "qw_"  # never confused with an ingest key (qk_) in a log or a config file


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
    client = WorkerClient.objects.create(
        account=account,
        name=name or f"trading PC of {account.name}",
        client_id=client_id or f"w-{account.name[:40]}-{secrets.token_hex(4)}",
        public_key=public_key_pem.strip(),
        require_v2=require_v2,
    )
    api_key = worker_client_rotate_key(client=client)
    logger.info("worker credential %s created for account %s", client.client_id, account.name)
    return client, api_key


@transaction.atomic
def worker_client_rotate_key(*, client: WorkerClient, grace: timedelta = timedelta(0)) -> str:
    """Issue a new API key; the previous one keeps working for `grace`, then stops. Returns the new key.

    Only the key's SHA-256 is stored (`WorkerKey`). A key from before key rotation
    existed (`api_key_hash`) is retired with the same grace: at once when it is zero.
    """
    api_key = keys.key_rotate(keys=client.api_keys, prefix=WORKER_KEY_PREFIX, grace=grace)
    if client.api_key_hash and not grace:
        client.api_key_hash = None
    client.api_key_prefix = api_key[: keys.PREFIX_LENGTH]
    client.save(update_fields=["api_key_hash", "api_key_prefix"])
    logger.info("worker API key rotated for %s (old key valid for %s more)", client.client_id, grace)
    return api_key


def worker_client_set_enabled(*, client: WorkerClient, enabled: bool) -> None:
    """Turn a credential off (every request with it is refused at once) or back on."""
    client.enabled = enabled
    client.save(update_fields=["enabled"])
    logger.info("worker credential %s %s", client.client_id, "enabled" if enabled else "disabled")

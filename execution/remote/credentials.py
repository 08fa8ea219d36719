"""Worker credentials: one trading PC, one account (DESIGN §2)."""

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

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
    api_key = keys.key_rotate(keys=client.api_keys, prefix=WORKER_KEY_PREFIX)
    logger.info("worker credential %s created for account %s", client.client_id, account.name)
    return client, api_key


def worker_client_rotate_key(*, client: WorkerClient, grace: timedelta | None = None) -> str:
    """Issue a new API key; the old ones keep working for `grace` (default API_KEY_ROTATION_GRACE_HOURS).

    Rotation without downtime: give the trading PC the new key within the grace period.
    Returns the new key (it exists only in this return value).
    """
    if grace is None:
        grace = timedelta(hours=settings.API_KEY_ROTATION_GRACE_HOURS)
    api_key = keys.key_rotate(keys=client.api_keys, prefix=WORKER_KEY_PREFIX, grace=grace)
    logger.info("worker API key rotated for %s; old keys valid for %s more", client.client_id, grace)
    return api_key


def worker_client_auth_failed(*, client: WorkerClient, reason: str) -> None:
    """Record why a caller presenting this credential was refused (the caller only sees a generic 401)."""
    WorkerClient.objects.filter(pk=client.pk).update(
        last_auth_failure=reason[:300], last_auth_failure_at=timezone.now()
    )


def worker_client_set_enabled(*, client: WorkerClient, enabled: bool) -> None:
    """Turn a credential off (every request with it is refused at once) or back on."""
    client.enabled = enabled
    client.save(update_fields=["enabled"])
    logger.info("worker credential %s %s", client.client_id, "enabled" if enabled else "disabled")

"""Secret keys with expiry and rotation with a grace period (two valid keys), for any credential.

A credential (an API client today, a remote worker tomorrow) owns rows of a
concrete subclass of `qmtjq.models.RotatingKey` through a foreign key. These
functions work on the owner's related manager (`client.api_keys`), so a new
kind of credential reuses them unchanged:

    raw = key_rotate(keys=client.api_keys, grace=timedelta(hours=24))
    row, why = key_find(model=ApiKey, raw=raw)

Rotation without downtime: the new key is valid at once; every older key
still valid keeps working until now + grace (never longer than it would
have anyway), then stops. A grace of zero retires the old keys at once.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .credential_cache import credentials_changed

PREFIX_LENGTH = 10


def key_digest(raw: str) -> str:
    # Keys are 256-bit random strings: a plain SHA-256 is a safe one-way store and allows an indexed lookup.
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def key_generate(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def key_valid_q(now: datetime) -> Q:
    """Rows of keys accepted at `now`."""
    return (Q(revoked_at__isnull=True) | Q(revoked_at__gt=now)) & (
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


@transaction.atomic
def key_rotate(
    *, keys, prefix: str, grace: timedelta = timedelta(0), lifetime: timedelta | None = None
) -> str:
    """Issue a new key for the owner of the related manager `keys`; older keys end after `grace`.

    `lifetime` gives the new key an expiry date (None: never expires). Returns the new key in clear:
    it exists only in this return value.
    """
    if grace < timedelta(0):
        raise ValueError("grace: must not be negative")
    now = timezone.now()
    ends = now + grace
    still_valid = keys.filter(key_valid_q(now))
    # Only shorten: a key already due to expire before the grace ends keeps its earlier date.
    still_valid.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=ends)).update(expires_at=ends)
    raw = key_generate(prefix)
    credentials_changed()
    keys.create(
        digest=key_digest(raw),
        prefix=raw[:PREFIX_LENGTH],
        expires_at=now + lifetime if lifetime is not None else None,
    )
    return raw


def key_revoke(*, keys, now: datetime | None = None) -> int:
    """Stop every still-valid key of the rows in `keys` at once; returns how many."""
    now = now or timezone.now()
    count = keys.filter(key_valid_q(now)).update(revoked_at=now)
    credentials_changed()
    return count


def key_find(*, model, raw: str, now: datetime | None = None):
    """(row, problem) for a presented key: (None, 'unknown') when no row has it, problem '' when valid."""
    row = model.objects.filter(digest=key_digest(raw)).first()
    if row is None:
        return None, "unknown"
    return row, row.problem(now or timezone.now())

"""One worker per account, on any machine: a lease row in the shared database."""

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from ..models import BrokerAccount, WorkerLease

LEASE_TTL = timedelta(seconds=30)


class LeaseHeld(Exception):
    """Another worker holds the account; the message says who and until when."""


@dataclass(frozen=True)
class LeaseHolder:
    name: str

    @classmethod
    def for_this_process(cls) -> "LeaseHolder":
        return cls(f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")


def lease_acquire(
    *, account: BrokerAccount, holder: LeaseHolder, now: datetime, ttl: timedelta = LEASE_TTL
) -> None:
    """Take the account's lease, or raise LeaseHeld while another holder's lease is unexpired."""
    try:
        with transaction.atomic():
            lease = WorkerLease.objects.select_for_update().filter(account=account).first()
            if lease is None:
                WorkerLease.objects.create(
                    account=account,
                    holder=holder.name,
                    acquired_at=now,
                    heartbeat_at=now,
                    expires_at=now + ttl,
                )
                return
            if lease.holder != holder.name and lease.expires_at > now:
                raise LeaseHeld(
                    f"account {account.name} is run by worker {lease.holder} "
                    f"(last heartbeat {lease.heartbeat_at:%Y-%m-%d %H:%M:%S %Z}, lease expires {lease.expires_at:%H:%M:%S})"
                )
            lease.holder, lease.acquired_at, lease.heartbeat_at, lease.expires_at = (
                holder.name,
                now,
                now,
                now + ttl,
            )
            lease.save()
    except IntegrityError:
        # Two workers raced to create the first lease row; the loser sees the winner.
        raise LeaseHeld(f"account {account.name} was just taken by another worker")


def lease_renew(
    *, account: BrokerAccount, holder: LeaseHolder, now: datetime, ttl: timedelta = LEASE_TTL
) -> bool:
    """Extend our lease; False means we lost it (expired and taken over) and must stop trading."""
    updated = WorkerLease.objects.filter(account=account, holder=holder.name).update(
        heartbeat_at=now, expires_at=now + ttl
    )
    return updated == 1


def lease_release(*, account: BrokerAccount, holder: LeaseHolder) -> None:
    WorkerLease.objects.filter(account=account, holder=holder.name).delete()

"""One worker per account, on any machine: a lease row in the shared database, with a fencing epoch.

Every acquisition increments the lease's `epoch`. Orders are claimed for
sending under (holder, epoch) (see orders.order_claim), so a worker that
stalled past its lease and woke up finds its claims refused and stops.
Each acquisition, takeover and release writes a LeaseEvent in the same
transaction (who, from whom, epoch, why, when), shown read-only in admin.
"""

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ..models import BrokerAccount, LeaseEvent, WorkerLease
from .process import process_alive

logger = logging.getLogger(__name__)


def lease_ttl() -> timedelta:
    return timedelta(seconds=settings.QMT_LEASE_TTL_SECONDS)


class LeaseHeld(Exception):
    """Another worker holds the account; the message says who and until when."""


class LeaseLost(Exception):
    """Our lease expired and another worker took the account: stop sending at once."""


class LeaseRevoked(LeaseLost):
    """The account's broker settings changed under us (lease_revoke): stop sending, then restart."""


@dataclass(frozen=True)
class LeaseHolder:
    name: str  # host:pid:token

    @classmethod
    def for_this_process(cls) -> "LeaseHolder":
        return cls(f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")

    @property
    def host(self) -> str:
        return self.name.rsplit(":", 2)[0] if self.name.count(":") >= 2 else ""

    @property
    def pid(self) -> int | None:
        parts = self.name.rsplit(":", 2)
        return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


@dataclass(frozen=True)
class Fence:
    """What a send is claimed under: our holder name and the epoch our acquisition got."""

    holder: str
    epoch: int
    took_over_from: str = ""  # set when this acquisition took an unexpired or expired lease from another


def holder_is_dead(name: str) -> bool:
    """True only when `name` is a process on this host that no longer exists (never a guess about other hosts)."""
    holder = LeaseHolder(name)
    if holder.host != socket.gethostname() or holder.pid is None:
        return False
    return not process_alive(holder.pid)


def local_time_text(moment: datetime) -> str:
    """A moment as people at the exchange read it: TIME_ZONE (Asia/Shanghai) with its offset, never bare UTC."""
    return timezone.localtime(moment).isoformat(sep=" ", timespec="seconds")


_local = local_time_text


def lease_holder_describe(*, account: BrokerAccount) -> str:
    """Who holds the account's lease now, for the message of a worker that lost it."""
    lease = WorkerLease.objects.filter(account=account).first()
    if lease is None:
        return "nobody holds it now"
    return (
        f"now held by {lease.holder} (epoch {lease.epoch}, since {_local(lease.acquired_at)}, "
        f"lease expires {_local(lease.expires_at)})"
    )


def lease_acquire(
    *, account: BrokerAccount, holder: LeaseHolder, now: datetime, ttl: timedelta | None = None
) -> Fence:
    """Take the account's lease and return the fence to send under, or raise LeaseHeld.

    A lease still unexpired is taken over at once only when its holder is a
    process of this host that no longer exists (a crash and restart); the
    takeover is recorded in `took_over_from`.
    """
    ttl = ttl or lease_ttl()
    try:
        with transaction.atomic():
            lease = WorkerLease.objects.select_for_update().filter(account=account).first()
            if lease is None:
                lease = WorkerLease.objects.create(
                    account=account,
                    holder=holder.name,
                    acquired_at=now,
                    heartbeat_at=now,
                    expires_at=now + ttl,
                    epoch=1,
                )
                lease_event_record(lease, LeaseEvent.Kind.ACQUIRED, LeaseEvent.Reason.FREE, at=now)
                return Fence(holder.name, lease.epoch)
            took_over_from = ""
            previous = (lease.holder, lease.heartbeat_at, lease.expires_at)
            kind, why = LeaseEvent.Kind.ACQUIRED, LeaseEvent.Reason.SAME_HOLDER
            if lease.holder != holder.name:
                if lease.expires_at > now and not holder_is_dead(lease.holder):
                    raise LeaseHeld(
                        f"account {account.name} is run by worker {lease.holder} "
                        f"(last heartbeat {_local(lease.heartbeat_at)}, lease expires {_local(lease.expires_at)})"
                    )
                expired = lease.expires_at <= now
                kind = LeaseEvent.Kind.TAKEN_OVER
                why = LeaseEvent.Reason.EXPIRED if expired else LeaseEvent.Reason.PROCESS_GONE
                reason = "its lease expired" if expired else "its process no longer exists"
                took_over_from = f"{lease.holder} at {_local(now)} ({reason})"
                logger.warning(
                    "account %s: worker %s took over the lease from %s",
                    account.name,
                    holder.name,
                    took_over_from,
                )
            lease.holder, lease.acquired_at, lease.heartbeat_at, lease.expires_at = (
                holder.name,
                now,
                now,
                now + ttl,
            )
            lease.epoch += 1
            lease.status = ""
            fields = ["holder", "acquired_at", "heartbeat_at", "expires_at", "epoch", "status"]
            if took_over_from:
                lease.took_over_from = took_over_from[:300]
                fields.append("took_over_from")
            lease.save(update_fields=fields)
            taken = kind == LeaseEvent.Kind.TAKEN_OVER
            lease_event_record(lease, kind, why, at=now, previous=previous if taken else None)
            return Fence(holder.name, lease.epoch, took_over_from)
    except IntegrityError:
        # Two workers raced to create the first lease row; the loser sees the winner.
        raise LeaseHeld(f"account {account.name} was just taken by another worker")


def lease_renew(
    *,
    account: BrokerAccount,
    fence: Fence,
    now: datetime,
    ttl: timedelta | None = None,
    status: str | None = None,
) -> bool:
    """Extend our lease (and report `status`); False means we lost it and must stop trading."""
    changes = {"heartbeat_at": now, "expires_at": now + (ttl or lease_ttl())}
    if status is not None:
        changes["status"] = status[:300]
    updated = WorkerLease.objects.filter(account=account, holder=fence.holder, epoch=fence.epoch).update(
        **changes
    )
    return updated == 1


def lease_valid_filter(*, account: BrokerAccount, fence: Fence, now: datetime):
    """Our lease, only while it is ours, at our epoch and unexpired: what a send is fenced by."""
    return WorkerLease.objects.filter(
        account=account, holder=fence.holder, epoch=fence.epoch, expires_at__gt=now
    )


def lease_release(*, account: BrokerAccount, holder: LeaseHolder, now: datetime | None = None) -> None:
    """Give the account back (worker stopping); nothing happens, and nothing is recorded, if it is not ours."""
    with transaction.atomic():
        lease = WorkerLease.objects.select_for_update().filter(account=account, holder=holder.name).first()
        if lease is None:
            return
        lease_event_record(
            lease, LeaseEvent.Kind.RELEASED, LeaseEvent.Reason.STOPPED, at=now or timezone.now()
        )
        lease.delete()


def lease_event_record(
    lease: WorkerLease,
    kind: str,
    reason: str,
    *,
    at: datetime,
    previous: tuple[str, datetime, datetime] | None = None,
) -> None:
    """The history row of one lease change; `previous` = (holder, last heartbeat, lease end) it was taken from."""
    holder, heartbeat_at, expires_at = previous or ("", None, None)
    LeaseEvent.objects.create(
        account_id=lease.account_id,
        at=at,
        kind=kind,
        holder=lease.holder,
        previous_holder=holder,
        previous_heartbeat_at=heartbeat_at,
        previous_expires_at=expires_at,
        epoch=lease.epoch,
        reason=reason,
    )


def lease_revoke(*, account: BrokerAccount, reason: str) -> bool:
    """Invalidate the running worker's fence (epoch + 1, same holder) because the broker it was built for
    changed (paper ↔ live, broker account id, MiniQMT path). Call it in the transaction that writes the
    change: from its commit on, every claim of that worker is refused, so nothing more goes out through
    the old broker. True when a lease was revoked."""
    return bool(WorkerLease.objects.filter(account=account).update(epoch=F("epoch") + 1, status=reason[:300]))


def lease_revocation(*, account: BrokerAccount, fence: Fence) -> str:
    """Why our lease was revoked (its status), or '' when it is valid or another worker took it."""
    row = WorkerLease.objects.filter(account=account).values_list("holder", "epoch", "status").first()
    if row is None or row[0] != fence.holder or row[1] == fence.epoch:
        return ""
    return row[2] or "the account's broker settings changed"

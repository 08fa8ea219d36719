"""What admin actions do: kill switch, mode switch, approving a held round, asking for a cancel.

Each change locks the rows it changes, happens inside `transaction.atomic`,
writes an admin LogEntry (who, what, when) in the same transaction, and logs
a line, so the trail exists whichever caller made the change.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.admin.models import CHANGE, LogEntry
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import selectors
from ..models import BrokerAccount, Order, OrderEvent, Round
from . import rounds
from .lease import lease_revoke

logger = logging.getLogger(__name__)


class ActionRefused(Exception):
    """The action does not apply to this row; the message says why, for the person who asked."""


def _audit(*, user, obj, message: str) -> None:
    LogEntry.objects.log_actions(
        user_id=user.pk, queryset=[obj], action_flag=CHANGE, change_message=message, single_object=True
    )


def _locked_account(account: BrokerAccount) -> BrokerAccount:
    return BrokerAccount.objects.select_for_update().get(pk=account.pk)


@transaction.atomic
def account_trading_set(*, account: BrokerAccount, enabled: bool, user) -> bool:
    """Turn an account's kill switch on or off; returns False when it already was that way."""
    locked = _locked_account(account)
    if locked.trading_enabled == enabled:
        return False
    locked.trading_enabled = enabled
    locked.save(update_fields=["trading_enabled"])
    state = "ON" if enabled else "OFF"
    _audit(user=user, obj=locked, message=f"Trading switch turned {state}.")
    logger.warning("account %s: trading switch turned %s by %s", locked.name, state, user)
    account.trading_enabled = enabled
    return True


def account_live_switch_problems(*, account: BrokerAccount) -> list[str]:
    """Why this account cannot go live (empty when it can)."""
    problems = []
    if account.mode == BrokerAccount.Mode.LIVE:
        problems.append(_("%(name)s is already live.") % {"name": account.name})
    if not account.account_id.strip():
        problems.append(_("%(name)s has no broker account id.") % {"name": account.name})
    if not account.userdata_mini_path.strip():
        problems.append(_("%(name)s has no MiniQMT userdata_mini path.") % {"name": account.name})
    return problems


@transaction.atomic
def account_switch_to_live(*, account: BrokerAccount, user) -> None:
    """Paper → live: real money from now on, so trading stops until a human turns it on again.

    Trading hours and the calendar are enforced (live accounts always are).
    The paper books are kept, unused, in case the account goes back to paper.
    """
    locked = _locked_account(account)
    problems = account_live_switch_problems(account=locked)
    if problems:
        raise ActionRefused(" ".join(problems))
    locked.mode = BrokerAccount.Mode.LIVE
    locked.trading_enabled = False
    locked.enforce_trading_hours = True
    locked.save(update_fields=["mode", "trading_enabled", "enforce_trading_hours"])
    # A worker running on this database keeps the paper broker it started with: fence it off now.
    lease_revoke(account=locked, reason="stopped: switched paper → live in admin: restart qmt_worker")
    _audit(
        user=user,
        obj=locked,
        message="Switched paper → live; trading switch turned OFF; trading hours enforced.",
    )
    logger.warning("account %s: switched paper -> live by %s (trading switch OFF)", locked.name, user)
    account.mode, account.trading_enabled, account.enforce_trading_hours = locked.mode, False, True


@transaction.atomic
def account_switch_to_paper(*, account: BrokerAccount, user) -> None:
    """Live → paper. Trading stops too; a running worker stops sending and exits to be restarted."""
    locked = _locked_account(account)
    if locked.mode == BrokerAccount.Mode.PAPER:
        raise ActionRefused(_("%(name)s is already paper.") % {"name": locked.name})
    locked.mode = BrokerAccount.Mode.PAPER
    locked.trading_enabled = False
    locked.save(update_fields=["mode", "trading_enabled"])
    lease_revoke(account=locked, reason="stopped: switched live → paper in admin: restart qmt_worker")
    _audit(user=user, obj=locked, message="Switched live → paper; trading switch turned OFF.")
    logger.warning("account %s: switched live -> paper by %s (trading switch OFF)", locked.name, user)
    account.mode, account.trading_enabled = locked.mode, False


def round_approval_problem(*, round_: Round) -> str:
    """Why this round cannot be approved, or ''."""
    if round_.status != Round.Status.HELD:
        return _("Round #%(id)s is not held for approval (it is %(status)s).") % {
            "id": round_.pk,
            "status": round_.get_status_display(),
        }
    if round_.approved_at is not None:
        return _("Round #%(id)s was already approved by %(user)s at %(at)s.") % {
            "id": round_.pk,
            "user": round_.approved_by or "?",
            "at": timezone.localtime(round_.approved_at).strftime("%Y-%m-%d %H:%M:%S"),
        }
    # The worker only acts on the account's latest round; approving an older one would do nothing.
    latest = selectors.latest_round(account=round_.account)
    if latest is not None and latest.pk != round_.pk:
        return _("Round #%(id)s was replaced by the newer round #%(latest)s.") % {
            "id": round_.pk,
            "latest": latest.pk,
        }
    return ""


@transaction.atomic
def held_round_approve(*, round_: Round, user) -> None:
    """A human approves a held round; the worker then re-plans and places it if the market still matches."""
    locked = Round.objects.select_for_update().get(pk=round_.pk)
    problem = round_approval_problem(round_=locked)
    if problem:
        raise ActionRefused(problem)
    rounds.round_approve(round_=locked, user=user)
    _audit(user=user, obj=locked, message="Approved the held round.")
    logger.warning("round %s of account %s approved by %s", locked.pk, locked.account.name, user)
    round_.approved_by, round_.approved_at = locked.approved_by, locked.approved_at


@dataclass
class CancelRequests:
    requested: list[Order] = field(default_factory=list)
    already_requested: list[Order] = field(default_factory=list)
    final: list[Order] = field(default_factory=list)


@transaction.atomic
def orders_ask_cancel(*, orders: list[Order], user, now: datetime | None = None) -> CancelRequests:
    """Ask the worker (the only process talking to the broker) to cancel these orders; final ones are skipped."""
    now = now or timezone.now()
    outcome = CancelRequests()
    for order in Order.objects.select_for_update().filter(pk__in=[o.pk for o in orders]).order_by("pk"):
        if order.is_final:
            outcome.final.append(order)
            continue
        if order.user_cancel_requested_at is not None:
            outcome.already_requested.append(order)
            continue
        order.user_cancel_requested_at = now
        order.save(update_fields=["user_cancel_requested_at", "updated_at"])
        OrderEvent.objects.create(
            order=order,
            status=order.status,
            filled_volume=order.filled_volume,
            message=f"cancel asked in admin by {user}",
        )
        _audit(user=user, obj=order, message="Asked the worker to cancel this order.")
        logger.warning("order %s (%s): cancel asked by %s", order.key, order.account_id, user)
        outcome.requested.append(order)
    return outcome

"""Take-profit / stop-loss on the rotation's own held bonds, with an optional refill."""

from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from execution.calendar import can_place_orders, market_date
from execution.remote.quotes import price_missing_notify
from qmtjq import display
from qmtjq.notifications import (
    EVENT_TP_SL_TRIGGERED,
    notify,
)

from .. import decisions
from ..models import RotationStrategy, Selection, TpSlEvent
from .cooldown import cooldown_codes
from .rotations import RotationError
from .runs import _current_target, _quotes, _write_target


def _ratios(rotation: RotationStrategy) -> tuple[Decimal | None, Decimal | None]:
    """Effective (take-profit, stop-loss): the rotation's own setting, else the backtest record's."""
    from ..factorcat import tp_sl_ratios

    record_tp, record_sl = tp_sl_ratios(rotation.factorcat_parameters or {})
    take_profit = rotation.take_profit_ratio if rotation.take_profit_ratio is not None else record_tp
    stop_loss = rotation.stop_loss_ratio if rotation.stop_loss_ratio is not None else record_sl
    return take_profit, stop_loss


def _refill(
    rotation: RotationStrategy, target: dict[str, int], value: Decimal, quotes: dict, not_again: set[str]
) -> tuple[str, int, Decimal]:
    """The next-ranked bond of the latest selection not held, sized to the value sold.

    Never one of `not_again`: the bond just sold and those in their cooldown;
    buying one back would have the next pass sell it again.
    """
    selection = Selection.objects.filter(rotation=rotation).order_by("-trade_date", "-created_at").first()
    if selection is None:
        return "", 0, Decimal(0)
    excluded = rotation.excluded_code_set()
    for item in selection.items.all():
        if item.code in target or item.code in excluded or item.code in not_again:
            continue
        quote = quotes.get(item.code)
        if quote is None or quote.suspended or not quote.last:
            continue
        if quote.up_stop is not None and quote.last >= quote.up_stop:
            continue
        volume = decisions.lots_for(value, quote.last, rotation.account.commission_rate)
        if volume:
            return item.code, volume, quote.last
    return "", 0, Decimal(0)


def _price_missing(rotation: RotationStrategy, codes: list[str], now: datetime) -> None:
    """A held bond without a fresh price cannot be checked: during trading hours say so, never skip silently.

    Folded per notification window (one notice, counted, while it lasts). On a server
    without xtdata the prices come from the trading PC's reports (DESIGN §2).
    """
    if not can_place_orders(now, allow_closing_auction=True)[0]:
        return  # prices do not move outside sessions; nothing was missed
    # Quote ages are measured on the wall clock, as the quotes' freshness is.
    price_missing_notify(
        scope=rotation.name, codes=codes, now=timezone.now(), what=gettext_lazy("take-profit/stop-loss")
    )


def _tp_sl_title(rotation: RotationStrategy, trigger) -> str:
    kind = TpSlEvent.Kind(trigger.kind).label
    return _("%(rotation)s: %(kind)s %(code)s") % {"rotation": rotation.name, "kind": kind, "code": trigger.code}


def _tp_sl_body(trigger, refill_code: str, refill_volume: int, refill_blocked: str) -> str:
    """What the trader reads: price against cost basis, and what replaced the bond (or why nothing did)."""
    parts = [
        _("price %(price)s vs cost %(cost)s (%(profit)s), ratio %(ratio)s")
        % {
            "price": display.price(trigger.price, trigger.code),
            "cost": display.price(trigger.cost, trigger.code),
            "profit": display.percent(trigger.profit, signed=True),
            "ratio": display.percent(trigger.ratio),
        }
    ]
    if refill_code:
        parts.append(
            _("refilled with %(code)s × %(volume)s")
            % {"code": refill_code, "volume": display.volume(refill_volume)}
        )
    if refill_blocked:
        parts.append(_("no refill: %(why)s") % {"why": display.text(refill_blocked)})
    return display.join(parts)


def tp_sl_check(*, now: datetime, dry_run: bool = False) -> list[dict]:
    """One pass over every enabled rotation's own held bonds; each trigger rewrites the target without the bond.

    Idempotent: a triggered bond leaves the target, so a repeated pass finds nothing more to do.
    """
    results = []
    rotations = RotationStrategy.objects.filter(enabled=True).select_related(
        "account", "strategy", "strategy__current_snapshot"
    )
    for rotation in rotations:
        take_profit, stop_loss = _ratios(rotation)
        if not take_profit and not stop_loss:
            continue
        target, _costs = _current_target(rotation)
        if not target:
            continue
        held = {h.code: h for h in rotation.account.holdings.filter(code__in=list(target), volume__gt=0)}
        if not held:
            continue
        selection_codes = []
        if rotation.refill_after_tp_sl:
            latest = (
                Selection.objects.filter(rotation=rotation).order_by("-trade_date", "-created_at").first()
            )
            selection_codes = list(latest.items.values_list("code", flat=True)) if latest else []
        quotes = _quotes(rotation.account, list(held) + selection_codes)
        positions = {
            code: (quotes[code].last if code in quotes else None, holding.avg_cost)
            for code, holding in held.items()
        }
        unpriced = sorted(code for code, (price, _cost) in positions.items() if price is None)
        if unpriced and not dry_run:
            _price_missing(rotation, unpriced, now)
        triggers = decisions.tp_sl_triggers(positions=positions, take_profit=take_profit, stop_loss=stop_loss)
        not_again, refill_blocked = set(), ""
        if triggers and rotation.refill_after_tp_sl:
            try:
                not_again = set(cooldown_codes(rotation=rotation, today=market_date(now)))
            except RotationError as exc:  # the sale goes ahead; only the refill waits (do less when unsure)
                refill_blocked = str(exc)
        for trigger in triggers:
            not_again.add(trigger.code)
            new_target = {code: volume for code, volume in target.items() if code != trigger.code}
            refill_code, refill_volume, refill_price = "", 0, Decimal(0)
            if rotation.refill_after_tp_sl and not refill_blocked:
                value = trigger.price * held[trigger.code].volume
                refill_code, refill_volume, refill_price = _refill(
                    rotation, new_target, value, quotes, not_again
                )
                if refill_code:
                    new_target[refill_code] = refill_volume
            result = {
                "rotation": rotation.name,
                "code": trigger.code,
                "kind": trigger.kind,
                "price": trigger.price,
                "cost": trigger.cost,
                "ratio": trigger.ratio,
                "refill": refill_code,
                "refill_blocked": refill_blocked,
            }
            results.append(result)
            if dry_run:
                continue
            prices = {code: quotes[code].last for code in new_target if code in quotes and quotes[code].last}
            snapshot = _write_target(rotation, new_target, prices)
            TpSlEvent.objects.create(
                rotation=rotation,
                kind=trigger.kind,
                code=trigger.code,
                price=trigger.price,
                cost=trigger.cost,
                ratio=trigger.ratio,
                refill_code=refill_code,
                target_snapshot_id=snapshot.pk,
            )
            notify(
                EVENT_TP_SL_TRIGGERED,
                title=lambda trigger=trigger, rotation=rotation: _tp_sl_title(rotation, trigger),
                body=lambda trigger=trigger, code=refill_code, volume=refill_volume, blocked=refill_blocked: (
                    _tp_sl_body(trigger, code, volume, blocked)
                ),
                key=f"{rotation.name}:{trigger.code}:{trigger.kind}",
            )
            target = new_target
    return results

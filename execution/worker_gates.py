"""When a worker may send or cancel: kill switches and the exchange's hours (DESIGN §4, §5.7)."""

from datetime import datetime

from qmtjq.trading import trading_globally_off_reason

from .models import BrokerAccount


def trading_gate(account: BrokerAccount, now: datetime) -> str:
    """Why no order may be sent now, or ''. Kill switches first (DESIGN §5.7)."""
    if reason := trading_globally_off_reason():
        return reason
    if not account.trading_enabled:
        return f"trading switch of account {account.name} is off"
    if account.hours_enforced:
        from .calendar import CalendarUnknown, can_place_orders

        try:
            allowed, reason = can_place_orders(now, allow_closing_auction=account.allow_closing_auction)
        except CalendarUnknown as exc:
            return str(exc)
        if not allowed:
            return str(reason)
    return ""


def outside_session(account: BrokerAccount, now: datetime) -> bool:
    """True when the account keeps market hours and the market is not open now."""
    if not account.hours_enforced:
        return False
    from .calendar import CalendarUnknown, can_place_orders

    try:
        return not can_place_orders(now, allow_closing_auction=True)[0]
    except CalendarUnknown:
        return True


def hours_allow_cancel(account: BrokerAccount, now: datetime) -> bool:
    if not account.hours_enforced:
        return True
    from .calendar import CalendarUnknown, can_cancel_orders

    try:
        return can_cancel_orders(now)
    except CalendarUnknown:
        return False

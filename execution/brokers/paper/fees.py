"""Paper fees: commission with its minimum, stamp duty on stock sells (DESIGN §4)."""

from decimal import Decimal

from positions.codes import InstrumentClass, instrument_class

from ...models import BrokerAccount
from .book import ZERO, cents

# Stamp duty is charged on stock sells only; bonds and funds/ETFs are exempt.
STAMP_DUTY_CLASSES = frozenset(
    {InstrumentClass.MAIN_BOARD, InstrumentClass.CHINEXT, InstrumentClass.STAR, InstrumentClass.BJ}
)


def commission(account: BrokerAccount, amount: Decimal) -> Decimal:
    return cents(max(amount * account.commission_rate, account.min_commission))


def stamp_duty(account: BrokerAccount, code: str, amount: Decimal) -> Decimal:
    """Stamp duty on a sell of `amount`; zero for bonds and funds."""
    if instrument_class(code) in STAMP_DUTY_CLASSES:
        return cents(amount * account.stamp_duty_rate)
    return ZERO

"""Paper fees (DESIGN §4): commission with its minimum, stamp duty on stock sells, transfer fee on stock trades."""

from decimal import Decimal

from positions.codes import InstrumentClass, instrument_class

from ...models import BrokerAccount
from .book import ZERO, cents

# Stamp duty and the transfer fee are charged on stocks only; bonds and funds/ETFs are exempt.
STOCK_CLASSES = frozenset(
    {InstrumentClass.MAIN_BOARD, InstrumentClass.CHINEXT, InstrumentClass.STAR, InstrumentClass.BJ}
)
# Transfer fee (过户费), collected for CSDC on stock buys and sells: 0.001% of
# the traded value on both exchanges since 2022-04-29.
TRANSFER_FEE_RATE = Decimal("0.00001")


def commission(account: BrokerAccount, amount: Decimal) -> Decimal:
    return cents(max(amount * account.commission_rate, account.min_commission))


def stamp_duty(account: BrokerAccount, code: str, amount: Decimal) -> Decimal:
    """Stamp duty on a sell of `amount`; zero for bonds and funds."""
    if instrument_class(code) in STOCK_CLASSES:
        return cents(amount * account.stamp_duty_rate)
    return ZERO


def transfer_fee(code: str, amount: Decimal) -> Decimal:
    """Transfer fee on a buy or a sell of `amount`; zero for bonds and funds."""
    if instrument_class(code) in STOCK_CLASSES:
        return cents(amount * TRANSFER_FEE_RATE)
    return ZERO


def buy_fees(account: BrokerAccount, code: str, amount: Decimal) -> Decimal:
    """What a buy of `amount` pays on top of it: commission and transfer fee."""
    return commission(account, amount) + transfer_fee(code, amount)

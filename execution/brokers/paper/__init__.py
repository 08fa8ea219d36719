"""The paper broker: a simulated brokerage for an account's first weeks (issue 3, DESIGN §4, §6).

It is a product feature, not a mock: it keeps persisted cash and positions
in the paper tables and refuses or fills orders the way the exchange and
xtquant would.

- Orders are checked like a broker checks them (`checks`): lots per
  instrument class, the tick grid, limit-up/down, the price cage,
  suspension, cash (amount plus commission, net of cash frozen by open buys)
  and sellable volume (T+1 and frozen shares). A refused order still gets an
  id and ends as status 57 with the reason, like xtquant.
- A limit order fills (`fills`), whole, at the reference price (the quote's
  last price) once its limit crosses it. Buys never fill while the price
  sits at limit-up (no sellers there) and sells never at limit-down; the
  worker cancels them after its timeout. Orders left open at the end of the
  trading day expire. Fees are in `fees`, the T+1 bookkeeping in `book`.
- Time passes only when the broker is asked something: every query,
  `drain_events`, `place_order` and `cancel_order` first matches the open
  orders against fresh quotes.
"""

from .broker import PaperBroker, QuoteSource

__all__ = ["PaperBroker", "QuoteSource"]

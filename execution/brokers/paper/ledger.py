"""One account's paper books in memory while the book row is locked; `save` writes what changed in bulk.

A shared database may be a WAN link away (issue 9): placing, filling or
cancelling N orders costs a constant number of queries, not a few per order.
Load and save happen inside one `transaction.atomic()` with the PaperBook row
locked (`select_for_update`), so two brokers over one account never
double-spend the same cash or shares.
"""

from django.db.models import Q

from ...models import BrokerAccount, PaperBook, PaperOrder, PaperPosition, PaperTrade
from .book import OPEN

ORDER_FIELDS = [
    "traded_volume",
    "traded_price",
    "status",
    "frozen_cash",
    "price_source",
    "message",
    "updated_at",
]
POSITION_FIELDS = ["volume", "avg_price", "bought_today", "bought_on", "frozen_volume"]
BOOK_FIELDS = ["cash", "frozen_cash", "next_order_id", "next_trade_id"]


class PaperLedger:
    def __init__(
        self,
        account: BrokerAccount,
        book: PaperBook,
        positions: list[PaperPosition],
        open_orders: list[PaperOrder],
    ):
        self.account = account
        self.book = book
        self._positions = {p.code: p for p in positions}
        self.open_orders = open_orders  # by broker order id; orders placed now are appended
        self.events: list = []
        self._new_orders: list[PaperOrder] = []
        self._changed_orders: dict[int, PaperOrder] = {}
        self._changed_positions: dict[str, PaperPosition] = {}
        self._trades: list[PaperTrade] = []

    @classmethod
    def load(cls, account: BrokerAccount, *, order_ids: list[int] = ()) -> "PaperLedger":
        """Lock the book and read the positions and open orders (plus `order_ids`, e.g. one to cancel).

        Call inside `transaction.atomic()`.
        """
        book = PaperBook.objects.select_for_update().get(account=account)
        positions = list(PaperPosition.objects.filter(account=account))
        wanted = Q(status=OPEN) | Q(broker_order_id__in=list(order_ids)) if order_ids else Q(status=OPEN)
        orders = list(PaperOrder.objects.filter(wanted, account=account).order_by("broker_order_id"))
        ledger = cls(account, book, positions, [o for o in orders if o.status == OPEN])
        ledger.looked_up = {o.broker_order_id: o for o in orders}
        return ledger

    # --- rows --------------------------------------------------------------------

    def position(self, code: str) -> PaperPosition | None:
        return self._positions.get(code)

    def position_for_change(self, code: str) -> PaperPosition:
        """The position of `code` (created empty when new), marked to be written."""
        position = self._positions.get(code)
        if position is None:
            position = self._positions[code] = PaperPosition(account=self.account, code=code)
        self._changed_positions[code] = position
        return position

    def held(self) -> list[PaperPosition]:
        return sorted((p for p in self._positions.values() if p.volume > 0), key=lambda p: p.code)

    def order_added(self, order: PaperOrder) -> None:
        self._new_orders.append(order)
        if order.status == OPEN:
            self.open_orders.append(order)

    def order_changed(self, order: PaperOrder) -> None:
        if order.pk is not None:
            self._changed_orders[order.pk] = order
        if order.status != OPEN and order in self.open_orders:
            self.open_orders.remove(order)

    def trade_added(self, trade: PaperTrade) -> None:
        self._trades.append(trade)

    # --- writing -----------------------------------------------------------------

    def save(self) -> None:
        """Write the orders, trades, positions and the book: a handful of queries whatever the count."""
        if self._new_orders:
            PaperOrder.objects.bulk_create(self._new_orders)  # sets their ids (RETURNING) for the trades
        if self._changed_orders:
            PaperOrder.objects.bulk_update(list(self._changed_orders.values()), ORDER_FIELDS)
        if self._trades:
            PaperTrade.objects.bulk_create(self._trades)
        new = [p for p in self._changed_positions.values() if p.pk is None]
        if new:
            PaperPosition.objects.bulk_create(new)
        known = [p for p in self._changed_positions.values() if p.pk is not None]
        if known:
            PaperPosition.objects.bulk_update(known, POSITION_FIELDS)
        PaperBook.objects.filter(pk=self.book.pk).update(**{f: getattr(self.book, f) for f in BOOK_FIELDS})
        self._new_orders, self._changed_orders, self._changed_positions, self._trades = [], {}, {}, []

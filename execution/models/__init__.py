"""Models of the execution app; each topic lives in its own module and is re-exported here."""

from .accounts import BrokerAccount, ManagedCode, ReservedHolding, Subscription  # noqa: F401
from .calendar import TradingDay  # noqa: F401
from .orders import FINAL_STATUSES, Fill, Order, OrderEvent, OrderStatus, Round, order_key_new  # noqa: F401
from .paper import PaperBook, PaperOrder, PaperPosition, PaperTrade  # noqa: F401
from .remote import RemoteSync, WorkerClient, WorkerKey, WorkerQuote, WorkerStatus  # noqa: F401
from .state import AccountState, EquityPoint, Holding, LeaseEvent, ManualQuote, WorkerLease  # noqa: F401

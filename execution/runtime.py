"""Builds the broker and quote source an account needs (the worker and `serve` use this)."""

from .brokers.base import Broker
from .models import BrokerAccount
from .services.rounds import QuoteSource


def quote_source_for(account: BrokerAccount) -> QuoteSource:
    from .quotes import quote_chain_for

    strategy_ids = list(account.subscriptions.values_list("strategy_id", flat=True))
    return quote_chain_for(account, strategy_ids=strategy_ids).get


def broker_for(account: BrokerAccount, *, quote_source: QuoteSource) -> Broker:
    if account.is_paper:
        from .brokers.paper import PaperBroker

        return PaperBroker(account, quote_source=quote_source)
    from .brokers.xtquant import XtQuantBroker

    return XtQuantBroker(userdata_mini_path=account.userdata_mini_path, account_id=account.account_id)

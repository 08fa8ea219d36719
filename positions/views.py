"""Pages: the positions overview."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from execution.selectors_status import account_statuses, held_rounds
from qmtjq.trading import trading_globally_enabled

from . import selectors
from .models import Strategy


@login_required
def overview(request):
    strategies = selectors.strategies_with_targets(Strategy.objects.all())
    total_lines, latest = selectors.positions_total(strategies)
    cards = [
        (strategy, selectors.target_lines(strategy), selectors.strategy_staleness(strategy))
        for strategy in strategies
    ]
    return render(
        request,
        "positions/overview.html",
        {
            "cards": cards,
            "total_lines": total_lines,
            "total_update_time": latest,
            "statuses": account_statuses(now=timezone.now()),
            "held_rounds": held_rounds(),
            "global_trading_enabled": trading_globally_enabled(),
        },
    )

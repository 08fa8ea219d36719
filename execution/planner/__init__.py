"""The convergence planner: target vs fresh actual → one round of orders (DESIGN §4, §5).

Pure: no database, no broker, no clock. The worker gathers the inputs, the
planner decides, the worker records and sends. Every line that is not traded
gets a `Skip` with a reason a trader understands.

- `types`: inputs and outputs;
- `targets`: the account target (scaling, summing, what blocks the account);
- `diff`: target vs actual per code, the one definition of "managed";
- `round`: one round of orders the exchange accepts, sells first.
"""

from .diff import diff_lines
from .round import plan_round
from .targets import account_target, rule_exit_codes, scale_factor, scale_problem, targets_block_reason
from .types import (
    ZERO,
    AccountPolicy,
    AccountView,
    DiffLine,
    Holding,
    Plan,
    PlannedOrder,
    PlanStatus,
    Quote,
    Skip,
    SkipReason,
    SubscribedTarget,
    TargetLine,
)

__all__ = [
    "ZERO",
    "AccountPolicy",
    "AccountView",
    "DiffLine",
    "Holding",
    "Plan",
    "PlanStatus",
    "PlannedOrder",
    "Quote",
    "Skip",
    "SkipReason",
    "SubscribedTarget",
    "TargetLine",
    "account_target",
    "diff_lines",
    "plan_round",
    "rule_exit_codes",
    "scale_factor",
    "scale_problem",
    "targets_block_reason",
]

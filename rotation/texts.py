"""Rotation decision reasons: a stable code and its English template (the msgid of its translation).

The same scheme as the planner's skips (execution.planner.texts): a decision row stores the code
and the parameters next to the English reason; pages render them in the reader's language
(qmtjq.display.decision_reason). A code is never reused; changing a template means a new translation.
"""

from execution.planner.texts import coded

ROTATION_TEXTS = {
    "still_selected": "still selected",
    "excluded": "excluded",
    "ranked_beyond_top": "ranked beyond the top %(n)s",
    "left_selection": "left the selection",
    "sells_when_trading": "suspended now, the worker sells when it trades again",
    "not_cb": "not a convertible bond",
    "suspended": "suspended",
    "no_price": "no price",
    "at_limit_up": "at limit-up",
    "top_held": "top %(n)s already held",
    "beyond_top": "beyond the top %(n)s",
    "cash_short_fixed": "not enough cash for the fixed amount",
    "budget_short_fixed": "not enough budget for the fixed amount",
    "cash_short_lots": "not enough cash for 10 bonds",
    "budget_short_lots": "not enough budget for 10 bonds",
    "rank": "rank %(rank)s",
    "cooldown_take_profit": "take-profit sold it on %(day)s: not bought back within %(days)s trading day(s) (cooldown)",
    "cooldown_stop_loss": "stop-loss sold it on %(day)s: not bought back within %(days)s trading day(s) (cooldown)",
}


def rotation_text(text: str, **params) -> tuple[str, dict]:
    """(the English reason, {"text": code, "params": JSON-safe parameters}) for a decision row."""
    return coded(ROTATION_TEXTS, text, **params)

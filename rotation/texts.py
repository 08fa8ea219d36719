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


# Rotation run messages (RotationRun.message + RotationRun.message_params): why a run failed or was skipped.
ROTATION_RUN_TEXTS = {
    "budget_missing": (
        "account %(account)s follows other strategies too (%(others)s): rotation %(name)s needs a capital "
        "budget (an amount or a share of total assets) before it runs"
    ),
    "no_state": "account %(account)s has no reported state yet: start its worker first",
    "no_total_asset": (
        "account %(account)s reports no total assets: the capital budget, a share of them, cannot be measured"
    ),
    "budget_unknown": (
        "rotation %(name)s: no price or cost for %(codes)s: the capital budget's use cannot be measured"
    ),
    "cooldown_calendar": (
        "cannot count the %(days)s-trading-day take-profit/stop-loss cooldown: %(detail)s; nothing changed"
    ),
    "selection_unreadable": (
        "Factor Cat's selection of record %(record)s has items that cannot be read (%(detail)s); nothing changed"
    ),
    "selection_empty": "Factor Cat's selection of record %(record)s is empty for %(day)s; nothing changed",
    "selection_not_today": "Factor Cat's selection of record %(record)s %(detail)s; nothing changed",
    "no_selection": "no selection for %(day)s: upload one (CSV or API) first; nothing changed",
    "selection_other_day": "the selection is for %(listed)s, not %(day)s; nothing changed",
    "late_skip": (
        "Skipped: the scheduled run of %(slot)s could only start at %(now)s, %(late)s minutes late, "
        "more than the allowed %(allowed)s minutes. Trading on a late signal could buy or sell at "
        "prices the selection was not made for; run it by hand if it is still wanted."
    ),
    "failed": "Failed: %(error)s",
}


def run_text(text: str, **params) -> tuple[str, dict]:
    """(the English message, {"text": code, "params": ...}) for a rotation run (RotationRun.message_params)."""
    return coded(ROTATION_RUN_TEXTS, text, **params)

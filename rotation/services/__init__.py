"""Writes for rotation: create rotations, take in selections, run a rotation, take profit / stop loss.

A rotation never places orders: it writes its Strategy's target snapshot and
the account's worker trades the difference (DESIGN §2). One module per topic.
"""

from .rotations import RotationError, record_top_n, rotation_create, rotations_confirm_targets
from .runs import rotation_decide, rotation_run_now, run_execute
from .selections import (
    MAX_SELECTION,
    SelectedBond,
    factorcat_selection_get,
    selection_fetch_factorcat,
    selection_for,
    selection_parse_csv,
    selection_store,
    selection_validate,
)
from .tp_sl import _ratios, tp_sl_check

__all__ = [
    "MAX_SELECTION",
    "factorcat_selection_get",
    "RotationError",
    "record_top_n",
    "SelectedBond",
    "_ratios",
    "rotation_create",
    "rotation_decide",
    "rotation_run_now",
    "rotations_confirm_targets",
    "run_execute",
    "selection_fetch_factorcat",
    "selection_for",
    "selection_parse_csv",
    "selection_store",
    "selection_validate",
    "tp_sl_check",
]

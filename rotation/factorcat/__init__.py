"""Factor Cat (因子猫): the HTTP client (`client`) and its wire shapes (`wire`), DESIGN §8."""

import time  # noqa: F401 - tests pause the client's retry backoff through `factorcat.time.sleep`

from .client import FactorCatClient  # noqa: F401
from .wire import (  # noqa: F401
    FactorCatAuthError,
    FactorCatError,
    LoginResult,
    Page,
    SelectedBond,
    TodaySelection,
    server_message,
    token_expires_at,
    token_tail,
    tp_sl_ratios,
    trade_date_parse,
)

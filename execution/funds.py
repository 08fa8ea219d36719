"""ETF facts the code's class alone does not give (DESIGN §4): which ETFs are T+0, which have ±20% limits.

The one place for this knowledge; `market.rules_for` (T+0) and `limits`
(±20%) read it. Broker data always wins: the live broker's `can_use_volume`
already says what is sellable, and the broker's limit prices replace the
fallback limits computed from this module.

Where the lists come from: the exchanges' trading rules (SSE/SZSE 交易规则,
当日回转交易: bond, gold, cross-border and money-market ETFs; SSE/SZSE
notices of 2020–2021 on ±20% limits for funds tracking indices made only of
STAR or ChiNext stocks) and the funds' own listing announcements, as of 2026.

How to extend: a new T+0 ETF outside the SH code ranges below, or a new
ChiNext/STAR-index ETF, is one more code in the matching set below (canonical
form, `159xxx.SZ`), with its name in a comment; then restart the worker.
"""

import re

from positions.codes import InstrumentClass, instrument_class

# SSE gives whole code ranges to these ETF kinds, so new listings are covered:
# 511xxx bond and money-market ETFs, 513xxx cross-border ETFs, 518xxx gold ETFs.
T_PLUS_ZERO_SH_PREFIXES = ("511", "513", "518")
# SZSE mixes kinds inside 159xxx: the T+0 ones one by one.
T_PLUS_ZERO_CODES = frozenset(
    {
        # money-market ETFs
        "159001.SZ",  # 保证金货币ETF
        "159003.SZ",  # 招商快线ETF
        "159005.SZ",  # 添富快钱ETF
        # gold ETFs
        "159934.SZ",  # 黄金ETF易方达
        "159937.SZ",  # 黄金ETF博时
        "159812.SZ",  # 黄金ETF前海开源
        # bond ETFs
        "159650.SZ",  # 国开债ETF
        "159816.SZ",  # 0-4地债ETF
        "159972.SZ",  # 5年地债ETF
        # cross-border ETFs
        "159920.SZ",  # 恒生ETF
        "159941.SZ",  # 纳指ETF
        "159866.SZ",  # 日经ETF
        "159605.SZ",  # 中概互联ETF
        "159607.SZ",  # 中概互联网ETF
        "159740.SZ",  # 恒生科技ETF
        "159741.SZ",  # 恒生科技ETF基金
        "159742.SZ",  # 恒生科技指数ETF
        "159850.SZ",  # 恒生国企ETF
        "159892.SZ",  # 恒生医药ETF
        "159612.SZ",  # 标普500ETF
        "159655.SZ",  # 标普ETF
        "159659.SZ",  # 纳斯达克100ETF
        "159660.SZ",  # 纳指100ETF
        "159696.SZ",  # 纳指ETF易方达
        "159501.SZ",  # 纳斯达克指数ETF
        "159509.SZ",  # 纳指科技ETF
        "159518.SZ",  # 标普油气ETF
        "159529.SZ",  # 标普消费ETF
        # commodity futures ETFs are T+0 too
        "159980.SZ",  # 有色ETF
        "159981.SZ",  # 能源化工ETF
        "159985.SZ",  # 豆粕ETF
    }
)

# SSE lists STAR-market ETFs (科创50, 科创100, 科创芯片, 双创50, …) in 588xxx.
TWENTY_PCT_SH_PREFIXES = ("588",)
TWENTY_PCT_CODES = frozenset(
    {
        "159915.SZ",  # 创业板ETF易方达
        "159952.SZ",  # 创业板ETF广发
        "159948.SZ",  # 创业板ETF南方
        "159908.SZ",  # 创业板ETF博时
        "159977.SZ",  # 创业板ETF天弘
        "159949.SZ",  # 创业板50ETF
        "159966.SZ",  # 创业板价值ETF (创蓝筹)
        "159967.SZ",  # 创业板成长ETF (创成长)
        "159781.SZ",  # 科创创业ETF (双创50)
        "159783.SZ",  # 双创50ETF
    }
)
# A fund name that says ChiNext, STAR or both (双创) tracks 20%-limit stocks ...
_TWENTY_PCT_NAME = re.compile(r"创业板|科创|双创")
# ... unless it holds bonds (科创债ETF: bonds of STAR-type issuers, ±10%).
_BOND_NAME = re.compile(r"债")


def _is_fund(code: str) -> bool:
    return instrument_class(code) is InstrumentClass.FUND


def is_t_plus_zero_fund(code: str) -> bool:
    """A bond, gold, money-market, cross-border (or commodity) ETF: sellable the day it is bought."""
    if not _is_fund(code):
        return False
    return code in T_PLUS_ZERO_CODES or (code.endswith(".SH") and code.startswith(T_PLUS_ZERO_SH_PREFIXES))


def has_twenty_pct_limit(code: str, *, name: str = "") -> bool:
    """A fund tracking a ChiNext or STAR index (±20%), by code, or by name when the name is known.

    When in doubt the wider band is the safer fallback: a too-narrow band
    would invent a limit-down that blocks an exit, a too-wide one at worst
    lets the exchange refuse an order.
    """
    if not _is_fund(code):
        return False
    if code in TWENTY_PCT_CODES or (code.endswith(".SH") and code.startswith(TWENTY_PCT_SH_PREFIXES)):
        return True
    return bool(name) and bool(_TWENTY_PCT_NAME.search(name)) and not _BOND_NAME.search(name)

"""Target vs actual per code: the one definition of "managed" the round and the pages share."""

from positions.codes import is_never_traded

from .. import market
from .types import AccountPolicy, AccountView, DiffLine, Skip, SkipReason


def _left_alone(code: str, actual: int, reserved: int) -> DiffLine:
    return DiffLine(code, None, actual, reserved, None, managed=False)


def diff_lines(
    target: dict[str, int],
    account: AccountView,
    policy: AccountPolicy,
    *,
    unsized: frozenset[str] = frozenset(),
) -> tuple[list[DiffLine], list[Skip]]:
    """Every code targeted or held, with what the round would do to it.

    A code is managed when some strategy targets it, or when qmtjq ever
    targeted or traded it for this account (so a code a strategy dropped is
    managed, with target 0); anything else held is left alone unless the
    account sells unmanaged holdings. Codes qmtjq never trades, codes on the
    ignore list and classes without market rules are left alone with a skip.
    `unsized`: codes a strategy targets whose target could not be computed
    (already skipped by `account_target`): left alone, never sold to 0.
    """
    lines: list[DiffLine] = []
    skips: list[Skip] = []
    for code in sorted(set(target) | set(account.holdings)):
        holding = account.holdings.get(code)
        held = holding.volume if holding else 0
        reserved = account.reserved.get(code, 0)
        actual = max(held - reserved, 0)
        if code in unsized:
            lines.append(_left_alone(code, actual, reserved))
            continue
        if is_never_traded(code) or code in policy.ignore_codes:
            if code in target or held:
                skips.append(Skip.of(code, SkipReason.IGNORED, "ignored"))
            lines.append(_left_alone(code, actual, reserved))
            continue
        try:
            market.rules_for(code)
        except Exception as exc:  # noqa: BLE001 - one bad line never stops the round
            if not isinstance(exc, market.NotTradable):
                detail = f"could not plan this line: {type(exc).__name__}: {exc}"
                skips.append(Skip(code, SkipReason.ERROR, detail, actual))
                lines.append(_left_alone(code, actual, reserved))
                continue
            # A class the product does not trade (exchangeable bonds, REITs, …) is never
            # sold or bought, whether or not the account sells unmanaged holdings.
            if code not in target:  # account_target already recorded targeted ones
                skips.append(Skip(code, SkipReason.NOT_TRADABLE, str(exc), actual))
            lines.append(_left_alone(code, actual, reserved))
            continue
        if code in target:
            wanted = target[code]
        elif code in account.managed_codes or policy.sell_unmanaged:
            wanted = 0
        elif not actual:
            lines.append(_left_alone(code, actual, reserved))  # all reserved: nothing to decide
            continue
        else:
            skips.append(Skip.of(code, SkipReason.UNMANAGED, "unmanaged"))
            lines.append(_left_alone(code, actual, reserved))
            continue
        lines.append(DiffLine(code, wanted, actual, reserved, wanted - actual))
    return lines, skips

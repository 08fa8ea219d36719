"""Money-safety classes of the planner (issue 7): data gaps block, exits go out, every order is valid."""

from decimal import Decimal as D

import pytest

from execution import market
from execution.planner import (
    AccountPolicy,
    PlanStatus,
    Quote,
    SkipReason,
    diff_lines,
    plan_round,
)
from execution.tests.test_planner import NOW, POLICY, orders, quotes, reasons, sub, view


def plan(subs, account, quote_map, policy=POLICY):
    return plan_round(subscriptions=subs, account=account, quotes=quote_map, policy=policy, now=NOW)


def policy(**changes):
    return AccountPolicy(**{**POLICY.__dict__, **changes})


# --- missing data blocks, never trades --------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "total_value", "why"),
    [
        # no total_value and every cost 0: Σ volume × cost is 0, nothing to scale from
        ([("600000.SH", 1000, "0")], None, "no total_value"),
        ([("600000.SH", 1000, "0"), ("000001.SZ", 500, "0")], None, "no total_value"),
        ([("600000.SH", 1000, "0")], "0", "no total_value"),
        # one line without a cost in an otherwise priced snapshot would get the whole scale factor
        ([("600000.SH", 1000, "10"), ("000001.SZ", 3000, "0")], None, "000001.SZ"),
        # a negative total_value is not a size
        ([("600000.SH", 1000, "10")], "-5", "total_value"),
    ],
)
def test_capital_scale_that_cannot_be_computed_blocks(lines, total_value, why):
    """Capital mode with no way to size the strategy blocks the account instead of selling everything."""
    subs = [sub(lines, mode="capital", capital="10000", total_value=total_value)]
    account = view(
        holdings=[("600000.SH", 1000, 1000), ("000001.SZ", 500, 500)], managed=["600000.SH", "000001.SZ"]
    )
    result = plan(subs, account, quotes(("600000.SH", "10"), ("000001.SZ", "10")))
    assert result.status is PlanStatus.BLOCKED
    assert why in result.message
    assert result.orders == []


def test_capital_mode_with_total_value_ignores_line_costs():
    """total_value sizes the strategy, so a zero cost on a line does not matter."""
    subs = [sub([("600000.SH", 1000, "0")], mode="capital", capital="50000", total_value="100000")]
    result = plan(subs, view(), quotes(("600000.SH", "10")))
    assert orders(result) == [("600000.SH", "buy", 500)]


def test_capital_mode_empty_target_is_a_real_signal():
    """An explicit empty list in capital mode still means "strategy went to cash"."""
    subs = [sub([], mode="capital", capital="10000")]
    account = view(holdings=[("600000.SH", 1000, 1000)], managed=["600000.SH"])
    assert orders(plan(subs, account, quotes(("600000.SH", "10")))) == [("600000.SH", "sell", 1000)]


@pytest.mark.parametrize("ratio", ["0", "-1"])
def test_ratio_that_is_not_positive_blocks(ratio):
    """A zero or negative ratio cannot scale a target; it must not turn into "sell everything"."""
    account = view(holdings=[("600000.SH", 1000, 1000)], managed=["600000.SH"])
    result = plan([sub([("600000.SH", 1000, "10")], ratio=ratio)], account, quotes(("600000.SH", "10")))
    assert result.status is PlanStatus.BLOCKED and result.orders == []


def test_zero_capital_blocks():
    account = view(holdings=[("600000.SH", 1000, 1000)], managed=["600000.SH"])
    subs = [sub([("600000.SH", 1000, "10")], mode="capital", capital="0", total_value="100000")]
    result = plan(subs, account, quotes(("600000.SH", "10")))
    assert result.status is PlanStatus.BLOCKED and "capital" in result.message


# --- exits go out: rule exits are not held for approval --------------------------------


def rotation_sub(lines, exits, **kwargs):
    from dataclasses import replace

    return replace(sub(lines, **kwargs), rule_exits=frozenset(exits))


def test_rule_exit_is_not_held_for_approval():
    """A stop-loss (or rotation) sell the user's rules ordered goes out whatever its size."""
    account = view(cash="0", total="100000", holdings=[("113050.SH", 500, 500)], managed=["113050.SH"])
    subs = [rotation_sub([], ["113050.SH"])]
    result = plan(subs, account, quotes(("113050.SH", "120")), policy(approval_threshold=D("0.2")))
    assert result.status is PlanStatus.PLACE
    assert orders(result) == [("113050.SH", "sell", 500)]


def test_rule_exits_can_opt_back_into_approval():
    account = view(cash="0", total="100000", holdings=[("113050.SH", 500, 500)], managed=["113050.SH"])
    subs = [rotation_sub([], ["113050.SH"])]
    held = policy(approval_threshold=D("0.2"), hold_rule_exits=True)
    assert plan(subs, account, quotes(("113050.SH", "120")), held).status is PlanStatus.HOLD


def test_upload_that_empties_a_strategy_is_still_held():
    """A JoinQuant upload that suddenly empties a strategy is not a rule exit: it waits for a human."""
    account = view(cash="0", total="100000", holdings=[("600000.SH", 5000, 5000)], managed=["600000.SH"])
    result = plan([sub([])], account, quotes(("600000.SH", "10")), policy(approval_threshold=D("0.2")))
    assert result.status is PlanStatus.HOLD


def test_rule_exits_go_out_while_large_buys_wait():
    """Exits are placed at once; the buys over the threshold are left for the next (held) round."""
    subs = [rotation_sub([("123001.SZ", 500, "100")], ["113050.SH"])]
    account = view(cash="60000", total="120000", holdings=[("113050.SH", 500, 500)], managed=["113050.SH"])
    result = plan(
        subs,
        account,
        quotes(("113050.SH", "120"), ("123001.SZ", "100")),
        policy(approval_threshold=D("0.2")),
    )
    assert result.status is PlanStatus.PLACE
    assert orders(result) == [("113050.SH", "sell", 500)]
    assert "approval" in result.message


# --- every order is one the exchange accepts -----------------------------------------------


@pytest.mark.parametrize(
    ("code", "wanted", "sellable", "held", "sell"),
    [
        # main board: whole lots, or whole lots plus the whole odd remainder, in one order
        ("600000.SH", 550, 1050, 1050, 550),
        ("600000.SH", 50, 1050, 1050, 50),  # the odd part alone
        ("600000.SH", 540, 1050, 1050, 500),  # 40 of the odd 50 is not allowed
        ("600000.SH", 150, 250, 250, 150),
        ("600000.SH", 1050, 1050, 1050, 1050),
        ("600000.SH", 750, 750, 1000, 700),  # 250 reserved: 750 is not a valid sell
        ("600000.SH", 750, 1000, 1000, 700),
        ("300750.SZ", 120, 1120, 1120, 120),
        # convertible bonds: lots of 10, odd remainder (<10) with them
        ("113050.SH", 25, 105, 105, 25),
        ("113050.SH", 25, 100, 100, 20),
        ("113050.SH", 7, 37, 37, 7),
        # STAR: at least 200, or the whole holding
        ("688981.SH", 150, 350, 350, 0),
        ("688981.SH", 250, 300, 300, 250),
        ("688981.SH", 150, 150, 150, 150),
        ("688981.SH", 150, 150, 400, 0),  # 250 reserved: 150 is neither ≥ 200 nor the whole
        # BJ: at least 100, or the whole holding
        ("430047.BJ", 50, 150, 150, 0),
        ("430047.BJ", 150, 150, 150, 150),
        ("430047.BJ", 120, 150, 150, 120),
    ],
)
def test_sell_volumes_follow_odd_lot_rules(code, wanted, sellable, held, sell):
    assert market.rules_for(code).round_sell(wanted, sellable, held=held) == sell


@pytest.mark.parametrize(
    ("code", "held", "target", "expected"),
    [
        ("600000.SH", 1050, 500, 550),  # odd shares no longer stay forever
        ("600000.SH", 1050, 1000, 50),
        ("113050.SH", 105, 50, 55),
    ],
)
def test_holding_with_odd_part_reaches_a_nonzero_target(code, held, target, expected):
    account = view(holdings=[(code, held, held)], managed=[code])
    result = plan([sub([(code, target, "10")])], account, quotes((code, "10")))
    assert orders(result) == [(code, "sell", expected)]


@pytest.mark.parametrize(
    ("code", "held", "reserved", "sell", "skipped"),
    [
        ("600000.SH", 1000, 250, 700, 50),
        ("688981.SH", 400, 250, 0, 150),
        ("300750.SZ", 1000, 10, 900, 90),
    ],
)
def test_reserved_holdings_never_make_an_invalid_sell(code, held, reserved, sell, skipped):
    """What is reserved stays; the sell is rounded to what the rules allow and the rest recorded."""
    account = view(holdings=[(code, held, held)], reserved={code: reserved}, managed=[code])
    result = plan([sub([])], account, quotes((code, "10")))
    assert orders(result) == ([(code, "sell", sell)] if sell else [])
    skip = [s for s in result.skips if s.code == code and s.reason is SkipReason.LOT_TOO_SMALL]
    assert skip and skip[0].volume == skipped


@pytest.mark.parametrize(
    ("code", "volume", "chunks"),
    [
        ("688981.SH", 250_000, [100_000, 100_000, 50_000]),  # STAR limit orders ≤ 100,000
        ("688981.SH", 200_100, [100_000, 99_900, 200]),  # no piece below STAR's 200 minimum
        ("300750.SZ", 700_000, [300_000, 300_000, 100_000]),  # ChiNext ≤ 300,000
        ("600000.SH", 2_500_000, [1_000_000, 1_000_000, 500_000]),  # main board ≤ 1,000,000
        ("600000.SH", 900_000, [900_000]),
    ],
)
def test_large_buys_are_split_at_the_exchange_order_cap(code, volume, chunks):
    result = plan([sub([(code, volume, "1")])], view(cash="100000000"), quotes((code, "1")))
    assert [o.volume for o in result.orders] == chunks
    assert all(o.side == "buy" for o in result.orders)


def test_large_sell_split_keeps_the_odd_part_in_one_order():
    code = "600000.SH"
    account = view(holdings=[(code, 1_200_050, 1_200_050)], managed=[code])
    result = plan([sub([])], account, quotes((code, "1")))
    assert [o.volume for o in result.orders] == [1_000_000, 200_050]


def test_broker_order_cap_wins_over_the_table():
    code = "600000.SH"
    q = {code: Quote(code, D("1"), source="test", max_order_volume=300_000)}
    result = plan([sub([(code, 700_000, "1")])], view(cash="100000000"), q)
    assert [o.volume for o in result.orders] == [300_000, 300_000, 100_000]


@pytest.mark.parametrize("sell_unmanaged", [False, True])
@pytest.mark.parametrize("code", ["132001.SH", "508000.SH", "180101.SZ", "200002.SZ", "900901.SH"])
def test_held_codes_the_product_does_not_trade_are_skipped(code, sell_unmanaged):
    """Exchangeable bonds, REITs, classes without rules: skipped with not_tradable, never an exception."""
    account = view(holdings=[(code, 1000, 1000), ("600000.SH", 1000, 1000)], managed=[code, "600000.SH"])
    result = plan(
        [sub([])],
        account,
        quotes((code, "10"), ("600000.SH", "10")),
        policy(sell_unmanaged=sell_unmanaged),
    )
    assert (code, SkipReason.NOT_TRADABLE) in reasons(result)
    assert orders(result) == [("600000.SH", "sell", 1000)]


def test_a_failing_line_never_stops_the_round(monkeypatch):
    """An unexpected error on one line is a skip with a reason; the other lines still plan."""
    real = market.rules_for

    def broken(code, **kwargs):
        if code == "000001.SZ":
            raise ZeroDivisionError("boom")
        return real(code, **kwargs)

    monkeypatch.setattr(market, "rules_for", broken)
    account = view(holdings=[("000001.SZ", 1000, 1000)], managed=["000001.SZ"])
    result = plan(
        [sub([("600000.SH", 100, "10")])], account, quotes(("600000.SH", "10"), ("000001.SZ", "10"))
    )
    assert orders(result) == [("600000.SH", "buy", 100)]
    assert ("000001.SZ", SkipReason.ERROR) in reasons(result)


def test_a_target_that_cannot_be_sized_is_never_sold_to_zero(monkeypatch):
    """A targeted code whose sizing fails is left alone: it never becomes "target 0"."""
    real, calls = market.rules_for, []

    def flaky(code, **kwargs):
        calls.append(code)
        if code == "600000.SH" and calls.count(code) == 1:
            raise ArithmeticError("first call fails")
        return real(code, **kwargs)

    monkeypatch.setattr(market, "rules_for", flaky)
    account = view(holdings=[("600000.SH", 1000, 1000)], managed=["600000.SH"])
    result = plan([sub([("600000.SH", 1000, "10")])], account, quotes(("600000.SH", "10")))
    assert orders(result) == []
    assert ("600000.SH", SkipReason.ERROR) in reasons(result)


# --- one definition of "managed" --------------------------------------------------------------


def test_dropped_code_is_managed_and_planned_to_zero():
    """A code the strategy dropped is managed: the diff shows target 0, the same the round sells."""
    account = view(holdings=[("600000.SH", 1000, 1000), ("000001.SZ", 500, 500)], managed=["600000.SH"])
    lines, _skips = diff_lines({}, account, POLICY)
    by_code = {line.code: line for line in lines}
    assert by_code["600000.SH"].managed and by_code["600000.SH"].target == 0
    assert not by_code["000001.SZ"].managed

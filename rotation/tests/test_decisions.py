"""Rotation decisions, sizing and take-profit/stop-loss (pure, table-driven)."""

from decimal import Decimal as D

import pytest

from execution.planner import Quote
from rotation.decisions import Action, Candidate, decide, lots_for, ratio_from_parameter, tp_sl_triggers


def cands(*codes):
    return [Candidate(code, f"债{i}", i + 1) for i, code in enumerate(codes)]


def quotes(prices, **flags):
    return {code: Quote(code, D(price), **flags.get(code, {})) for code, price in prices.items()}


PRICES = {"113050.SH": "120", "123001.SZ": "100", "128001.SZ": "110", "110059.SH": "130", "127001.SZ": "105"}


def run(
    selection, held, *, cash="0", top_n=3, sizing="equal", amount=None, prices=PRICES, flags=None, excluded=()
):
    return decide(
        selection=selection,
        held=held,
        quotes=quotes(prices, **(flags or {})),
        excluded=frozenset(excluded),
        top_n=top_n,
        sizing=sizing,
        amount_per_bond=D(amount) if amount else None,
        cash=D(cash),
        fee_rate=D(0),
    )


def actions(decision):
    return {(r.code, r.action, r.volume) for r in decision.rows}


def test_keep_sell_buy():
    decision = run(
        cands("113050.SH", "123001.SZ", "128001.SZ"), {"113050.SH": 100, "110059.SH": 50}, cash="0"
    )
    # 110059 left the selection: sold (50 × 130 = 6500 expected), split over 2 new bonds = 3250 each
    assert actions(decision) >= {
        ("113050.SH", Action.KEEP, 100),
        ("110059.SH", Action.SELL, 50),
        ("123001.SZ", Action.BUY, 30),  # 3250 / 100 = 32.5 → 30
        ("128001.SZ", Action.BUY, 20),  # 3250 / 110 = 29.5 → 20
    }
    assert decision.target == {"113050.SH": 100, "123001.SZ": 30, "128001.SZ": 20}


def test_only_own_holdings_are_sold():
    """`held` is the rotation's own target: bonds it never held are not in it, so never sold."""
    decision = run(cands("113050.SH"), {}, cash="12000", top_n=1)
    assert {r.action for r in decision.rows} == {Action.BUY}
    assert decision.target == {"113050.SH": 100}


def test_fixed_amount_per_bond():
    decision = run(cands("113050.SH", "123001.SZ"), {}, cash="100000", sizing="fixed", amount="5000")
    assert decision.target == {"113050.SH": 40, "123001.SZ": 50}


def test_fixed_amount_stops_when_money_runs_out():
    decision = run(cands("113050.SH", "123001.SZ"), {}, cash="6000", sizing="fixed", amount="5000")
    assert decision.target == {"113050.SH": 40}
    assert ("123001.SZ", Action.SKIP, 0) in actions(decision)


def test_top_n_cap():
    decision = run(cands("113050.SH", "123001.SZ", "128001.SZ", "127001.SZ"), {}, cash="90000", top_n=2)
    assert set(decision.target) == {"113050.SH", "123001.SZ"}
    assert {r.code for r in decision.rows if r.action == Action.SKIP} == {"128001.SZ", "127001.SZ"}


def test_kept_beyond_top_n_sold_worst_first():
    decision = run(
        cands("113050.SH", "123001.SZ", "128001.SZ"),
        {"113050.SH": 10, "123001.SZ": 10, "128001.SZ": 10},
        top_n=2,
    )
    assert ("128001.SZ", Action.SELL, 10) in actions(decision)
    assert set(decision.target) == {"113050.SH", "123001.SZ"}


def test_excluded_codes_never_bought_and_sold_when_held():
    decision = run(cands("113050.SH", "123001.SZ"), {"113050.SH": 10}, cash="20000", excluded=["113050.SH"])
    assert ("113050.SH", Action.SELL, 10) in actions(decision)
    assert "113050.SH" not in decision.target and "123001.SZ" in decision.target


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ({"123001.SZ": {"suspended": True}}, "suspended"),
        ({"123001.SZ": {"up_stop": D("100")}}, "at limit-up"),
    ],
)
def test_suspended_or_limit_up_bonds_skipped_with_notification(flags, reason):
    decision = run(cands("123001.SZ", "128001.SZ"), {}, cash="20000", flags=flags, top_n=2)
    skipped = [r for r in decision.rows if r.code == "123001.SZ"]
    assert skipped[0].action == Action.SKIP and skipped[0].reason == reason and skipped[0].notify
    assert "123001.SZ" not in decision.target and "128001.SZ" in decision.target


def test_no_price_skipped_but_selection_price_is_a_fallback():
    selection = [Candidate("113050.SH", "x", 1), Candidate("123001.SZ", "y", 2, price=D("100"))]
    decision = run(selection, {}, cash="20000", prices={})
    assert ("113050.SH", Action.SKIP, 0) in actions(decision)
    assert decision.target == {"123001.SZ": 200}  # all 20000 goes to the one bond that has a price


def test_non_bonds_in_a_list_are_skipped():
    decision = run([Candidate("600000.SH", "浦发", 1)], {}, cash="10000", prices={"600000.SH": "10"})
    assert decision.rows[0].reason == "not a convertible bond" and not decision.target


def test_suspended_held_bond_not_counted_as_proceeds():
    decision = run(
        cands("123001.SZ"), {"110059.SH": 100}, cash="0", flags={"110059.SH": {"suspended": True}}, top_n=1
    )
    assert ("110059.SH", Action.SELL, 100) in actions(decision)
    assert decision.budget == 0 and not decision.target


@pytest.mark.parametrize(
    ("amount", "price", "fee", "lots"),
    [
        ("1000", "100", "0", 10),
        ("999", "100", "0", 0),
        ("1500", "100", "0", 10),
        ("2000", "100", "0.001", 10),
    ],
)
def test_lots_of_ten(amount, price, fee, lots):
    assert lots_for(D(amount), D(price), D(fee)) == lots


@pytest.mark.parametrize(
    ("value", "ratio"),
    [(0, D(0)), ("0", D(0)), (0.15, D("0.15")), (15, D("0.15")), (None, None), ("abc", None), (-1, None)],
)
def test_ratio_from_parameter(value, ratio):
    assert ratio_from_parameter(value) == ratio


@pytest.mark.parametrize(
    ("price", "cost", "tp", "sl", "kind"),
    [
        ("115", "100", "0.15", "0.08", "take_profit"),
        ("114.9", "100", "0.15", "0.08", None),
        ("92", "100", "0.15", "0.08", "stop_loss"),
        ("92.1", "100", "0.15", "0.08", None),
        ("200", "100", "0", "0.08", None),  # 0 = take-profit off
        ("50", "100", "0.15", "0", None),  # 0 = stop-loss off
        ("200", "100", None, None, None),
        ("0", "100", "0.15", "0.08", None),  # no price: never act on missing data
    ],
)
def test_tp_sl_on_cost_basis(price, cost, tp, sl, kind):
    triggers = tp_sl_triggers(
        positions={"113050.SH": (D(price), D(cost))},
        take_profit=D(tp) if tp is not None else None,
        stop_loss=D(sl) if sl is not None else None,
    )
    assert [t.kind for t in triggers] == ([kind] if kind else [])

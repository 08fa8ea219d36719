"""A rotation's capital budget: its buys are sized from its own budget, never from the whole account's cash
when the account follows other strategies too."""

from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from execution.models import AccountState, Holding
from execution.planner import Quote
from execution.services.accounts import SubscriptionSpec, account_create
from execution.tests.conftest import set_price
from positions.codes import to_jq
from positions.models import TargetSnapshot
from positions.services import target_write
from positions.validation import TargetPosition
from qmtjq.models import Notification
from qmtjq.notifications import EVENT_ROTATION_FAILED
from rotation.decisions import Action, BudgetUnknown, Candidate, decide
from rotation.models import RotationRun, RotationStrategy
from rotation.services import SelectedBond, rotation_create, rotation_run_now, selection_store

PRICES = {"113050.SH": "120", "123001.SZ": "100", "128001.SZ": "110", "110059.SH": "130"}
TWO = ("113050.SH", "123001.SZ")


def cands(*codes):
    return [Candidate(code, f"债{i}", i + 1) for i, code in enumerate(codes)]


def decide_with(*, selection=TWO, held=None, cash, budget=None, sizing="equal", amount=None, prices=PRICES, costs=None):
    return decide(
        selection=cands(*selection),
        held=held or {},
        quotes={code: Quote(code, D(price)) for code, price in prices.items()},
        top_n=2,
        sizing=sizing,
        amount_per_bond=D(amount) if amount else None,
        cash=D(cash),
        fee_rate=D(0),
        budget=D(budget) if budget is not None else None,
        held_costs=costs,
    )


def bought(decision):
    return {row.code: row.volume for row in decision.rows if row.action == Action.BUY}


def skipped(decision):
    return {row.code: row.reason for row in decision.rows if row.action == Action.SKIP}


# --- sizing from the budget (pure) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected_buys", "expected_skips"),
    [
        # No budget: the whole cash, split equally (as before).
        ({"cash": "100000"}, {"113050.SH": 410, "123001.SZ": 500}, {}),
        # A budget of 20,000 out of 100,000 cash: 10,000 a bond.
        ({"cash": "100000", "budget": "20000"}, {"113050.SH": 80, "123001.SZ": 100}, {}),
        # 9,600 of the budget is held already (80 × 120, kept): 10,400 left for the one free slot.
        ({"cash": "100000", "budget": "20000", "held": {"113050.SH": 80}}, {"123001.SZ": 100}, {}),
        # The budget is larger than the cash: never more than the cash.
        ({"cash": "5000", "budget": "20000"}, {"113050.SH": 20, "123001.SZ": 20}, {}),
        # Selling its own bond (100 × 130 expected) frees that part of the budget, within the cash after the sale.
        (
            {"cash": "0", "budget": "20000", "held": {"110059.SH": 100}},
            {"113050.SH": 50, "123001.SZ": 60},
            {},
        ),
        (
            {"cash": "100000", "budget": "20000", "held": {"110059.SH": 100}},
            {"113050.SH": 80, "123001.SZ": 100},
            {},
        ),
        # The holding grew past the budget: nothing more is bought, and the reason names the budget.
        (
            {"cash": "100000", "budget": "10000", "held": {"113050.SH": 100}},
            {},
            {"123001.SZ": "not enough budget for 10 bonds"},
        ),
        # Fixed amount per bond stays inside the budget too.
        ({"cash": "100000", "sizing": "fixed", "amount": "15000"}, {"113050.SH": 120, "123001.SZ": 150}, {}),
        (
            {"cash": "100000", "budget": "20000", "sizing": "fixed", "amount": "15000"},
            {"113050.SH": 120},
            {"123001.SZ": "not enough budget for the fixed amount"},
        ),
        (
            {"cash": "100000", "budget": "10000", "sizing": "fixed", "amount": "15000"},
            {},
            {
                "113050.SH": "not enough budget for the fixed amount",
                "123001.SZ": "not enough budget for the fixed amount",
            },
        ),
        # Cash, not the budget, is short: the reason says cash.
        (
            {"cash": "5000", "budget": "20000", "sizing": "fixed", "amount": "15000"},
            {},
            {
                "113050.SH": "not enough cash for the fixed amount",
                "123001.SZ": "not enough cash for the fixed amount",
            },
        ),
    ],
)
def test_buys_are_sized_from_the_budget(case, expected_buys, expected_skips):
    """Budget minus the rotation's own holdings (plus its own sales), never above the cash, for both sizings."""
    decision = decide_with(**case)
    assert bought(decision) == expected_buys
    assert {code: reason for code, reason in skipped(decision).items() if code in expected_skips} == expected_skips
    assert set(skipped(decision)) == set(expected_skips)


def test_budget_use_is_reported_on_the_decision():
    """The decision says the budget, what the rotation's holdings use of it, and the money for buys."""
    decision = decide_with(cash="100000", budget="20000", held={"113050.SH": 80})
    assert (decision.budget_limit, decision.held_value, decision.budget) == (D("20000"), D("9600"), D("10400"))


def test_held_bond_without_a_price_is_valued_at_its_cost():
    """No quote for a held bond: its cost basis measures the budget it uses."""
    prices = {code: price for code, price in PRICES.items() if code != "113050.SH"}
    decision = decide_with(
        cash="100000", budget="20000", held={"113050.SH": 80}, prices=prices, costs={"113050.SH": D("125")}
    )
    assert decision.held_value == D("10000") and bought(decision) == {"123001.SZ": 100}


def test_held_bond_without_price_or_cost_refuses_to_guess_the_budget():
    """Neither a price nor a cost: how much of the budget is used is unknown, so nothing is decided."""
    prices = {code: price for code, price in PRICES.items() if code != "113050.SH"}
    with pytest.raises(BudgetUnknown, match="113050.SH"):
        decide_with(cash="100000", budget="20000", held={"113050.SH": 80}, prices=prices)
    # Without a budget the whole account is the rotation's, as before: no valuation needed.
    assert bought(decide_with(cash="100000", held={"113050.SH": 80}, prices=prices)) == {"123001.SZ": 1000}


# --- the model ---------------------------------------------------------------------------------


@pytest.fixture
def account(db):
    account = account_create(
        name="cb",
        mode="paper",
        account_id="CB1",
        starting_cash=D("100000"),
        subscriptions=[SubscriptionSpec("manual", "ratio", D(1))],
        enforce_trading_hours=False,
    )
    AccountState.objects.create(
        account=account, cash=D("100000"), total_asset=D("200000"), updated_at=timezone.now()
    )
    for code, price in PRICES.items():
        set_price(code, price)
    return account


@pytest.mark.parametrize(
    ("amount", "share", "error_field"),
    [
        (None, None, None),
        ("20000", None, None),
        (None, "0.3", None),
        (None, "1", None),
        ("20000", "0.3", "budget_share"),  # one or the other, not both
        (None, "1.5", "budget_share"),
        (None, "0", "budget_share"),
        ("0", None, "budget_amount"),
        ("-5", None, "budget_amount"),
    ],
)
def test_budget_is_an_amount_or_a_share_or_none(account, amount, share, error_field):
    """Validation: an amount above 0, or a share in (0, 1], or neither; both at once is refused."""
    fields = {
        "budget_amount": D(amount) if amount else None,
        "budget_share": D(share) if share else None,
    }
    if error_field is None:
        rotation = rotation_create(name="cb-rot", account=account, **fields)
        assert (rotation.budget_amount, rotation.budget_share) == (fields["budget_amount"], fields["budget_share"])
        return
    with pytest.raises(ValidationError) as caught:
        rotation_create(name="cb-rot", account=account, **fields)
    assert error_field in caught.value.message_dict
    assert not RotationStrategy.objects.exists()


def test_the_database_refuses_both_budgets(account):
    """A row written around the validation cannot hold an amount and a share at once."""
    rotation = rotation_create(name="cb-rot", account=account, budget_amount=D("20000"))
    with pytest.raises(IntegrityError), transaction.atomic():
        RotationStrategy.objects.filter(pk=rotation.pk).update(budget_share=D("0.5"))


# --- runs ---------------------------------------------------------------------------------------


def select(rotation, codes=TWO):
    selection_store(
        rotation=rotation,
        trade_date=timezone.localdate(),
        bonds=[SelectedBond(code) for code in codes],
        source="api",
    )


def hold(rotation, lines):
    target_write(
        strategy=rotation.strategy,
        positions=tuple(TargetPosition(code, to_jq(code), "", volume, D(cost)) for code, volume, cost in lines),
        source=TargetSnapshot.Source.ROTATION,
    )
    rotation.strategy.refresh_from_db()


def report_holding(account, code, volume, last_price):
    """What the worker reports for the account's holding of a bond."""
    Holding.objects.create(
        account=account,
        code=code,
        volume=volume,
        can_use_volume=volume,
        avg_cost=D("110"),
        last_price=D(last_price),
        market_value=volume * D(last_price),
        updated_at=timezone.now(),
    )


def run_now(rotation):
    run, _decision, message = rotation_run_now(rotation=rotation, now=timezone.now())
    return run, message


def test_account_with_other_strategies_refuses_a_run_without_budget(account):
    """Following 'manual' too, a rotation without a budget does not run: failed with the reason, notified, nothing changed."""
    rotation = rotation_create(name="cb-rot", account=account, top_n=2)
    select(rotation)
    rotation.strategy.refresh_from_db()
    before = rotation.strategy.current_snapshot_id

    run, message = run_now(rotation)

    assert run.status == RotationRun.Status.FAILED
    assert "capital budget" in message and "manual" in message
    rotation.strategy.refresh_from_db()
    assert rotation.strategy.current_snapshot_id == before
    notification = Notification.objects.get(event=EVENT_ROTATION_FAILED)
    assert "资金预算" in notification.body and "manual" in notification.body  # written in LANGUAGE_CODE


def test_dry_run_tells_the_missing_budget_too(account):
    """A dry run shows the same refusal instead of a decision sized from the whole account."""
    rotation = rotation_create(name="cb-rot", account=account, top_n=2)
    select(rotation)
    run, decision, message = rotation_run_now(rotation=rotation, now=timezone.now(), dry_run=True)
    assert (run, decision) == (None, None) and "capital budget" in message


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        ({"budget_amount": D("21000")}, {"113050.SH": 80, "123001.SZ": 100}),
        # 10.5% of 200,000 total assets.
        ({"budget_share": D("0.105")}, {"113050.SH": 80, "123001.SZ": 100}),
        # 120,000, more than the cash: the cash (fees keep the second bond below 500).
        ({"budget_share": D("0.6")}, {"113050.SH": 410, "123001.SZ": 490}),
    ],
)
def test_run_buys_within_its_budget(account, budget, expected):
    """With a budget (an amount, or a share of total assets) the run goes ahead and stays inside it."""
    rotation = rotation_create(name="cb-rot", account=account, top_n=2, **budget)
    select(rotation)
    run, message = run_now(rotation)
    assert run.status == RotationRun.Status.DONE, message
    assert {row["code"]: row["volume"] for row in run.decision if row["action"] == "buy"} == expected


def test_run_counts_what_the_rotation_already_holds(account):
    """A held bond's market value uses the budget: only the rest buys the new one."""
    rotation = rotation_create(name="cb-rot", account=account, top_n=2, budget_amount=D("20000"))
    hold(rotation, [("113050.SH", 80, "110")])  # 80 × 120 now = 9,600
    select(rotation)
    run, message = run_now(rotation)
    assert run.status == RotationRun.Status.DONE, message
    assert {row["code"]: row["volume"] for row in run.decision if row["action"] == "buy"} == {"123001.SZ": 100}


def test_account_following_only_the_rotation_runs_without_budget(db):
    """No other strategy in the account: no budget needed, the whole cash is the rotation's (as before)."""
    account = account_create(name="solo", mode="paper", account_id="S1", enforce_trading_hours=False)
    AccountState.objects.create(account=account, cash=D("100000"), total_asset=D("100000"), updated_at=timezone.now())
    for code, price in PRICES.items():
        set_price(code, price)
    rotation = rotation_create(name="solo-rot", account=account, top_n=2)
    select(rotation)
    run, message = run_now(rotation)
    assert run.status == RotationRun.Status.DONE, message
    assert {row["code"]: row["volume"] for row in run.decision if row["action"] == "buy"} == {
        "113050.SH": 410,
        "123001.SZ": 490,  # 50,000 a bond; the fee buffer keeps it below 500
    }


def test_two_rotations_in_one_account_each_need_a_budget(db):
    """Another rotation is another strategy the account follows: both need budgets."""
    account = account_create(name="two", mode="paper", account_id="T1", enforce_trading_hours=False)
    AccountState.objects.create(account=account, cash=D("100000"), total_asset=D("100000"), updated_at=timezone.now())
    for code, price in PRICES.items():
        set_price(code, price)
    first = rotation_create(name="first", account=account, top_n=2)
    rotation_create(name="second", account=account, top_n=2, budget_amount=D("30000"))
    select(first)
    run, message = run_now(first)
    assert run.status == RotationRun.Status.FAILED and "rotation:second" in message


# --- pages and admin ----------------------------------------------------------------------------


def test_rotation_page_shows_the_budget_and_its_use(client, staff_user, account):
    """The rotation's page shows its budget, the part its holdings use and what is left."""
    rotation = rotation_create(name="cb-rot", account=account, top_n=2, budget_share=D("0.1"))
    hold(rotation, [("113050.SH", 80, "110")])
    report_holding(account, "113050.SH", 80, "120")
    client.force_login(staff_user)
    html = client.get(reverse("rotation:rotation-detail", args=["cb-rot"]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    budget = html.split('class="budget"')[1].split("</dd>")[0]
    assert "20,000.00" in budget and "10%" in budget  # 10% of 200,000 total assets
    assert "9,600.00" in budget and "10,400.00" in budget  # used by 80 × 120, left


def test_rotation_page_says_when_a_budget_is_missing(client, staff_user, account):
    """Without a budget in an account that follows other strategies, the page says the runs are refused."""
    rotation_create(name="cb-rot", account=account, top_n=2)
    client.force_login(staff_user)
    html = client.get(reverse("rotation:rotation-detail", args=["cb-rot"]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    budget = html.split('class="budget"')[1].split("</dd>")[0]
    assert "needs a capital budget" in budget


def test_admin_shows_and_saves_the_budget(client, superuser, account):
    """The change page shows the budget's use; the list shows the budget; a budget is saved from the form."""
    rotation = rotation_create(name="cb-rot", account=account, top_n=2, budget_amount=D("20000"))
    hold(rotation, [("113050.SH", 80, "110")])
    report_holding(account, "113050.SH", 80, "120")
    client.force_login(superuser)
    change = reverse("admin:rotation_rotationstrategy_change", args=[rotation.pk])
    html = client.get(change, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "9,600.00" in html and "10,400.00" in html
    listing = client.get(reverse("admin:rotation_rotationstrategy_changelist"), HTTP_ACCEPT_LANGUAGE="en")
    assert "20,000.00" in listing.content.decode()

    form = {
        "enabled": "on",
        "source": "upload",
        "schedule": "daily",
        "run_time": "14:50",
        "max_lateness": "00:05:00",
        "sizing": "equal",
        "top_n": "2",
        "cooldown_days": "1",
        "budget_amount": "30000",
        "budget_share": "0.2",
    }
    response = client.post(change, form, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200 and "either as an amount or as a share" in response.content.decode()
    response = client.post(change, {**form, "budget_amount": ""}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    rotation.refresh_from_db()
    assert (rotation.budget_amount, rotation.budget_share) == (None, D("0.2"))


def test_admin_dry_run_shows_the_budget_it_kept_to(client, superuser, account):
    """The dry-run result says the budget and what the rotation's holdings use of it."""
    from rotation.tests.test_admin import action

    rotation = rotation_create(name="cb-rot", account=account, top_n=2, budget_amount=D("20000"))
    hold(rotation, [("113050.SH", 80, "110")])
    select(rotation)
    client.force_login(superuser)
    html = action(client, "dry_run", rotation, confirm=True).content.decode()
    assert "Within the capital budget 20000.00, of which its holdings use 9600.00" in html
    assert not RotationRun.objects.exists()


def test_run_confirmation_warns_of_a_missing_budget(client, superuser, account):
    """Before running, the confirmation page says the rotation needs a budget (so the run will be refused)."""
    from rotation.tests.test_admin import action

    rotation = rotation_create(name="cb-rot", account=account, top_n=2)
    client.force_login(superuser)
    html = action(client, "run_now", rotation, confirm=False).content.decode()
    assert "needs a capital budget" in html and not RotationRun.objects.exists()

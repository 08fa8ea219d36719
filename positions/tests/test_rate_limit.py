"""The per-client rate limit is one atomic count in the database, shared by every thread and process (issue 12)."""

import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.utils import timezone

from positions import rate_limits, throttling
from positions.models import ApiRateWindow

ALL = "/api/v1/positions/all"


@pytest.mark.django_db
def test_past_the_budget_the_client_gets_429_with_retry_after(client, make_api_client, monkeypatch):
    """Three a minute: the fourth request is refused with a JSON error and a Retry-After inside the minute."""
    # A fixed clock 10 s into a window: with the real one, a minute boundary between the
    # third and fourth request lets the sliding window admit the fourth (an old flaky failure).
    window = rate_limits.WINDOW_SECONDS
    start = (int(timezone.now().timestamp()) // window) * window
    fixed = datetime.fromtimestamp(start + 10, tz=UTC)
    monkeypatch.setattr(throttling, "timezone", SimpleNamespace(now=lambda: fixed))
    _, key = make_api_client(rate_limit_per_minute=3)
    codes = [client.get(ALL, HTTP_X_API_KEY=key).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = client.get(ALL, HTTP_X_API_KEY=key)
    assert refused.status_code == 429 and "rate limit" in refused.json()["error"]
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert ApiRateWindow.objects.get().window == start // window  # the fixed clock was the one counted


@pytest.mark.django_db
def test_refused_requests_do_not_use_up_the_next_budget(make_api_client):
    """Only allowed requests count: hammering while refused does not push the client's window further out."""
    api_client, _ = make_api_client(rate_limit_per_minute=2)
    now = timezone.now()
    assert [rate_limits.rate_take(client=api_client, limit=2, now=now).allowed for _ in range(5)] == [
        True,
        True,
        False,
        False,
        False,
    ]
    later = now + timedelta(seconds=121)  # two windows on: the old count no longer weighs
    assert rate_limits.rate_take(client=api_client, limit=2, now=later).allowed


@pytest.mark.django_db
def test_the_previous_minute_still_weighs_so_a_boundary_is_no_double_budget(make_api_client):
    """Ten used just before a window ends leave little at the start of the next one (sliding, not fixed)."""
    api_client, _ = make_api_client(rate_limit_per_minute=10)
    window = rate_limits.WINDOW_SECONDS
    start = timezone.now().replace(microsecond=0)
    base = start - timedelta(seconds=start.timestamp() % window)  # a window boundary
    for _ in range(10):
        assert rate_limits.rate_take(client=api_client, limit=10, now=base + timedelta(seconds=window - 1)).allowed
    just_after = base + timedelta(seconds=window + 6)  # 10 % into the next window: the old ten weigh 9
    allowed = [rate_limits.rate_take(client=api_client, limit=10, now=just_after).allowed for _ in range(5)]
    assert allowed == [True, False, False, False, False]


@pytest.mark.django_db(transaction=True)
def test_parallel_requests_never_exceed_the_budget(make_api_client):
    """Eight threads race for a budget of 5: exactly 5 are allowed (the count is one atomic update)."""
    if connection.vendor == "sqlite" and "memory" in str(connection.settings_dict["NAME"]):
        pytest.skip("threads need a database file shared between connections")
    api_client, _ = make_api_client(rate_limit_per_minute=5)
    now = timezone.now()
    results, barrier = [], threading.Barrier(8)

    def take():
        barrier.wait()
        try:
            results.append(rate_limits.rate_take(client=api_client, limit=5, now=now).allowed)
        finally:
            connection.close()

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 3 + [True] * 5
    assert sum(row.count for row in ApiRateWindow.objects.filter(client=api_client)) == 5


@pytest.mark.django_db
def test_old_windows_are_purged(make_api_client):
    """The housekeeping job forgets windows that no longer weigh on any decision."""
    api_client, _ = make_api_client(rate_limit_per_minute=5)
    now = timezone.now()
    rate_limits.rate_take(client=api_client, limit=5, now=now - timedelta(minutes=10))
    rate_limits.rate_take(client=api_client, limit=5, now=now)
    assert rate_limits.rate_windows_purge(now=now) == 1
    assert ApiRateWindow.objects.filter(client=api_client).count() == 1


@pytest.mark.django_db
def test_an_unlimited_client_writes_nothing(client, make_api_client):
    """rate limit 0 = unlimited: no count is kept at all."""
    _, key = make_api_client(rate_limit_per_minute=0)
    for _ in range(3):
        assert client.get(ALL, HTTP_X_API_KEY=key).status_code == 200
    assert not ApiRateWindow.objects.exists()


@pytest.mark.django_db
def test_a_counted_request_costs_two_statements_and_a_new_window_three(make_api_client, django_assert_num_queries):
    """The rate limit is on every API call: read both windows, then one conditional UPDATE (plus one
    INSERT for the first request of a window); a refusal past the budget is a single read."""
    api_client, _ = make_api_client(rate_limit_per_minute=2)
    window = rate_limits.WINDOW_SECONDS
    start = (int(timezone.now().timestamp()) // window) * window
    now = datetime.fromtimestamp(start + 10, tz=UTC)
    with django_assert_num_queries(3):
        assert rate_limits.rate_take(client=api_client, limit=2, now=now).allowed
    with django_assert_num_queries(2):
        assert rate_limits.rate_take(client=api_client, limit=2, now=now).allowed
    with django_assert_num_queries(3):  # read, the UPDATE that finds no room, the count for Retry-After
        assert not rate_limits.rate_take(client=api_client, limit=2, now=now).allowed
    later = now + timedelta(seconds=window)  # next window: the two weigh 5/6, floor(1.67) = 1 >= a limit of 1
    with django_assert_num_queries(1):
        assert not rate_limits.rate_take(client=api_client, limit=1, now=later).allowed

"""Long-polls never take every web thread: past the per-process cap the feed answers 304 at once with a
Retry-After, and the trading PC waits that long instead of asking again in a loop (issue 12)."""

import threading
import time

import pytest
import requests
from django.test import override_settings

from execution.remote import longpoll
from execution.remote.client import FeedUnchanged, ServerClient
from execution.remote.credentials import worker_client_create
from execution.remote.longpoll import FeedWatcher, FeedWatcherBusy, feed_waiters_limit
from execution.remote.runner import FEED_MIN_CYCLE, RemoteSession
from execution.tests.conftest import upload_target
from qmtjq.web import WEB_THREADS_ENV


def _hold(watcher: FeedWatcher, account_id: int, *, timeout: float, limit=None) -> threading.Thread:
    thread = threading.Thread(
        target=watcher.wait, kwargs={"account_id": account_id, "version": "v1", "timeout": timeout, "limit": limit}
    )
    thread.start()
    deadline = time.monotonic() + 5
    while watcher.waiting() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    return thread


def test_a_full_watcher_refuses_at_once_and_accepts_again_when_a_waiter_leaves():
    """With one place, a second wait raises at once (on any account); after the first ends, waits are taken again."""
    watcher = FeedWatcher(version_of=lambda account_id: "v1", interval=0.05)
    first = _hold(watcher, 1, timeout=0.6, limit=1)
    started = time.monotonic()
    with pytest.raises(FeedWatcherBusy):
        watcher.wait(account_id=2, version="v1", timeout=5, limit=1)
    assert time.monotonic() - started < 0.3
    first.join()
    assert watcher.waiting() == 0
    assert watcher.wait(account_id=2, version="v1", timeout=0.1, limit=1) is False  # a place again: it waited
    assert watcher.wait(account_id=2, version="v1", timeout=0.1, limit=None) is False  # no limit: never busy


def test_no_place_at_all_when_the_limit_is_zero():
    """A one-thread process (limit 0) never lets a request wait: the only thread stays for the API."""
    watcher = FeedWatcher(version_of=lambda account_id: "v1", interval=0.05)
    with pytest.raises(FeedWatcherBusy):
        watcher.wait(account_id=1, version="v1", timeout=5, limit=0)


def test_the_limit_is_the_web_threads_less_one_unless_set(monkeypatch):
    """serve/qmtjq.web tell the process its thread count; WORKER_FEED_MAX_WAITERS overrides; unknown = no cap."""
    monkeypatch.setenv(WEB_THREADS_ENV, "")
    monkeypatch.delenv(WEB_THREADS_ENV)
    with override_settings(WORKER_FEED_MAX_WAITERS=None):
        assert feed_waiters_limit() is None
        monkeypatch.setenv(WEB_THREADS_ENV, "2")
        assert feed_waiters_limit() == 1
        monkeypatch.setenv(WEB_THREADS_ENV, "1")
        assert feed_waiters_limit() == 0
        monkeypatch.setenv(WEB_THREADS_ENV, "many")
        assert feed_waiters_limit() is None
    with override_settings(WORKER_FEED_MAX_WAITERS=5):
        assert feed_waiters_limit() == 5


@pytest.mark.django_db(transaction=True)
@override_settings(WORKER_FEED_WAIT_SECONDS=3, WORKER_FEED_MAX_WAITERS=1, WORKER_FEED_BUSY_RETRY_SECONDS=4)
def test_past_the_cap_the_feed_answers_304_at_once_with_retry_after(live_server, paper_account):
    """One poll waits; a second one is answered 304 with Retry-After at once, and uploads are still served."""
    upload_target("S", [("600000.SH", 1000, "10")])
    _client, key = worker_client_create(account=paper_account)
    url, headers = live_server.url, {"X-API-Key": key}
    version = requests.get(f"{url}/api/v1/worker/feed", headers=headers, timeout=10).json()["version"]
    waiting = {}
    holder = threading.Thread(
        target=lambda: waiting.update(
            response=requests.get(f"{url}/api/v1/worker/feed?version={version}", headers=headers, timeout=10)
        )
    )
    holder.start()
    deadline = time.monotonic() + 5
    while longpoll.feed_watcher().waiting() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert longpoll.feed_watcher().waiting() == 1
    started = time.monotonic()
    busy = requests.get(f"{url}/api/v1/worker/feed?version={version}", headers=headers, timeout=10)
    assert busy.status_code == 304 and busy.headers["Retry-After"] == "4"
    assert busy.headers["ETag"] == f'"{version}"'
    assert time.monotonic() - started < 1.5
    pc = ServerClient(server_url=url, account=paper_account.name, api_key=key)
    assert pc.feed(version=version) == FeedUnchanged(retry_after=4.0)
    holder.join()
    assert waiting["response"].status_code == 304 and "Retry-After" not in waiting["response"].headers


class _RecordingStop(threading.Event):
    """The feed loop's stop event: records each pause it is asked for and stops the loop after a few."""

    def __init__(self, polls: int):
        super().__init__()
        self.pauses: list[float] = []
        self.polls = polls

    def wait(self, timeout=None):
        self.pauses.append(timeout)
        if len(self.pauses) >= self.polls:
            self.set()
        return self.is_set()


class _UnchangedClient(ServerClient):
    def __init__(self, retry_after: float):
        super().__init__(server_url="http://127.0.0.1:9", account="p1", api_key="qw_test")
        self.retry_after = retry_after
        self.calls = 0
        self.stop: threading.Event | None = None

    def feed(self, *, version: str = ""):
        self.calls += 1
        if self.calls >= 10 and self.stop is not None:  # a loop that never pauses: end it so the test fails
            self.stop.set()
        return FeedUnchanged(retry_after=self.retry_after)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("retry_after", "at_least"), [(4.0, 4.0), (0.0, FEED_MIN_CYCLE * 0.9)], ids=["retry-after", "instant-304"]
)
def test_the_pc_pauses_after_a_quick_304_instead_of_polling_in_a_loop(paper_account, retry_after, at_least):
    """A 304 with Retry-After waits that long; a 304 faster than a long-poll still waits a cycle (no busy loop)."""
    client = _UnchangedClient(retry_after)
    session = RemoteSession(client=client, account_name="p1", say=lambda message: None)
    session.stop_event = client.stop = _RecordingStop(polls=3)
    session._feed_loop()
    assert client.calls == 3
    assert len(session.stop_event.pauses) == 3
    assert all(pause >= at_least for pause in session.stop_event.pauses)


def test_the_client_reads_retry_after_of_a_304():
    """The feed client turns a 304 into FeedUnchanged with the server's Retry-After (0 when absent or odd)."""
    from execution.remote.client import retry_after_seconds

    assert retry_after_seconds("4") == 4.0
    assert retry_after_seconds(None) == 0.0
    assert retry_after_seconds("soon") == 0.0
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds("86400") == 60.0  # a wild value never silences the feed for long

"""The lease's history: every acquisition, takeover and release leaves a row an admin can read (not edit).

A takeover (a stale lease, a dead process of this host) used to leave only a log line, the worker's
stdout and the lease row's `took_over_from`, which the next takeover overwrites.
"""

import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from execution.models import LeaseEvent, WorkerLease
from execution.services.lease import LeaseHeld, LeaseHolder, lease_acquire, lease_release
from execution.tests.conftest import upload_target

TTL = timedelta(seconds=30)
A, B = LeaseHolder("pc-a:101:aaaa"), LeaseHolder("pc-b:202:bbbb")


def history(account):
    return [
        (e.kind, e.holder, e.previous_holder, e.epoch, e.reason)
        for e in LeaseEvent.objects.filter(account=account).order_by("id")
    ]


def dead_holder() -> LeaseHolder:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return LeaseHolder(f"{socket.gethostname()}:{process.pid}:deadbeef")


def test_first_acquisition_and_release_are_recorded(paper_account):
    """A free account taken and given back: two rows, under the same epoch, with who and why."""
    now = timezone.now()
    lease_acquire(account=paper_account, holder=A, now=now, ttl=TTL)
    lease_release(account=paper_account, holder=A, now=now + timedelta(seconds=5))
    assert history(paper_account) == [
        ("acquired", A.name, "", 1, "free"),
        ("released", A.name, "", 1, "stopped"),
    ]
    released = LeaseEvent.objects.get(kind="released")
    assert released.at == now + timedelta(seconds=5)


def test_takeover_of_an_expired_lease_says_from_whom_and_why(paper_account):
    """B takes the account after A's lease ran out: the row names A, the new epoch, A's last heartbeat and
    lease end — what the takeover was judged on."""
    start = timezone.now()
    lease_acquire(account=paper_account, holder=A, now=start, ttl=TTL)
    later = start + TTL + timedelta(seconds=1)
    fence = lease_acquire(account=paper_account, holder=B, now=later, ttl=TTL)
    assert fence.epoch == 2
    assert history(paper_account)[-1] == ("taken_over", B.name, A.name, 2, "expired")
    takeover = LeaseEvent.objects.get(kind="taken_over")
    assert (takeover.at, takeover.previous_heartbeat_at, takeover.previous_expires_at) == (
        later,
        start,
        start + TTL,
    )


def test_takeover_from_a_dead_process_of_this_host_is_recorded(paper_account):
    """A crash and restart: the unexpired lease of a process that no longer exists is taken at once, and
    the row says so."""
    crashed = dead_holder()
    now = timezone.now()
    lease_acquire(account=paper_account, holder=crashed, now=now, ttl=TTL)
    lease_acquire(account=paper_account, holder=B, now=now + timedelta(seconds=1), ttl=TTL)
    assert history(paper_account)[-1] == ("taken_over", B.name, crashed.name, 2, "process_gone")


def test_a_refused_acquisition_and_a_lost_lease_write_nothing(paper_account):
    """Only real changes are history: a refusal (A still holds it) and a release by a worker that lost the
    lease leave no row."""
    now = timezone.now()
    lease_acquire(account=paper_account, holder=A, now=now, ttl=TTL)
    with pytest.raises(LeaseHeld):
        lease_acquire(account=paper_account, holder=B, now=now + timedelta(seconds=1), ttl=TTL)
    lease_release(account=paper_account, holder=B, now=now + timedelta(seconds=2))
    assert history(paper_account) == [("acquired", A.name, "", 1, "free")]
    assert WorkerLease.objects.get().holder == A.name


def test_every_takeover_keeps_its_row(paper_account):
    """Three holders in turn: the lease row only knows the last takeover, the history knows both."""
    start = timezone.now()
    third = LeaseHolder("pc-c:303:cccc")
    lease_acquire(account=paper_account, holder=A, now=start, ttl=TTL)
    lease_acquire(account=paper_account, holder=B, now=start + 2 * TTL, ttl=TTL)
    lease_acquire(account=paper_account, holder=third, now=start + 4 * TTL, ttl=TTL)
    assert [row[:4] for row in history(paper_account)] == [
        ("acquired", A.name, "", 1),
        ("taken_over", B.name, A.name, 2),
        ("taken_over", third.name, B.name, 3),
    ]


@pytest.mark.django_db(transaction=True)
def test_qmt_worker_restart_after_a_crash_leaves_the_takeover_in_the_history(paper_account):
    """`qmt_worker --once` after a crash: the takeover and the release on exit are both in the history."""
    crashed = dead_holder()
    lease_acquire(account=paper_account, holder=crashed, now=timezone.now())
    upload_target("S", [("600000.SH", 1000, "10")])
    call_command(
        "qmt_worker", "--account", "p1", "--once", "--interval", "0.05", stdout=_Sink(), stderr=_Sink()
    )
    rows = history(paper_account)
    assert [(kind, previous, reason) for kind, _holder, previous, _epoch, reason in rows] == [
        ("acquired", "", "free"),
        ("taken_over", crashed.name, "process_gone"),
        ("released", "", "stopped"),
    ]
    assert rows[1][1] == rows[2][1] and rows[1][1].startswith(f"{socket.gethostname()}:")


class _Sink:
    def write(self, text):
        pass

    def flush(self):
        pass


# --- admin: visible on the account's page, never editable ---------------------------------------------


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def taken_over(paper_account):
    start = timezone.now() - timedelta(minutes=5)
    lease_acquire(account=paper_account, holder=A, now=start, ttl=TTL)
    lease_acquire(account=paper_account, holder=B, now=start + 2 * TTL, ttl=TTL)
    return LeaseEvent.objects.get(kind="taken_over")


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", ["taken over", "the lease of the previous holder had expired", "Lease history"]),
        ("zh-hans", ["接管", "原持有者的租约已过期", "租约记录"]),
    ],
)
def test_account_page_shows_the_lease_history(admin_client, paper_account, taken_over, language, words):
    """The account's admin page lists the takeover (who from whom, epoch, why, when) and links the full,
    read-only history."""
    url = reverse("admin:execution_brokeraccount_change", args=[paper_account.pk])
    html = admin_client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
    for word in [A.name, B.name, *words]:
        assert word in html, word
    assert date_format(timezone.localtime(taken_over.at), "DATETIME_FORMAT") in html
    changelist = reverse("admin:execution_leaseevent_changelist")
    assert f"{changelist}?account__id__exact={paper_account.pk}" in html


def test_lease_history_admin_is_read_only(admin_client, paper_account, taken_over):
    """Changelist (with a search and the account filter) and the row's page open; nothing can be added,
    changed or deleted."""
    changelist = reverse("admin:execution_leaseevent_changelist")
    page = admin_client.get(changelist, {"q": "pc-b", "account__id__exact": paper_account.pk})
    assert page.status_code == 200 and B.name in page.content.decode()
    assert admin_client.get(reverse("admin:execution_leaseevent_add")).status_code == 403
    change = reverse("admin:execution_leaseevent_change", args=[taken_over.pk])
    page = admin_client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    admin_client.post(change, {"holder": "forged"})
    taken_over.refresh_from_db()
    assert taken_over.holder == B.name
    assert (
        admin_client.get(reverse("admin:execution_leaseevent_delete", args=[taken_over.pk])).status_code
        == 403
    )


# --- the server's mirror of a remote trading PC: its lease changes are history too --------------------


def _beat(account, client, holder, now):
    from execution.remote.mirror import report_apply
    from execution.remote.parse import report_parse

    report = report_parse({"heartbeat": {"at": now.isoformat(), "holder": holder, "status": ""}})
    report_apply(account=account, client=client, report=report, now=now)


def test_server_records_a_remote_pc_taking_the_account_and_a_restart(paper_account):
    """On the server, the first heartbeat of a trading PC takes the account, a restarted PC process (new
    holder) takes it over from the old one, and heartbeats in between write nothing."""
    from execution.remote.credentials import worker_client_create

    client, _key = worker_client_create(account=paper_account)
    now = timezone.now()
    _beat(paper_account, client, "pc:1:a", now)
    _beat(paper_account, client, "pc:1:a", now + timedelta(seconds=2))
    _beat(paper_account, client, "pc:2:b", now + timedelta(seconds=4))
    assert [
        (kind, holder, previous, reason) for kind, holder, previous, _epoch, reason in history(paper_account)
    ] == [
        ("acquired", "remote:pc:1:a", "", "free"),
        ("taken_over", "remote:pc:2:b", "remote:pc:1:a", "remote_restart"),
    ]


def test_server_records_a_remote_pc_taking_over_an_expired_local_lease(paper_account):
    """A local worker's lease ran out and the trading PC reports: a takeover, because the old lease expired."""
    from execution.remote.credentials import worker_client_create

    client, _key = worker_client_create(account=paper_account)
    start = timezone.now()
    lease_acquire(account=paper_account, holder=A, now=start, ttl=TTL)
    _beat(paper_account, client, "pc:1:a", start + timedelta(seconds=5))  # A still holds it: refused
    _beat(paper_account, client, "pc:1:a", start + TTL + timedelta(seconds=1))
    assert [
        (kind, holder, previous, reason) for kind, holder, previous, _epoch, reason in history(paper_account)
    ] == [
        ("acquired", A.name, "", "free"),
        ("taken_over", "remote:pc:1:a", A.name, "expired"),
    ]

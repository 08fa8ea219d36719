"""The upload hot path (issue 12): few statements, API keys cached per process, changes seen everywhere."""

import json

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from positions import services
from positions.models import ApiClient, Strategy, TargetLine, Upload
from qmtjq import credential_cache as credentials

UPDATE = "/api/v1/positions/update"


def _body(seq: int, lines: int = 50) -> str:
    positions = [
        {
            "code": f"{600000 + i:06d}.XSHG",
            "name": f"Stock {i}",
            "volume": 100 * (1 + (seq + i) % 50),
            "cost": 5.5,
        }
        for i in range(lines)
    ]
    return json.dumps({"strategy_name": "fast", "positions": positions, "total_value": 1000000 + seq})


def _upload(client, key, seq):
    return client.post(UPDATE, _body(seq), content_type="application/json", HTTP_X_API_KEY=key)


def _statements(client, key, seq) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = _upload(client, key, seq)
    assert response.status_code == 200, response.content
    return [
        q["sql"]
        for q in captured.captured_queries
        if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE"))
    ]


@pytest.mark.django_db
def test_a_changed_50_line_upload_runs_six_statements(client, make_api_client):
    """Locked read, snapshot, lines (one executemany), names, confirm, upload row: nothing per line or per key."""
    _, key = make_api_client(rate_limit_per_minute=0)
    _upload(client, key, 0)
    _upload(client, key, 1)  # strategy exists, names stored, key cached
    statements = _statements(client, key, 2)
    assert len(statements) <= 6, "\n".join(statements)
    assert not any(
        table in sql for sql in statements for table in ("positions_apikey", "positions_apiclient")
    )
    strategy = Strategy.objects.get(name="fast")
    assert strategy.current_snapshot.positions_count == 50
    assert TargetLine.objects.filter(snapshot=strategy.current_snapshot).count() == 50
    assert Upload.objects.filter(strategy=strategy).count() == 3  # full history kept


@pytest.mark.django_db
def test_disabling_a_client_stops_its_cached_key_at_once(client, make_api_client):
    api_client, key = make_api_client(rate_limit_per_minute=0)
    assert _upload(client, key, 0).status_code == 200
    services.api_client_set_enabled(client=api_client, enabled=False)
    assert _upload(client, key, 1).status_code == 401


@pytest.mark.django_db
def test_rotating_without_grace_stops_the_cached_old_key_at_once(client, make_api_client):
    api_client, old = make_api_client(rate_limit_per_minute=0)
    assert _upload(client, old, 0).status_code == 200
    new = services.api_client_rotate_key(client=api_client)
    assert _upload(client, old, 1).status_code == 401
    assert _upload(client, new, 2).status_code == 200


@pytest.mark.django_db
def test_a_change_published_by_another_process_is_seen_within_a_second(client, make_api_client, monkeypatch):
    """Another process disabled the client and wrote a new version to the shared cache: refused within 1 s."""
    api_client, key = make_api_client(rate_limit_per_minute=0)
    clock = [1000.0]
    monkeypatch.setattr(credentials.time, "monotonic", lambda: clock[0])
    credentials.credential_cache.clear()
    assert _upload(client, key, 0).status_code == 200  # now cached in this process
    # What the other process did: its own database write, then its credentials_changed().
    ApiClient.objects.filter(pk=api_client.pk).update(enabled=False)
    cache.set(credentials.VERSION_KEY, "written-by-another-process", timeout=None)
    assert _upload(client, key, 1).status_code == 200  # still within this process's check interval
    clock[0] += credentials.CHECK_SECONDS
    assert credentials.CHECK_SECONDS < 1
    assert _upload(client, key, 2).status_code == 401


@pytest.mark.django_db
def test_an_evicted_version_key_flushes_instead_of_trusting_the_cache(client, make_api_client, monkeypatch):
    api_client, key = make_api_client(rate_limit_per_minute=0)
    clock = [1000.0]
    monkeypatch.setattr(credentials.time, "monotonic", lambda: clock[0])
    credentials.credential_cache.clear()
    assert _upload(client, key, 0).status_code == 200
    ApiClient.objects.filter(pk=api_client.pk).update(enabled=False)
    cache.delete(credentials.VERSION_KEY)  # culled or the cache restarted
    clock[0] += credentials.CHECK_SECONDS
    assert _upload(client, key, 1).status_code == 401

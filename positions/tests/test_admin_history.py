"""Upload and snapshot history in admin stays cheap however long it grows (issue 12)."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse


def _uploads(client, key, count):
    for n in range(count):
        body = {"strategy_name": "hist", "positions": [{"code": "600000.XSHG", "volume": 100 * (n + 1), "cost": 1.0}]}
        response = client.post(
            "/api/v1/positions/update", json.dumps(body), content_type="application/json", HTTP_X_API_KEY=key
        )
        assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["upload", "targetsnapshot"])
def test_history_changelists_read_no_whole_table(client, admin_client, make_api_client, model):
    """No date_hierarchy (SELECT DISTINCT over every row) and no exact COUNT(*) of the whole table."""
    _, key = make_api_client(rate_limit_per_minute=0)
    _uploads(client, key, 3)
    url = reverse(f"admin:positions_{model}_changelist")
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(url)
    assert response.status_code == 200
    table = f"positions_{model}"
    sqls = [q["sql"] for q in captured.captured_queries if table in q["sql"]]
    assert not [sql for sql in sqls if "DISTINCT" in sql.upper()], sqls
    assert not [sql for sql in sqls if "COUNT(" in sql.upper() and "LIMIT" not in sql.upper()], sqls
    assert admin_client.get(url, {"received_at__gte" if model == "upload" else "created_at__gte": "2020-01-01 00:00:00+08:00"}).status_code == 200

"""Uploading targets: validation, storage, change detection, idempotency and reads."""

import json
import threading
from decimal import Decimal

import pytest

from positions.models import Strategy, TargetLine, TargetSnapshot, Upload

UPDATE = "/api/v1/positions/update"


@pytest.fixture
def key(make_api_client):
    return make_api_client()[1]


def upload(client, key, payload, raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(payload).encode()
    return client.generic("POST", UPDATE, body, content_type="application/json", HTTP_X_API_KEY=key)


def payload(strategy="策略A", positions=None, **extra):
    if positions is None:
        positions = [{"code": "000001.XSHE", "volume": 1000, "cost": 12.5, "name": "平安银行"}]
    return {"strategy_name": strategy, "positions": positions, **extra}


def nothing_stored():
    return not (Strategy.objects.exists() or TargetSnapshot.objects.exists() or Upload.objects.exists())


# --- bad input: one class per case ------------------------------------------------

LINE = {"code": "600000.XSHG", "volume": 100, "cost": 10.0}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"positions": []}, "strategy_name: required"),
        ({"strategy_name": "", "positions": []}, "strategy_name: required"),
        ({"strategy_name": 5, "positions": []}, "strategy_name: must be a string"),
        ({"strategy_name": "x" * 101, "positions": []}, "at most 100"),
        ({"strategy_name": "a\x00b", "positions": []}, "control characters"),
        ({"strategy_name": "a\nb", "positions": []}, "control characters"),
        ({"strategy_name": " a", "positions": []}, "whitespace"),
        ({"strategy_name": "a/b", "positions": []}, "'/'"),
        ({"strategy_name": "s"}, "positions: required"),
        ({"strategy_name": "s", "positions": {"600000": 100}}, "positions: must be a list"),
        ({"strategy_name": "s", "positions": [LINE] * 5001}, "at most 5000"),
        ({"strategy_name": "s", "positions": ["600000"]}, "positions[0]: must be an object"),
        ({"strategy_name": "s", "positions": [{**LINE, "code": "112001"}]}, "positions[0].code: cannot tell"),
        ({"strategy_name": "s", "positions": [{**LINE, "code": None}]}, "positions[0].code"),
        (
            {"strategy_name": "s", "positions": [LINE, {**LINE, "code": "sh600000"}]},
            "positions[1].code: 600000.SH appears twice",
        ),
        (
            {"strategy_name": "s", "positions": [{**LINE, "volume": 100.5}]},
            "positions[0].volume: must be a whole",
        ),
        (
            {"strategy_name": "s", "positions": [{**LINE, "volume": -100}]},
            "positions[0].volume: must not be negative",
        ),
        ({"strategy_name": "s", "positions": [{**LINE, "volume": True}]}, "positions[0].volume"),
        ({"strategy_name": "s", "positions": [{**LINE, "volume": "100"}]}, "positions[0].volume"),
        ({"strategy_name": "s", "positions": [{**LINE, "volume": None}]}, "positions[0].volume"),
        ({"strategy_name": "s", "positions": [{**LINE, "volume": 10**13}]}, "too large"),
        (
            {"strategy_name": "s", "positions": [{**LINE, "cost": -1}]},
            "positions[0].cost: must not be negative",
        ),
        (
            {"strategy_name": "s", "positions": [{**LINE, "cost": "10"}]},
            "positions[0].cost: must be a number",
        ),
        (
            {"strategy_name": "s", "positions": [{k: v for k, v in LINE.items() if k != "cost"}]},
            "cost: required",
        ),
        ({"strategy_name": "s", "positions": [{**LINE, "name": 5}]}, "positions[0].name"),
        ({"strategy_name": "s", "positions": [], "total_value": -1}, "total_value: must not be negative"),
        ({"strategy_name": "s", "positions": [], "cash": "lots"}, "cash: must be a number"),
        ({"strategy_name": "s", "positions": [], "snapshot_id": "has space"}, "snapshot_id"),
        ({"strategy_name": "s", "positions": [], "snapshot_id": 7}, "snapshot_id"),
        ([1, 2], "must be a JSON object"),
        # the inline checks of the common line (issue 12) keep every rule of the helpers
        ({"strategy_name": "s", "positions": [{**LINE, "code": ["600000.SH"]}]}, "positions[0].code"),
        ({"strategy_name": "s", "positions": [{**LINE, "code": {"x": 1}}]}, "positions[0].code"),
        ({"strategy_name": "s", "positions": [{**LINE, "volume": 10**12}]}, "positions[0].volume: too large"),
        ({"strategy_name": "s", "positions": [{**LINE, "cost": 1e15}]}, "positions[0].cost: too large"),
        ({"strategy_name": "s", "positions": [{**LINE, "cost": -0.5}]}, "positions[0].cost: must not be negative"),
        ({"strategy_name": "s", "positions": [{**LINE, "cost": True}]}, "positions[0].cost: must be a number"),
        ({"strategy_name": "s", "positions": [{**LINE, "name": "a\u202eb"}]}, "positions[0].name: must not contain"),
        ({"strategy_name": "s", "positions": [{**LINE, "name": "a\tb"}]}, "positions[0].name: must not contain"),
        ({"strategy_name": "s", "positions": [{**LINE, "name": "x" * 65}]}, "positions[0].name: at most 64"),
        # full-width and Arabic-Indic digits: refused, never stored as codes that never trade
        ({"strategy_name": "s", "positions": [{**LINE, "code": "\uff16\uff10\uff10\uff10\uff10\uff10"}]}, "ASCII digits"),
        ({"strategy_name": "s", "positions": [{**LINE, "code": "\u0666\u0660\u0660\u0660\u0660\u0660.XSHG"}]}, "ASCII digits"),
    ],
)
def test_bad_input_is_400_and_stores_nothing(client, key, body, fragment):
    response = upload(client, key, body)
    assert response.status_code == 400, response.content
    assert fragment in response.json()["error"]
    assert nothing_stored()


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b'{"strategy_name": "s", "positions": [], "cash": NaN}', "NaN is not allowed"),
        (
            b'{"strategy_name": "s", "positions": [{"code": "600000.SH", "volume": Infinity, "cost": 1}]}',
            "Infinity",
        ),
        (b"\xff\xfe", "UTF-8"),
        (b"[" * 100000, "JSON"),
    ],
)
def test_non_json_bodies_are_400(client, key, raw, fragment):
    response = upload(client, key, None, raw=raw)
    assert response.status_code == 400
    assert fragment in response.json()["error"]
    assert nothing_stored()


def test_body_over_1_mib_is_413(client, key):
    raw = json.dumps(payload(description="x" * (1024 * 1024))).encode()
    response = upload(client, key, None, raw=raw)
    assert response.status_code == 413
    assert "1 MiB" in response.json()["error"]
    assert nothing_stored()


def test_upload_with_5000_lines_is_accepted(client, key):
    """The limit itself is allowed (5,000 distinct SH main-board codes)."""
    lines = [{"code": f"60{i:04d}.XSHG", "volume": 100, "cost": 1.0} for i in range(5000)]
    response = upload(client, key, payload(positions=lines))
    assert response.status_code == 200, response.content
    assert response.json()["positions_count"] == 5000


# --- storage and change detection -------------------------------------------------


def test_upload_stores_snapshot_with_canonical_lines(client, key, make_api_client):
    response = upload(
        client,
        key,
        payload(
            positions=[
                {"code": "000001.XSHE", "volume": 1000, "cost": 12.5, "name": "平安银行"},
                {"code": "sh600000", "volume": 200.0, "cost": 8},
                {"code": "113050", "volume": 0, "cost": 100},  # zero lines mean "not held"
            ],
            total_value=100000.5,
            cash=20000,
        ),
    )
    body = response.json()
    assert response.status_code == 200
    assert body["changed"] is True and body["positions_count"] == 2
    snapshot = TargetSnapshot.objects.get()
    assert snapshot.total_value == Decimal("100000.5") and snapshot.cash == Decimal("20000")
    lines = list(snapshot.lines.values_list("code", "jq_code", "name", "volume", "cost"))
    assert lines == [
        ("000001.SZ", "000001.XSHE", "平安银行", 1000, Decimal("12.5")),
        ("600000.SH", "600000.XSHG", "", 200, Decimal("8")),
    ]
    assert snapshot.client.client_id == body["client_id"]
    assert snapshot.remote_addr == "127.0.0.1"


def test_identical_reupload_confirms_without_new_snapshot(client, key):
    first = upload(client, key, payload()).json()
    strategy = Strategy.objects.get()
    confirmed = strategy.confirmed_at
    second = upload(client, key, payload()).json()
    assert first["changed"] is True and second["changed"] is False
    assert TargetSnapshot.objects.count() == 1
    strategy.refresh_from_db()
    assert strategy.confirmed_at > confirmed
    assert Upload.objects.count() == 2


def test_reordered_and_renamed_lines_are_not_a_change(client, key):
    """Order, code spelling and names do not change what is traded."""
    a = [{"code": "000001.XSHE", "volume": 100, "cost": 1}, {"code": "600000.XSHG", "volume": 100, "cost": 2}]
    b = [
        {"code": "sh600000", "volume": 100, "cost": 2.0, "name": "浦发"},
        {"code": "000001", "volume": 100, "cost": 1},
    ]
    upload(client, key, payload(positions=a))
    assert upload(client, key, payload(positions=b)).json()["changed"] is False


def test_changed_volume_makes_new_snapshot(client, key):
    upload(client, key, payload())
    response = upload(client, key, payload(positions=[{"code": "000001.XSHE", "volume": 900, "cost": 12.5}]))
    assert response.json()["changed"] is True
    assert TargetSnapshot.objects.count() == 2
    strategy = Strategy.objects.get()
    assert strategy.current_snapshot.lines.get().volume == 900


def test_empty_list_is_an_explicit_target(client, key):
    """Going to cash is a real signal (DESIGN §5.1): it is stored as an empty snapshot."""
    upload(client, key, payload())
    response = upload(client, key, payload(positions=[]))
    assert response.json()["changed"] is True
    assert Strategy.objects.get().current_snapshot.positions_count == 0


def test_snapshots_are_immutable_history(client, key):
    upload(client, key, payload())
    upload(client, key, payload(positions=[]))
    first = TargetSnapshot.objects.order_by("id").first()
    assert first.lines.count() == 1  # the old version keeps its lines


# --- idempotency ----------------------------------------------------------------


def test_same_snapshot_id_returns_first_result_and_stores_nothing(client, key):
    first = upload(client, key, payload(snapshot_id="abc-1")).json()
    second = upload(
        client, key, payload(positions=[{"code": "600000.SH", "volume": 5, "cost": 1}], snapshot_id="abc-1")
    ).json()
    assert second["snapshot_id"] == "abc-1" and second["duplicate"] is True
    assert second["changed"] == first["changed"] and second["positions_count"] == first["positions_count"]
    assert TargetSnapshot.objects.count() == 1 and Upload.objects.count() == 1
    assert TargetLine.objects.get().code == "000001.SZ"


def test_snapshot_id_for_another_strategy_is_409(client, key):
    upload(client, key, payload(snapshot_id="abc-2"))
    response = upload(client, key, payload(strategy="策略B", snapshot_id="abc-2"))
    assert response.status_code == 409
    assert "already used" in response.json()["error"]


def test_snapshot_ids_are_per_client(client, make_api_client):
    _, key_a = make_api_client("a")
    _, key_b = make_api_client("b")
    upload(client, key_a, payload(snapshot_id="same"))
    response = upload(client, key_b, payload(positions=[], snapshot_id="same"))
    assert response.json()["duplicate"] is False and response.json()["changed"] is True


def test_snapshot_id_is_case_sensitive_on_every_database(client, key):
    """'ABC' and 'abc' are different ids even where the collation would fold case."""
    upload(client, key, payload(snapshot_id="ABC"))
    response = upload(client, key, payload(positions=[], snapshot_id="abc"))
    assert response.json()["duplicate"] is False


def test_strategy_names_differing_in_case_are_distinct(client, key):
    upload(client, key, payload(strategy="Alpha"))
    upload(client, key, payload(strategy="alpha", positions=[]))
    assert sorted(Strategy.objects.values_list("name", flat=True)) == ["Alpha", "alpha"]


def test_generated_snapshot_id_when_absent(client, key):
    body = upload(client, key, payload()).json()
    assert len(body["snapshot_id"]) == 32
    assert body["update_time"] and len(body["update_time"]) == 19


# --- creation rules ---------------------------------------------------------------


def test_unknown_strategy_created_by_default(client, make_api_client):
    api_client, key = make_api_client()
    upload(client, key, payload(strategy="新策略"))
    assert Strategy.objects.get(name="新策略").created_by == api_client


def test_client_that_may_not_create_gets_403(client, make_api_client):
    _, key = make_api_client(can_create_strategies=False)
    response = upload(client, key, payload(strategy="新策略"))
    assert response.status_code == 403
    assert "may not create" in response.json()["error"]
    assert nothing_stored()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(3))
def test_parallel_first_uploads_of_a_new_strategy(live_server, make_api_client, round_):
    """Eight simultaneous first uploads over real HTTP: no errors, one strategy, one snapshot.

    Run three times: on InnoDB a create-if-missing inside the locked transaction
    deadlocked only some of the time.
    """
    import requests

    _, key = make_api_client()
    name = f"并发策略{round_}"
    results, errors = [], []
    barrier = threading.Barrier(8)

    def send(index):
        barrier.wait()
        try:
            response = requests.post(
                live_server.url + UPDATE, json=payload(strategy=name), headers={"X-API-Key": key}, timeout=30
            )
            results.append((response.status_code, response.text))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert [code for code, _ in results] == [200] * 8, results
    assert sum(json.loads(body)["changed"] for _, body in results) == 1
    assert Strategy.objects.filter(name=name).count() == 1
    assert TargetSnapshot.objects.count() == 1


# --- reads -----------------------------------------------------------------------


def test_strategy_read_shape(client, key):
    upload(client, key, payload(total_value=1000, cash=10))
    body = client.get("/api/v1/positions/strategy/策略A", HTTP_X_API_KEY=key).json()
    assert body["strategy_name"] == "策略A"
    assert body["update_time"] and body["confirmed_time"]
    assert body["total_value"] == 1000.0 and body["cash"] == 10.0
    assert body["positions"] == [
        {
            "code": "000001.XSHE",
            "qmt_code": "000001.SZ",
            "name": "平安银行",
            "volume": 1000,
            "cost": 12.5,
            "update_time": body["update_time"],
        }
    ]


def test_unknown_strategy_read_is_404(client, key):
    response = client.get("/api/v1/positions/strategy/没有", HTTP_X_API_KEY=key)
    assert response.status_code == 404 and "does not exist" in response.json()["error"]


def test_total_sums_and_weights_cost(client, key):
    upload(client, key, payload("A", [{"code": "600000.SH", "volume": 100, "cost": 10}]))
    upload(client, key, payload("B", [{"code": "600000.XSHG", "volume": 300, "cost": 14}]))
    upload(client, key, payload("C", [{"code": "000001.SZ", "volume": 100, "cost": 1}]))
    body = client.get("/api/v1/positions/total?strategies=A,B", HTTP_X_API_KEY=key).json()
    assert body["positions"] == [
        {"code": "600000.XSHG", "qmt_code": "600000.SH", "name": "", "total_volume": 400, "avg_cost": 13.0}
    ]
    everything = client.get("/api/v1/positions/total", HTTP_X_API_KEY=key).json()
    assert {p["qmt_code"]: p["total_volume"] for p in everything["positions"]} == {
        "600000.SH": 400,
        "000001.SZ": 100,
    }


def test_total_with_unknown_strategy_is_404(client, key):
    assert client.get("/api/v1/positions/total?strategies=nope", HTTP_X_API_KEY=key).status_code == 404


def test_all_lists_every_strategy(client, key):
    upload(client, key, payload("A"))
    upload(client, key, payload("B", []))
    body = client.get("/api/v1/positions/all", HTTP_X_API_KEY=key).json()
    assert [(s["strategy_name"], len(s["positions"])) for s in body["strategies"]] == [("A", 1), ("B", 0)]


def test_reads_use_a_fixed_number_of_queries(client, key, django_assert_max_num_queries):
    for index in range(10):
        upload(client, key, payload(f"S{index}"))
    with django_assert_max_num_queries(8):
        client.get("/api/v1/positions/all", HTTP_X_API_KEY=key)


def test_target_write_from_inside_the_system(db):
    """Rotation and take-profit write targets through the same change detection as uploads."""
    from positions.services import strategy_get_or_create, target_write
    from positions.validation import TargetPosition

    strategy, _ = strategy_get_or_create(name="轮动")
    line = TargetPosition("113050.SH", "113050.XSHG", "南银转债", 10, Decimal("120"))
    snapshot, changed = target_write(
        strategy=strategy, positions=(line,), source=TargetSnapshot.Source.ROTATION
    )
    assert changed and snapshot.source == "rotation" and snapshot.client is None
    again, changed_again = target_write(
        strategy=strategy, positions=(line,), source=TargetSnapshot.Source.ROTATION
    )
    assert again == snapshot and not changed_again
    strategy.refresh_from_db()
    assert strategy.current_snapshot == snapshot and strategy.confirmed_at is not None
    assert list(snapshot.lines.values_list("code", "volume")) == [("113050.SH", 10)]


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["text/html", "application/xml", "*/*", "application/json; q=0.1", "garbage;;"])
def test_every_accept_header_gets_the_json_answer(client, key, accept):
    """The API speaks only JSON: whatever Accept says, the upload is stored and answered in JSON (not 406)."""
    response = client.post(
        "/api/v1/positions/update",
        json.dumps({"strategy_name": "accepts", "positions": [LINE]}),
        content_type="application/json",
        HTTP_X_API_KEY=key,
        HTTP_ACCEPT=accept,
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["positions_count"] == 1

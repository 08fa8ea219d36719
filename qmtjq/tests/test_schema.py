"""The OpenAPI schema and docs page are served to staff only, with local assets."""

import pytest

pytestmark = pytest.mark.django_db


def test_schema_for_staff(client, staff_user):
    client.force_login(staff_user)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    for path in ["/api/v1/positions/update", "/api/v1/positions/total", "/api/v1/auth/info"]:
        assert path in text


def test_docs_page_uses_local_assets(client, staff_user):
    """No CDN: the trading PC may have no internet."""
    client.force_login(staff_user)
    html = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_schema_hidden_from_anonymous(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_schema_generates_without_warnings():
    """`spectacular --fail-on-warn` passes: every view and auth scheme is described."""
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert "X-Auth-Token" in out.getvalue()


def _schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def test_schema_documents_every_error_answer():
    """Each operation lists the 4xx answers it can give, as {"error": ...} JSON."""
    paths = _schema()["paths"]
    for path, operations in paths.items():
        if path.endswith("/auth/info"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            expected = {"400", "401", "403", "429"}
            expected |= {"404"} if "{" in path else set()
            expected |= {"413"} if method == "post" else set()
            assert expected <= set(responses), (method, path, sorted(responses))
            assert responses["400"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }
    assert "409" in paths["/api/v1/positions/update"]["post"]["responses"]


def test_schema_states_the_enforced_rules():
    """min lengths, page ≥ 1 and the snapshot_id pattern are in the schema, not only in the code."""
    schema = _schema()
    params = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/orders"]["get"]["parameters"]}
    assert params["page"]["minimum"] == 1 and params["page"]["maximum"] >= 1000
    strategy_param = schema["paths"]["/api/v1/positions/strategy/{name}"]["get"]["parameters"][0]["schema"]
    assert strategy_param["minLength"] == 1 and strategy_param["maxLength"] == 100
    body = schema["components"]["schemas"]["PositionsUpdateIn"]["properties"]
    assert body["strategy_name"]["minLength"] == 1
    assert "pattern" in body["snapshot_id"]

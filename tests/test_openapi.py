"""The OpenAPI schema generates without warnings and the docs are served offline."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command


def test_schema_generates_without_warnings_and_validates(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    assert schema["openapi"].startswith("3.")
    for route in (
        "/api/v1/labs/",
        "/api/v1/memberships/{id}/",
        "/api/v1/tokens/",
        "/api/v1/me/",
        "/api/v1/health/",
    ):
        assert route in schema["paths"], route
    assert "apiToken" in schema["components"]["securitySchemes"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_docs_pages_use_local_assets(client, url):
    page = client.get(url).content.decode()
    assert "drf_spectacular_sidecar" in page
    assert "cdn." not in page and "jsdelivr" not in page


@pytest.mark.django_db
def test_schema_endpoint(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/v1/labs/" in response.json()["paths"]


def _schema(tmp_path) -> dict:
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out))
    return yaml.safe_load(out.read_text())


def test_every_operation_documents_its_error_answers(tmp_path):
    schema = _schema(tmp_path)
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    operations = [
        (path, method, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 40
    for path, method, op in operations:
        codes = set(op["responses"])
        assert {"400", "404", "500"} <= codes, (method, path, codes)
        if path != "/api/v1/health/":
            assert {"401", "403"} <= codes, (method, path, codes)
        ref = op["responses"]["404"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/Error"


def test_a_readings_fixations_are_documented_as_the_plain_array_they_are(tmp_path):
    op = _schema(tmp_path)["paths"]["/api/v1/readings/{id}/fixations/"]["get"]
    assert [p["name"] for p in op["parameters"]] == ["format", "id"]  # no list filters, no page
    content = op["responses"]["200"]["content"]
    assert content["application/json"]["schema"]["type"] == "array"
    assert "text/csv" in content

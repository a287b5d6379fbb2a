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

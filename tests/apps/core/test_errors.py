"""An unhandled error under /api/ answers the API's JSON error shape with status 500 and a request
id that is also in the log; pages keep Django's own error handling."""

from __future__ import annotations

import logging

import pytest
from django.test import Client


@pytest.fixture
def boom_urls(settings):
    settings.ROOT_URLCONF = "tests.apps.core.urls_boom"


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("url", ["/api/v1/test-boom/", "/api/v1/test-plain-boom/"])
def test_an_api_bug_is_json_500_with_a_logged_request_id(boom_urls, settings, caplog, debug, url):
    settings.DEBUG = debug  # the demo runs with DEBUG on: no HTML traceback page there either
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="apps.errors"):
        response = client.get(url)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    rid = error["request_id"]
    assert error["code"] == "server_error" and rid in error["message"]
    assert response["X-Request-ID"] == rid
    assert "bug" not in error["message"]  # no internals in the answer
    logged = [r for r in caplog.records if rid in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the log, by id


def test_a_proxy_request_id_is_kept_and_a_bad_one_replaced(boom_urls):
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/test-boom/", HTTP_X_REQUEST_ID="proxy-id-1234")
    assert response.json()["error"]["request_id"] == "proxy-id-1234"
    response = client.get("/api/v1/test-boom/", HTTP_X_REQUEST_ID="<script>")
    rid = response.json()["error"]["request_id"]
    assert rid != "<script>" and len(rid) == 32


def test_every_response_carries_a_request_id(db):
    response = Client().get("/api/v1/health/")
    assert len(response["X-Request-ID"]) == 32


def test_a_page_bug_is_not_turned_into_json(boom_urls, settings):
    settings.DEBUG = False
    response = Client(raise_request_exception=False).get("/test-page-boom/")
    assert response.status_code == 500
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("debug", [True, False])
def test_an_unknown_api_path_is_a_json_404_in_development_too(settings, debug, db):
    settings.DEBUG = debug
    response = Client().get("/api/v1/no-such-route/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    page = Client().get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_an_error_of_a_view_that_renders_csv_or_png_is_json(personas):
    from tests.conftest import client_for

    api = client_for(personas.viewer_a)
    bad = api.get("/api/v1/fixations/?format=csv&reading=not-a-number")
    assert bad.status_code == 400 and bad["Content-Type"] == "application/json"
    assert bad.json()["error"]["fields"]
    missing = api.get("/api/v1/images/999999/preview/")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/json"
    one = api.get("/api/v1/fixations/999999/?format=csv")
    assert one.status_code == 404 and one["Content-Type"] == "application/json"

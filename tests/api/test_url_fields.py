"""URLs shoprelay will call are checked on the way in, the way the HTTP client parses them (issue 6)."""

from __future__ import annotations

import pytest

from webapp.schemas.urls import http_url_problem

BAD = [
    ("ftp://example.com/x", "http:// or https://"),
    ("http://", "must name a host"),
    ("http://exa mple.com/hook", "spaces in the host"),
    ("http://127.0.0.1:99999/hook", "port outside 1-65535"),
    ("http://[::1/hook", "not a valid URL"),
]


@pytest.mark.parametrize(("url", "why"), BAD)
def test_bad_urls_are_named(url: str, why: str) -> None:
    assert why in (http_url_problem(url) or "")


@pytest.mark.parametrize("url", ["https://a.klaviyo.com", "http://127.0.0.1:8000/klaviyo",
                                 "https://shop.example.com/exports/my products.csv?key=1"])
def test_good_urls_pass(url: str) -> None:
    assert http_url_problem(url) is None


@pytest.mark.parametrize(("url", "why"), BAD)
def test_destination_base_and_webhook_urls_are_refused_with_the_field_named(api, url: str, why: str) -> None:
    klaviyo = api.post("/api/v1/destinations", json={"name": "k", "kind": "klaviyo", "base_url": url,
                                                     "credentials": {"api_key": "pk_test_1234"}})
    assert klaviyo.status_code == 422
    assert [(e["path"], why in e["message"]) for e in klaviyo.get_json()["errors"]] == [("base_url", True)]
    webhook = api.post("/api/v1/destinations", json={"name": "w", "kind": "webhook",
                                                     "credentials": {"url": url, "secret": "s3cret-value"}})
    assert webhook.status_code == 422
    assert [(e["path"], why in e["message"]) for e in webhook.get_json()["errors"]] == [("credentials.url", True)]


def test_source_location_is_refused_with_the_field_named(api) -> None:
    response = api.post("/api/v1/sources", json={"name": "s", "format": "csv",
                                                 "location": "http://exa mple.com/export.csv"})
    assert response.status_code == 422
    assert any(e["path"] == "location" and "spaces in the host" in e["message"]
               for e in response.get_json()["errors"])

"""A destination whose platform said "wait" (429) says so: "rate limited until" on its page and in the overview,
`rate_limited_until` in the API (documented in the OpenAPI document), and a test connection is not sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import both_databases
from tests.factories import make_order
from tests.fakeplatform import FakePlatform
from webapp.schemas import responses as out

pytestmark = both_databases


@pytest.fixture()
def fake() -> Iterator[FakePlatform]:
    from workers.delivery.http_client import close_all

    with FakePlatform() as platform:
        yield platform
        close_all()


def _rate_limited_destination(api, fake, worker) -> dict:  # noqa: ANN001
    created = api.post("/api/v1/destinations", json={
        "name": "Klaviyo store", "kind": "klaviyo", "credentials": {"api_key": fake.klaviyo_key},
        "base_url": fake.base_url("klaviyo"), "events": ["placed_order"]}).get_json()
    assert created["rate_limited_until"] is None
    fake.rate_limit_next(1, retry_after=120, platform="klaviyo")
    api.post("/api/v1/orders", json=make_order())
    worker(["delivery"])
    return created


def test_the_page_api_and_overview_show_rate_limited_until(logged_in, api, fake, worker) -> None:  # noqa: ANN001
    destination = _rate_limited_destination(api, fake, worker)
    body = api.get(f"/api/v1/destinations/{destination['id']}").get_json()
    out.DestinationOut.model_validate(body)
    until = datetime.fromisoformat(body["rate_limited_until"].replace("Z", "+00:00"))
    assert datetime.now(UTC) + timedelta(seconds=110) < until < datetime.now(UTC) + timedelta(seconds=125)
    html = logged_in.get(f"/destinations/{destination['id']}").get_data(as_text=True)
    assert f"Rate limited until <time datetime=\"{until.isoformat()}\">{until:%Y-%m-%d %H:%M:%S} UTC" in html
    assert "Klaviyo store is rate limited" in logged_in.get("/").get_data(as_text=True)
    listed = logged_in.get("/destinations/").get_data(as_text=True)
    assert 'badge-rate-limited">rate limited</span>' in listed
    assert f"Rate limited until <time datetime=\"{until.isoformat()}\">{until:%H:%M:%S} UTC</time>" in listed
    requests = len(fake.requests)
    token = logged_in.get(f"/destinations/{destination['id']}").get_data(as_text=True).split(
        'name="csrf_token" value="')[1].split('"')[0]
    tested = logged_in.post(f"/destinations/{destination['id']}/test", data={"csrf_token": token},
                            headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Not sent: the platform asked to wait until" in tested and len(fake.requests) == requests


def test_the_openapi_document_carries_rate_limited_until(client) -> None:  # noqa: ANN001
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["DestinationOut"]
    for name in ("rate_limited_until", "paused_at", "last_success_at", "settings"):
        assert name in schema["properties"] and name in schema["required"]

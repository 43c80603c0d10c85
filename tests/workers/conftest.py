"""Fixtures for delivery tests: the fake platform server and destinations pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakeplatform import FakePlatform

CREDENTIALS = {
    "klaviyo": lambda fake: {"api_key": fake.klaviyo_key},
    "sendlane": lambda fake: {"api_token": fake.sendlane_token,
                              "integration_token": fake.sendlane_integration_token},
    "esputnik": lambda fake: {"api_key": fake.esputnik_key},
    "webhook": lambda fake: {"url": fake.base_url("webhook"), "secret": fake.webhook_secret},
}


@pytest.fixture()
def fake() -> Iterator[FakePlatform]:
    from workers.delivery.http_client import close_all

    with FakePlatform() as platform:
        yield platform
        close_all()
        assert not platform.internal_errors, platform.internal_errors


@pytest.fixture()
def make_destination(api, fake):  # noqa: ANN001, ANN201
    """Create a destination of `kind` pointed at the fake platform through the real API."""

    def create(kind: str = "klaviyo", **extra) -> dict:  # noqa: ANN003
        body = {"name": f"{kind} test", "kind": kind, "credentials": CREDENTIALS[kind](fake)}
        if kind != "webhook":
            body["base_url"] = fake.base_url(kind)
        response = api.post("/api/v1/destinations", json=body | extra)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return create

"""One fake platform per test (no internal errors allowed) and a client per platform."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fakeplatform import FakePlatform
from tests.fakeplatform.tests.bodies import KLAVIYO_HEADERS


@pytest.fixture
def fake() -> Iterator[FakePlatform]:
    with FakePlatform() as platform:
        yield platform
        assert platform.internal_errors == []


@pytest.fixture
def klaviyo(fake: FakePlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url("klaviyo"), headers=KLAVIYO_HEADERS, timeout=5) as client:
        yield client


@pytest.fixture
def sendlane(fake: FakePlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url("sendlane"), headers={"Authorization": "Bearer sl_api_test"},
                      timeout=5) as client:
        yield client


@pytest.fixture
def esputnik(fake: FakePlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url("esputnik"), auth=("any", "es_test"), timeout=5) as client:
        yield client

"""The fake Klaviyo for platform catalog tests: jobs answer "processing" twice before they complete, as real
Klaviyo jobs take a while."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakeplatform import FakePlatform


@pytest.fixture()
def fake() -> Iterator[FakePlatform]:
    from workers.delivery.http_client import close_all

    with FakePlatform() as platform:
        platform.set_klaviyo_job_polls(2)
        yield platform
        close_all()
        assert not platform.internal_errors, platform.internal_errors

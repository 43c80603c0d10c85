"""The fake platform as its own process (benchmarks) keeps its answer time flat over a long run."""

from __future__ import annotations

import gc

import httpx

from tests.factories import make_order_event
from workers.delivery.http_client import body_of
from workers.destinations.klaviyo import KlaviyoAdapter


def test_the_fake_process_freezes_what_it_keeps_after_each_request() -> None:
    """What the fake keeps only grows; without the freeze every full collection walked all of it again (a
    1,000-event request took 81 ms at the start of a 100-request run and ~150 ms at its end)."""
    from tests.fakeplatform.__main__ import ProcessFakePlatform

    gc.unfreeze()
    try:
        with ProcessFakePlatform() as fake, httpx.Client(timeout=5) as client:
            adapter = KlaviyoAdapter({"api_key": fake.klaviyo_key}, fake.base_url("klaviyo"))
            (request,) = adapter.build_requests([make_order_event("placed_order")]).requests
            content, headers = body_of(request)
            assert client.post(request.url, content=content, headers=headers).status_code == 202
            assert len(fake.klaviyo_events) == 1
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()

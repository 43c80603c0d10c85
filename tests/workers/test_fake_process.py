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


def test_the_fake_process_takes_faults_and_reports_over_its_control_endpoints() -> None:
    """Tests in other processes (tests/reliability) steer the fake and read what it kept over HTTP."""
    from tests.fakeplatform.__main__ import ProcessFakePlatform

    gc.unfreeze()
    try:
        with ProcessFakePlatform() as fake, httpx.Client(base_url=fake.url, timeout=5) as client:
            fault = {"kind": "rate_limit", "platform": "klaviyo", "n": 1, "retry_after": 3}
            assert client.post("/_control/fault", json=fault).status_code == 204
            assert client.post("/_control/fault", json={"kind": "explode"}).status_code == 400
            adapter = KlaviyoAdapter({"api_key": fake.klaviyo_key}, fake.base_url("klaviyo"))
            (request,) = adapter.build_requests([make_order_event("placed_order")]).requests
            content, headers = body_of(request)
            statuses = [client.post(request.url, content=content, headers=headers).status_code for _ in range(3)]
            assert statuses == [429, 202, 202]
            summary = client.get("/_control/summary").json()
            assert summary["kept"] == [["klaviyo", "Placed Order", "1234", 1]]
            assert summary["resent"] == 1  # the third post: absorbed by its unique id, not kept again
            assert [(r[0], r[3], r[4]) for r in summary["requests"]] == [
                ("klaviyo", 429, "rate_limit"), ("klaviyo", 202, None), ("klaviyo", 202, None)]
            assert [(platform, seconds) for platform, _, seconds in summary["throttles"]] == [("klaviyo", 3.0)]
            assert client.post("/_control/reset").status_code == 204
            assert client.get("/_control/summary").json()["requests"] == []
    finally:
        gc.unfreeze()

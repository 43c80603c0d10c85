"""The fake platform throttles on command (429 / 503 with or without Retry-After, for a number of requests or a
while) and counts the requests that arrived before a Retry-After it sent had expired, in process and as its own
process."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

KLAVIYO_HEADERS = {"Authorization": "Klaviyo-API-Key pk_test", "revision": "2026-07-15"}
ACCOUNTS = "/klaviyo/api/accounts"


def _get(url: str, headers: dict[str, str] = KLAVIYO_HEADERS) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=5)


def test_a_time_bounded_throttle_answers_429_with_the_time_left(fake):
    fake.rate_limit_for(2.0, platform="klaviyo")
    first = _get(fake.url + ACCOUNTS)
    assert first.status_code == 429 and first.headers["Retry-After"] == "2"
    assert _get(fake.url + "/sendlane/api/v2/ping", {"Authorization": "Bearer sl_api_test"}).status_code != 429
    time.sleep(1.1)
    assert _get(fake.url + ACCOUNTS).headers["Retry-After"] == "1"  # what is left, rounded up
    time.sleep(1.0)
    assert _get(fake.url + ACCOUNTS).status_code == 200


@pytest.mark.parametrize(("status", "header"), [(429, False), (503, True), (503, False)])
def test_throttle_variants(fake, status, header):
    fake.rate_limit_next(1, retry_after=3, platform="klaviyo", status=status, header=header)
    response = _get(fake.url + ACCOUNTS)
    assert response.status_code == status
    assert ("Retry-After" in response.headers) is header
    assert fake.early_requests() == []  # the throttled request itself is not early


def test_early_requests_are_those_after_a_retry_after_and_before_it_expired(fake):
    fake.rate_limit_next(1, retry_after=1, platform="klaviyo")
    assert _get(fake.url + ACCOUNTS).status_code == 429
    assert _get(fake.url + ACCOUNTS).status_code == 200  # the platform let it through, but it was early
    other_key = KLAVIYO_HEADERS | {"Authorization": "Klaviyo-API-Key pk_other"}
    _get(fake.url + ACCOUNTS, other_key)  # another account: not early (refused for its key, but counted apart)
    assert len(fake.early_requests()) == 1 and fake.early_requests(platform="sendlane") == []
    assert fake.early_requests(grace=5) == []  # arrived within the grace: in flight when the 429 went out
    time.sleep(1.05)
    _get(fake.url + ACCOUNTS)
    assert len(fake.early_requests()) == 1  # after Retry-After: fine


def test_a_bare_429_or_503_opens_no_window(fake):
    fake.rate_limit_next(1, platform="klaviyo", header=False)
    fake.rate_limit_next(1, platform="klaviyo", status=503, header=False)
    for _ in range(4):
        _get(fake.url + ACCOUNTS)
    assert fake.early_requests() == []


@pytest.mark.slow
def test_the_fake_as_its_own_process_throttles_and_counts_early_requests_over_http():
    process = subprocess.Popen([sys.executable, "-m", "tests.fakeplatform", "--port", "0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert httpx.post(f"{url}/_fake/faults", json={"kind": "rate_limit", "seconds": 3, "retry_after": 3,
                                                       "platform": "klaviyo"}, timeout=5).status_code == 204
        assert _get(url + ACCOUNTS).status_code == 429
        assert _get(url + ACCOUNTS).status_code == 429
        early = httpx.get(f"{url}/_fake/early-requests", timeout=5).json()["early"]
        assert [(r["platform"], r["path"], r["status"]) for r in early] == [("klaviyo", ACCOUNTS, 429)]
        assert httpx.get(f"{url}/_fake/early-requests?grace=10", timeout=5).json() == {"early": []}
        bad = httpx.post(f"{url}/_fake/faults", json={"kind": "teleport"}, timeout=5)
        assert bad.status_code == 400 and "teleport" in bad.json()["error"]
        assert httpx.post(f"{url}/_fake/reset", timeout=5).status_code == 204
        assert _get(url + ACCOUNTS).status_code == 200
        assert httpx.get(f"{url}/_fake/early-requests", timeout=5).json() == {"early": []}
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()

"""The collector over real HTTP (the threaded server of the browser tests): floods, junk, giant and chunked
bodies, forged origins — every answer a 4xx in the error shape or a 202, never a 5xx."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
HEADERS = {"User-Agent": BROWSER_UA, "Origin": "https://shop.example", "Content-Type": "text/plain"}


def _error_shape(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    errors = response.json()["errors"]
    assert errors and all(set(error) == {"path", "message"} for error in errors)


def test_abuse_gets_4xx_only(app, live_server) -> None:  # noqa: ANN001
    app.config["ONSITE_ORIGINS"] = ("https://shop.example",)
    app.config["ONSITE_IP_PER_MINUTE"] = 100
    url = f"{live_server}/t/collect"
    with httpx.Client(timeout=30) as client:
        _error_shape(client.post(url, content=b"x" * 200_000, headers=HEADERS))  # giant, with a length

        def chunks():  # giant, chunked (no Content-Length)
            for _ in range(50):
                yield b"{" * 10_000

        _error_shape(client.post(url, content=chunks(), headers=HEADERS))
        forged = client.post(url, content=b"{}", headers=HEADERS | {"Origin": "https://evil.example"})
        _error_shape(forged)
        assert "access-control-allow-origin" not in forged.headers
        _error_shape(client.post(url, content=b"{}", headers=HEADERS | {"User-Agent": "curl/8.5.0"}))

    event = json.dumps({"event": "active_on_site", "anonymous_id": "flooding-browser-1"}).encode()
    junk = [b"", b"[]", b"\xff\xfe", b'{"events": 5}', b'{"events": [' + b"{}," * 30 + b"{}]}", event]

    def hit(n: int) -> int:
        with httpx.Client(timeout=30) as client:
            return client.post(url, content=junk[n % len(junk)], headers=HEADERS).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(hit, range(240)))
    assert all(code == 202 or 400 <= code < 500 for code in codes), sorted(set(codes))
    assert codes.count(429) >= 100  # the address's budget (100 a minute) holds, junk included

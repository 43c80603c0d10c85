"""A real local HTTP server for tests that fetch sources and feeds: canned routes, ETags, delays, no length."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Route:
    """A canned answer; with `etag` set, a matching If-None-Match gets 304."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    etag: str | None = None
    send_length: bool = True


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]


class LocalServer:
    """Routes by full path (query included) first, then by path alone; unknown paths answer 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[SeenRequest] = []
        self.base_url = ""

    def route(self, path: str, body: bytes | str = b"", **options: object) -> str:
        payload = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(body=payload, **options)  # type: ignore[arg-type]
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def find(self, path: str) -> Route | None:
        return self.routes.get(path) or self.routes.get(path.split("?", 1)[0])


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        local = self.server.local
        local.requests.append(SeenRequest(self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = local.find(self.path)
        try:
            if route is None:
                self._answer(404, {}, b"no such route", True)
                return
            if route.delay:
                time.sleep(route.delay)
            if route.etag and self.headers.get("If-None-Match") == route.etag:
                self._answer(304, {"ETag": route.etag}, b"", False)
                return
            headers = dict(route.headers)
            if route.etag:
                headers["ETag"] = route.etag
            self._answer(route.status, headers, route.body, route.send_length)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (timeout tests)

    def _answer(self, status: int, headers: dict[str, str], body: bytes, send_length: bool) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if send_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class signature
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    local: LocalServer


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.local = LocalServer()
    server.local.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.local
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

"""Fixtures for the security tests: a hostile echo server that answers every request with an error whose body
repeats the request (line, headers, body), the way careless platforms and proxies do."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _Echo(BaseHTTPRequestHandler):
    """`/e401/...` answers 401, `/e500/...` 500, anything else 404; the body is the request as received."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status = 401 if self.path.startswith("/e401") else 500 if self.path.startswith("/e500") else 404
        echoed = f"{self.command} {self.path}\n{self.headers}".encode() + body
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(echoed)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(echoed)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer  # noqa: N815 - http.server naming

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class signature
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture()
def echo_server() -> Iterator[str]:
    """The base URL (http://127.0.0.1:PORT) of a server that answers errors echoing the request."""
    server = _Server(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    from workers.delivery.http_client import close_all

    close_all()  # the delivery sender's pooled connections to this server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)

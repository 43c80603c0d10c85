"""The delivery sender: real HTTP to local servers (headers, basic auth, no redirects, timeouts, proxies)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from workers.delivery.http_client import USER_AGENT, Sender, proxy_for, send
from workers.destinations.base import PreparedRequest


class _Recorder(BaseHTTPRequestHandler):
    """Answers by path: /redirect → 302, /slow → sleeps past the client's timeout, else 200 with what it got."""

    seen: list[tuple[str, dict[str, str], bytes]]

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append((self.path, dict(self.headers), body))
        if self.path.endswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.endswith("/slow"):
            threading.Event().wait(1.5)
        answer = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture()
def server() -> Iterator[tuple[str, list]]:
    handler = type("Handler", (_Recorder,), {"seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.seen
    httpd.shutdown()
    httpd.server_close()


def test_sends_body_default_headers_and_basic_auth(server) -> None:
    url, seen = server
    sender = Sender(5.0, proxies={})
    request = PreparedRequest("POST", f"{url}/api/events", [1], json={"a": 1}, headers={"X-Api": "k"},
                              auth=("user", "secret"))
    result = send(sender, request)
    sender.close()
    assert result.status == 200 and result.body == b'{"ok": true}' and result.error is None
    path, headers, body = seen[0]
    assert path == "/api/events" and body == b'{"a":1}'
    assert headers["User-Agent"] == USER_AGENT and headers["Content-Type"] == "application/json"
    assert headers["X-Api"] == "k"
    assert httpx.BasicAuth("user", "secret")._auth_header == headers["Authorization"]


def test_a_request_header_overrides_a_default_whatever_its_case(server) -> None:
    url, seen = server
    sender = Sender(5.0, proxies={})
    send(sender, PreparedRequest("POST", f"{url}/x", [1], content=b"{}", headers={"user-agent": "mine"}))
    sender.close()
    sent = [(name.lower(), value) for name, value in seen[0][1].items()]
    assert [value for name, value in sent if name == "user-agent"] == ["mine"]


def test_a_redirect_is_an_answer_not_followed(server) -> None:
    url, seen = server
    sender = Sender(5.0, proxies={})
    result = send(sender, PreparedRequest("POST", f"{url}/redirect", [1], content=b"{}"))
    sender.close()
    assert result.status == 302 and len(seen) == 1


def test_timeout_and_refused_connection_are_answers(server) -> None:
    url, _ = server
    sender = Sender(0.3, proxies={})
    slow = send(sender, PreparedRequest("POST", f"{url}/slow", [1], content=b"{}"))
    refused = send(sender, PreparedRequest("POST", "http://127.0.0.1:9/x", [1], content=b"{}"))
    sender.close()
    assert slow.status is None and slow.error.startswith("timed out")
    assert refused.status is None and refused.error.startswith("network error: ConnectError")


def test_keeps_connections_alive_between_requests(server) -> None:
    url, seen = server
    sender = Sender(5.0, proxies={})
    for _ in range(3):
        assert send(sender, PreparedRequest("POST", f"{url}/x", [1], content=b"{}")).status == 200
    sender.close()
    assert [headers.get("Connection", "keep-alive").lower() for _, headers, _ in seen] == ["keep-alive"] * 3


def test_requests_go_through_the_environment_proxy(server) -> None:
    """A plain-HTTP proxy receives the absolute URL in the request line: the recorder plays the proxy."""
    proxy_url, seen = server
    sender = Sender(5.0, proxies={"http": proxy_url})
    result = send(sender, PreparedRequest("POST", "http://platform.invalid/api/events", [1], content=b"{}"))
    sender.close()
    assert result.status == 200
    assert seen[0][0] == "http://platform.invalid/api/events"


def test_proxy_choice_follows_scheme_all_and_no_proxy() -> None:
    url = httpx.URL("https://a.klaviyo.com/api/events")
    assert proxy_for(url, {}) is None
    assert proxy_for(url, {"https": "http://p:3128"}) == "http://p:3128"
    assert proxy_for(url, {"http": "http://p:3128"}) is None
    assert proxy_for(url, {"all": "http://q:3128"}) == "http://q:3128"
    assert proxy_for(url, {"https": "http://p:3128", "no": "klaviyo.com,localhost"}) is None
    assert proxy_for(url, {"https": "http://p:3128", "no": "example.com"}) == "http://p:3128"


def test_https_certificates_are_verified(tmp_path) -> None:
    """The transport is built by hand, so check it still refuses a certificate no CA vouches for."""
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    handler = type("Handler", (_Recorder,), {"seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        sender = Sender(5.0, proxies={})
        result = send(sender, PreparedRequest("POST", f"https://127.0.0.1:{httpd.server_address[1]}/x", [1],
                                              content=b"{}"))
        sender.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result.status is None and "CERTIFICATE_VERIFY_FAILED" in result.error
    assert handler.seen == []

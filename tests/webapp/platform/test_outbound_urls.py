"""The outbound URL guard (SSRF): inward addresses are refused when a URL is given (a 422 naming the field) and
when a connection is made (after DNS, on every redirect hop, to the address that was checked), unless
SHOPRELAY_ALLOW_PRIVATE_URLS allows them.

A hosts-like resolver hook (`outbound_urls.resolve`) makes public-looking names point at the local test server.
"""

from __future__ import annotations

import ipaddress
import socket

import httpx
import pytest
import requests
import sqlalchemy as sa

from feeds.fetch import fetch_to_file
from feeds.product import SourceError
from tests.factories import make_order
from webapp.services.platform import outbound_urls
from webapp.services.platform.outbound_http import (
    GuardedTransport,
    guarded_sockets,
    outbound_client,
    refusal_of,
)
from webapp.services.platform.outbound_urls import (
    OutboundRefused,
    allowed_addresses,
    parse_allow_list,
    url_problem,
)

NONE = parse_allow_list("")

INWARD = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.8.9.10:8000/x", "loopback"),
    ("http://2130706433/", "dotted decimal"),  # 127.0.0.1 as one decimal number
    ("http://0x7f.1/", "dotted decimal"),  # hex and short forms
    ("http://0x7f000001/", "dotted decimal"),
    ("http://127.1/", "dotted decimal"),
    ("http://017700000001/", "dotted decimal"),  # octal
    ("http://0177.0.0.1/", "not a valid URL"),  # octal parts: httpx refuses to parse it at all
    ("http://[::1]/", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]:8080/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped IPv6
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[::ffff:10.0.0.1]/", "private"),
    ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 of 10.0.0.1
    ("http://[2002:a00:1::]/", "private"),  # 6to4 of 10.0.0.1
    ("http://10.1.2.3/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1:8080/", "private"),
    ("http://[fd12:3456::1]/", "private"),  # ULA
    ("http://169.254.1.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25eth0]/", "link-local"),
    ("http://100.64.0.1/", "CGNAT"),
    ("http://224.0.0.251/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://[fd00:ec2::254]/", "metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
    ("http://METADATA.google.internal./", "metadata"),
    ("http://240.0.0.1/", "reserved"),
]


@pytest.fixture()
def strict(app):  # noqa: ANN001, ANN201
    """The app with nothing private allowed (the production default)."""
    app.config["ALLOW_PRIVATE_URLS"] = ""
    return app


class Hosts(dict):
    """name -> addresses, and every name looked up (in order)."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups: list[str] = []


@pytest.fixture()
def hosts(monkeypatch) -> Hosts:  # noqa: ANN001
    """A hosts table in front of the system resolver: `hosts["shop.example.com"] = ["127.0.0.1"]`."""
    table = Hosts()
    system = outbound_urls.resolve

    def resolve(host: str, port: int) -> list[str]:
        table.lookups.append(host)
        return table[host] if host in table else system(host, port)

    monkeypatch.setattr(outbound_urls, "resolve", resolve)
    return table


@pytest.mark.parametrize(("url", "why"), INWARD)
def test_inward_addresses_in_every_form_are_refused(url: str, why: str) -> None:
    problem = url_problem(url, NONE)
    assert problem is not None and why in problem, problem
    if why != "not a valid URL":
        assert "SHOPRELAY_ALLOW_PRIVATE_URLS" in problem or "dotted decimal" in problem


@pytest.mark.parametrize("url", ["http://8.8.8.8/", "https://1.1.1.1:8443/x", "http://[2606:4700::1111]/",
                                 "https://shop.example/feed.csv", "https://a.klaviyo.com/api/"])
def test_public_addresses_and_unresolvable_names_pass(url: str) -> None:
    assert url_problem(url, NONE) is None  # a name that does not resolve today is checked on connect


def test_the_allow_list_opens_exactly_what_it_names() -> None:
    policy = parse_allow_list(" 127.0.0.1, localhost ,::1, 10.0.0.0/8, 192.168.1.1:8080, [fd00::5]:9000, "
                              "platform.internal:8443")
    assert url_problem("http://127.0.0.1:5000/", policy) is None
    assert url_problem("http://[::ffff:127.0.0.1]/", policy) is None  # the mapped form is the same address
    assert url_problem("http://localhost:8000/", policy) is None
    assert url_problem("http://[::1]/", policy) is None
    assert url_problem("http://10.200.3.4/", policy) is None
    assert url_problem("http://192.168.1.1:8080/", policy) is None
    assert "private" in url_problem("http://192.168.1.1:8081/", policy)  # another port
    assert "private" in url_problem("http://192.168.1.2:8080/", policy)
    assert url_problem("http://[fd00::5]:9000/", policy) is None
    assert "private" in url_problem("http://[fd00::5]:9001/", policy)
    assert "127.0.0.2" in url_problem("http://127.0.0.2/", policy)  # one address is not its range
    assert "metadata" in url_problem("http://169.254.169.254/", parse_allow_list("169.254.0.0/16,0.0.0.0/0"))
    assert url_problem("http://169.254.169.254/", parse_allow_list("169.254.169.254")) is None  # named alone
    assert url_problem("http://2130706433/", parse_allow_list("127.0.0.0/8")) is not None  # never ambiguous


@pytest.mark.parametrize("value", ["foo bar", "10.0.0.0/33", "localhost:0", "host:99999", "*.example.com",
                                   "2130706433", "http://x"])
def test_allow_list_entries_that_are_not_hosts_or_ranges_fail_fast(value: str) -> None:
    from webapp.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="SHOPRELAY_ALLOW_PRIVATE_URLS"):
        load_settings({"SHOPRELAY_ALLOW_PRIVATE_URLS": value})


def test_a_public_name_resolving_inward_is_refused(strict, hosts) -> None:  # noqa: ANN001
    hosts["shop.example.com"] = ["127.0.0.1"]
    hosts["dual.example.com"] = ["10.0.0.7", "fd00::7"]
    assert "shop.example.com resolves to 127.0.0.1, a loopback address" in url_problem(
        "https://shop.example.com/feed.csv")
    assert "dual.example.com resolves to 10.0.0.7, a private address" in url_problem("http://dual.example.com/")
    hosts["mixed.example.com"] = ["10.0.0.7", "93.184.216.34"]
    assert allowed_addresses("mixed.example.com", 80) == ["93.184.216.34"]  # only ever the public one
    strict.config["ALLOW_PRIVATE_URLS"] = "shop.example.com"  # a name in the list may resolve anywhere
    assert url_problem("https://shop.example.com/feed.csv") is None


def test_the_connection_goes_to_the_checked_address_with_the_host_header_kept(app, hosts, http_server,
                                                                            monkeypatch) -> None:  # noqa: ANN001
    """No second lookup a rebinding DNS could answer differently: the socket connects to the address checked."""
    port = int(http_server.base_url.rsplit(":", 1)[1])
    http_server.route("/feed.csv", b"id\n1\n")
    hosts["shop.example.com"] = ["127.0.0.1"]
    system = socket.getaddrinfo

    def no_second_lookup(host, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        assert host != "shop.example.com", "the name was looked up again after the check"
        return system(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_second_lookup)
    with outbound_client(5.0) as client:
        response = client.get(f"http://shop.example.com:{port}/feed.csv")
    assert response.status_code == 200 and response.content == b"id\n1\n"
    assert http_server.requests[-1].headers["host"] == f"shop.example.com:{port}"
    assert hosts.lookups == ["shop.example.com"]


def test_a_refused_connection_sends_nothing(strict, hosts, http_server) -> None:  # noqa: ANN001
    port = int(http_server.base_url.rsplit(":", 1)[1])
    http_server.route("/feed.csv", b"id\n1\n")
    hosts["shop.example.com"] = ["127.0.0.1"]
    with outbound_client(5.0) as client, pytest.raises(httpx.ConnectError) as raised:
        client.get(f"http://shop.example.com:{port}/feed.csv")
    assert "shop.example.com resolves to 127.0.0.1, a loopback address" in refusal_of(raised.value)
    with outbound_client(5.0) as client, pytest.raises(httpx.ConnectError):
        client.get(http_server.url("/feed.csv"))  # the address itself
    assert http_server.requests == []


def test_redirects_into_the_network_are_refused_at_the_hop(app, hosts, http_server, tmp_path) -> None:  # noqa: ANN001
    port = int(http_server.base_url.rsplit(":", 1)[1])
    hosts["cdn.example.com"] = ["127.0.0.1"]
    hosts["inward.example.com"] = ["127.0.0.1"]
    app.config["ALLOW_PRIVATE_URLS"] = "cdn.example.com"  # the first host is allowed by name, nothing else
    http_server.route("/secret", b"internal")
    http_server.route("/to-address", status=302, headers={"Location": f"http://127.0.0.1:{port}/secret"})
    http_server.route("/to-name", status=301, headers={"Location": f"http://inward.example.com:{port}/secret"})
    http_server.route("/to-metadata", status=302, headers={"Location": "http://169.254.169.254/latest/"})
    for path, needle in (("/to-address", "127.0.0.1 is a loopback address"),
                         ("/to-name", "inward.example.com resolves to 127.0.0.1"),
                         ("/to-metadata", "169.254.169.254 is a cloud metadata address")):
        with outbound_client(5.0) as client, pytest.raises(SourceError, match="not allowed") as raised:
            fetch_to_file(f"http://cdn.example.com:{port}{path}", tmp_path / "f.csv", client=client, timeout=5)
        assert needle in str(raised.value)
    assert [seen.path for seen in http_server.requests] == ["/to-address", "/to-name", "/to-metadata"]
    assert not (tmp_path / "f.csv").exists()


def test_a_proxied_request_is_checked_before_it_reaches_the_proxy(strict, http_server) -> None:  # noqa: ANN001
    transport = GuardedTransport(proxy=http_server.base_url, policy=lambda: NONE)
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError) as raised:
        client.get("http://10.0.0.9/admin")
    assert "10.0.0.9 is a private address" in refusal_of(raised.value)
    assert http_server.requests == []  # the proxy itself (on loopback) was never contacted


def test_the_guard_is_in_httpx_pool() -> None:
    """GuardedTransport swaps httpx's connection pool for one with the guarded backend: if an httpx release
    stops building `_pool`, this fails instead of the guard silently going away."""
    from webapp.services.platform.outbound_http import GuardedBackend

    transport = GuardedTransport(policy=lambda: NONE)
    assert isinstance(transport._inner._pool._network_backend, GuardedBackend)
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError):
        client.get("http://127.0.0.1:9/")


def test_other_libraries_resolve_only_allowed_addresses_inside_the_guard(http_server) -> None:  # noqa: ANN001
    http_server.route("/hook", b"ok")
    with guarded_sockets(NONE), pytest.raises(requests.ConnectionError, match="loopback"):
        requests.get(http_server.url("/hook"), timeout=5)
    with guarded_sockets(NONE), pytest.raises(socket.gaierror, match="dotted decimal"):
        socket.getaddrinfo("2130706433", 80)
    assert http_server.requests == []
    with guarded_sockets(parse_allow_list("127.0.0.1")):
        assert requests.get(http_server.url("/hook"), timeout=5).text == "ok"
    assert socket.getaddrinfo("127.0.0.1", 80)  # outside the block nothing is filtered


def test_api_urls_pointing_inward_are_422_naming_the_field(strict, api, hosts) -> None:  # noqa: ANN001
    hosts["hooks.example.com"] = ["10.1.2.3"]
    for body, path in (
        ({"name": "s", "kind": "csv", "location": "http://127.0.0.1:8000/export.csv"}, "location"),
        ({"name": "s", "kind": "csv", "location": "http://2130706433/export.csv"}, "location"),
    ):
        response = api.post("/api/v1/sources", json=body)
        assert response.status_code == 422, response.get_json()
        assert [e["path"] for e in response.get_json()["errors"]] == [path]
        assert "not allowed" in response.get_json()["errors"][0]["message"]
    klaviyo = api.post("/api/v1/destinations", json={"name": "k", "kind": "klaviyo",
                                                     "base_url": "http://169.254.169.254",
                                                     "credentials": {"api_key": "pk_test_1234"}})
    assert klaviyo.status_code == 422
    assert [(e["path"], "metadata" in e["message"]) for e in klaviyo.get_json()["errors"]] == [("base_url", True)]
    webhook = api.post("/api/v1/destinations", json={"name": "w", "kind": "webhook", "credentials": {
        "url": "https://hooks.example.com/in", "secret": "s3cret-value"}})
    assert webhook.status_code == 422
    assert [(e["path"], "hooks.example.com resolves to 10.1.2.3" in e["message"])
            for e in webhook.get_json()["errors"]] == [("credentials.url", True)]
    alert = api.post("/api/v1/alerts", json={"name": "a", "url": "json://[::1]:9000/notify"})
    assert alert.status_code == 422, alert.get_json()
    assert [e["path"] for e in alert.get_json()["errors"]] == ["url"]
    assert "loopback" in alert.get_json()["errors"][0]["message"]
    email = api.post("/api/v1/alerts", json={"name": "m", "url": "mailto://u:p@example.com?smtp=192.168.0.10"})
    assert email.status_code == 422 and "private" in email.get_json()["errors"][0]["message"]
    assert api.post("/api/v1/alerts", json={"name": "ok", "url": "json://hooks.example.org/notify"}).status_code == 201


def test_a_source_that_turns_inward_later_fails_its_sync_without_a_request(strict, hosts, http_server) -> None:  # noqa: ANN001
    from webapp.schemas.sources import SourceCreate
    from webapp.services.catalog.sources import create_source
    from webapp.services.catalog.sync import request_sync, run_sync

    port = int(http_server.base_url.rsplit(":", 1)[1])
    http_server.route("/products.csv", b"id,title,link,price\n1,Mug,https://shop.test/1,9.99\n")
    source = create_source(SourceCreate(name="Later", kind="csv",
                                        location=f"http://feeds.shop-later.example:{port}/products.csv"))
    hosts["feeds.shop-later.example"] = ["127.0.0.1"]  # the DNS record changed after the URL was accepted
    run = run_sync(request_sync(source, enqueue=False).id)
    assert run.status == "failed"
    assert "feeds.shop-later.example resolves to 127.0.0.1, a loopback address" in run.error
    assert http_server.requests == []


def test_a_webhook_that_turns_inward_later_fails_the_attempt_with_the_reason(strict, db, api, hosts, http_server,
                                                                              worker) -> None:  # noqa: ANN001
    from webapp.models import DeliveryRequest, Event
    from workers.delivery.http_client import close_all

    port = int(http_server.base_url.rsplit(":", 1)[1])
    created = api.post("/api/v1/destinations", json={
        "name": "hook", "kind": "webhook", "events": ["placed_order"],
        "credentials": {"url": f"http://hooks.later.example:{port}/in", "secret": "s3cret-value"}})
    assert created.status_code == 201, created.get_json()
    hosts["hooks.later.example"] = ["127.0.0.1"]
    assert api.post("/api/v1/orders", json=make_order()).status_code == 202
    try:
        worker(["delivery"])
    finally:
        close_all()
    event = db.session.scalars(sa.select(Event)).one()
    assert event.state != "delivered"
    assert "not allowed: hooks.later.example resolves to 127.0.0.1" in (event.last_error or ""), event.last_error
    logged = db.session.scalars(sa.select(DeliveryRequest)).all()
    assert logged and all("not allowed" in (row.error or "") for row in logged)
    assert http_server.requests == []


def test_the_reasons_name_each_kind_of_address() -> None:
    reason = outbound_urls.inward_reason
    assert reason(ipaddress.ip_address("93.184.216.34")) is None
    assert reason(ipaddress.ip_address("100.100.100.200")) == "a cloud metadata address"
    assert reason(ipaddress.ip_address("192.0.0.192")) == "a cloud metadata address"
    assert reason(ipaddress.ip_address("::ffff:169.254.169.254")) == "a cloud metadata address"
    with pytest.raises(OutboundRefused, match="metadata"):
        allowed_addresses("metadata.google.internal", 80, NONE)


def _self_signed(tmp_path, name: str) -> tuple[str, str]:  # noqa: ANN001
    """A certificate for `name` (and its key), as files: the server's, and the only one the client trusts."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def test_https_through_the_checked_address_keeps_sni_and_verifies_the_name(app, hosts, tmp_path) -> None:  # noqa: ANN001
    """The socket goes to the checked address, TLS still says and verifies the URL's host name."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    cert, key = _self_signed(tmp_path, "shop.example.com")
    seen: dict[str, str | None] = {}
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server_context.sni_callback = lambda _sock, name, _ctx: seen.__setitem__("sni", name)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen["host"] = self.headers["Host"]
            body = b"secure"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        hosts["shop.example.com"] = ["127.0.0.1"]
        hosts["other.example.com"] = ["127.0.0.1"]
        client_context = ssl.create_default_context(cafile=cert)
        transport = GuardedTransport(verify=client_context)
        with httpx.Client(transport=transport, timeout=5) as client:
            assert client.get(f"https://shop.example.com:{port}/").text == "secure"
            assert seen == {"sni": "shop.example.com", "host": f"shop.example.com:{port}"}
            with pytest.raises(httpx.ConnectError, match="(?i)certificate|hostname"):
                client.get(f"https://other.example.com:{port}/")  # same address, name not on the certificate
    finally:
        server.shutdown()
        server.server_close()

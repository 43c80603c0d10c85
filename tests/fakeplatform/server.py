"""FakePlatform: one local HTTP server playing Klaviyo, Sendlane, eSputnik and a webhook receiver.

Each platform lives under its own path prefix (`/klaviyo`, `/sendlane`, `/esputnik`,
`/webhook/...`) so a destination's `base_url` can point at `fake.base_url(kind)`.
Every request is recorded; faults are applied before the platform answers.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

from tests.fakeplatform import esputnik, fake_controls, klaviyo, sendlane, webhook
from tests.fakeplatform.faults import FAIL, RATE_LIMIT, REJECT, TIMEOUT, Fault, Faults
from tests.fakeplatform.records import Incoming, Recorded, Reply
from tests.fakeplatform.state import PlatformState

PLATFORMS: dict[str, ModuleType] = {"klaviyo": klaviyo, "sendlane": sendlane, "esputnik": esputnik,
                                    "webhook": webhook}


class FakePlatform(PlatformState):
    """Start with `with FakePlatform() as fake:`; point destinations at `fake.base_url(kind)`."""

    def __init__(self, *, klaviyo_key: str = "pk_test", sendlane_token: str = "sl_api_test",
                 sendlane_integration_token: str = "3f0c6a52-7f6b-4c1e-9a55-5e0d1c2b7a10",
                 esputnik_key: str = "es_test", webhook_secret: str = "whsec_test",
                 webhook_tolerance: float = 300.0, klaviyo_min_revision: str = "2024-10-15",
                 keep_bodies: bool = True, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.klaviyo_key = klaviyo_key
        self.sendlane_token = sendlane_token
        self.sendlane_integration_token = sendlane_integration_token
        self.esputnik_key = esputnik_key
        self.webhook_secret = webhook_secret
        self.webhook_tolerance = webhook_tolerance
        self.klaviyo_min_revision = klaviyo_min_revision
        self.keep_bodies = keep_bodies  # False drops request bodies from `.requests` (benchmarks)
        self.faults = Faults(self.lock)
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakePlatform:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self._address, _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fakeplatform", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; a request sleeping for a timeout fault is woken so nothing hangs."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakePlatform:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakePlatform is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def base_url(self, kind: str) -> str:
        """Where a destination of that kind should send (webhook: a full receiver URL)."""
        if kind not in PLATFORMS:
            raise ValueError(f"unknown platform {kind!r}; one of {sorted(PLATFORMS)}")
        return f"{self.url}/webhook/receive" if kind == "webhook" else f"{self.url}/{kind}"

    def reset(self) -> None:
        """Forget requests and stored data, drop pending faults and auth failures, and settings back to defaults."""
        self.clear_state()
        self.faults.clear()
        self.set_klaviyo_job_polls(0)

    # --- faults --------------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 500, platform: str | None = None) -> None:
        """Answer the next n requests (of a platform, or any) with a server error."""
        self.faults.add(Fault(FAIL, _known(platform), remaining=n, status=status))

    def fail_for(self, seconds: float, status: int = 500, platform: str | None = None) -> None:
        """Answer every request for the next `seconds` with a server error (an outage)."""
        self.faults.add(Fault(FAIL, _known(platform), until=time.monotonic() + seconds, status=status))

    def rate_limit_next(self, n: int = 1, retry_after: float = 2, platform: str | None = None, *,
                        status: int = 429, header: bool = True) -> None:
        """Answer the next n requests with 429 (or `status`, e.g. 503) and Retry-After (none: `header=False`)."""
        self.faults.add(Fault(RATE_LIMIT, _known(platform), remaining=n, status=status, retry_after=retry_after,
                              header=header))

    def rate_limit_for(self, seconds: float, retry_after: float | None = None, platform: str | None = None, *,
                       status: int = 429, header: bool = True) -> None:
        """Answer every request for the next `seconds` with 429 (or `status`) and Retry-After: the time
        given, else the time left of the throttle (a real throttled account); `header=False` sends none."""
        self.faults.add(Fault(RATE_LIMIT, _known(platform), until=time.monotonic() + seconds, status=status,
                              retry_after=retry_after, header=header))

    def early_requests(self, grace: float = 0.0, platform: str | None = None) -> list[Recorded]:
        """Requests that arrived after a 429/503 with Retry-After was sent to their platform account and
        before that Retry-After expired. `grace` forgives those arriving within that many seconds of the
        answer (already in flight when it was sent)."""
        with self.lock:
            recorded = [r for r in self.requests if platform is None or r.platform == platform]
        windows = [(r.account, r.answered_at, r.answered_at + r.retry_after) for r in recorded
                   if r.status in (429, 503) and r.retry_after is not None]
        return [r for r in recorded
                if any(account == r.account and start + grace < r.at < end for account, start, end in windows)]

    def timeout_next(self, n: int = 1, delay: float = 5.0, platform: str | None = None) -> None:
        """Hold the next n requests for `delay` seconds, then process and answer them normally.

        Set delay above the client's timeout: the client gives up while the platform still
        accepts the request, the "unknown outcome" that de-duplication must absorb.
        """
        self.faults.add(Fault(TIMEOUT, _known(platform), remaining=n, delay=delay))

    def reject_next(self, n: int = 1, status: int = 400, detail: str = "Rejected by the fake platform.",
                    platform: str | None = None) -> None:
        """Answer the next n requests with a client error in the platform's error shape."""
        self.faults.add(Fault(REJECT, _known(platform), remaining=n, status=status, detail=detail))

    def set_auth_failure(self, platform: str, failing: bool = True) -> None:
        """Make a platform answer 401 to everything (a revoked key) until switched back."""
        self.faults.set_auth_failure(_known(platform) or platform, failing)

    # --- request handling ----------------------------------------------------------------------

    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes, arrived: float) -> Reply:
        """Record the request, apply a pending fault or let the platform answer."""
        path, _, query = target.partition("?")
        kind, _, rest = path.lstrip("/").partition("/")
        if kind == fake_controls.PREFIX:  # the fake's own controls (a fake running as its own process): not recorded
            return fake_controls.handle(self, method, rest, query, body)
        record = Recorded(kind, method, path, query, headers, body if self.keep_bodies else b"", arrived)
        with self.lock:
            self.requests.append(record)
        reply = self._answer(kind, Incoming(method, "/" + rest, query, headers, body), record)
        record.status = reply.status
        if reply.status in (429, 503):
            record.retry_after = _retry_after(reply)
        record.answered_at = time.time()
        return reply

    def _answer(self, kind: str, request: Incoming, record: Recorded) -> Reply:
        platform = PLATFORMS.get(kind)
        if platform is None:
            return Reply.json(404, {"error": f"no fake platform at /{kind}"})
        fault = self.faults.take(kind)
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == FAIL:
                return platform.error_reply(fault.status, "Internal error injected by the fake platform.")
            if fault.kind == RATE_LIMIT:
                return _throttled(platform, fault)
            if fault.kind == REJECT:
                return platform.error_reply(fault.status, fault.detail)
            self._stopping.wait(fault.delay)  # TIMEOUT: hold, then answer normally
        try:
            return platform.handle(request, self)
        except Exception:  # a bug in the fake: keep it visible to tests, answer like a platform would
            with self.lock:
                self.internal_errors.append(traceback.format_exc())
            return platform.error_reply(500, "Fake platform internal error (see fake.internal_errors).")


def _throttled(platform: ModuleType, fault: Fault) -> Reply:
    """A RATE_LIMIT fault's answer: the platform's 429 (or an error reply of `fault.status`), with or
    without Retry-After."""
    retry_after = fault.retry_after
    if retry_after is None:  # a time-bounded throttle says how long it has left
        retry_after = max(1.0, (fault.until or 0.0) - time.monotonic())
    if fault.status == 429:
        reply = platform.throttled_reply(retry_after)
    else:
        reply = platform.error_reply(fault.status, "Service unavailable, injected by the fake platform.")
        reply.headers["Retry-After"] = str(math.ceil(retry_after))
    if not fault.header:
        reply.headers.pop("Retry-After", None)
    return reply


def _retry_after(reply: Reply) -> float | None:
    value = next((v for k, v in reply.headers.items() if k.lower() == "retry-after"), None)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _known(platform: str | None) -> str | None:
    if platform is not None and platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; one of {sorted(PLATFORMS)}")
    return platform


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: FakePlatform) -> None:
        self.fake = fake
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (timeouts) are expected here; only print real surprises."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real platforms allow
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        arrived = time.time()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = self._read_chunked()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.fake.dispatch(self.command, self.path, headers, body, arrived)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            self.close_connection = True

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silent: per-request prints would dominate the benchmark."""

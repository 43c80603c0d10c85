"""Fixtures for alerts: a local Apprise `json://` receiver and a real SMTP server (aiosmtpd), channels pointed at
them through the real API, a registered scheduler, and one call that runs the cron's evaluation on a worker."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from rq.cron import CronScheduler

from tests.workers.conftest import fake, make_destination  # noqa: F401 - the fake platforms, for real pauses
from workers.queue import JOB_EVALUATE_ALERTS, enqueue


@dataclass
class Receiver:
    """What an Apprise json:// channel posts: {"title", "message", "type", ...}; answers `status`."""

    url: str = ""
    status: int = 200
    messages: list[dict[str, Any]] = field(default_factory=list)

    def titles(self) -> list[str]:
        return [message["title"] for message in self.messages]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        receiver = self.server.receiver
        if receiver.status < 300:
            receiver.messages.append(json.loads(body))
        self.send_response(receiver.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class signature
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = Receiver(url=f"json://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Mailbox:
    url: str = ""
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for message in self.messages]


@pytest.fixture()
def smtp() -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1; its mailto:// URL delivers to ops@example.com."""
    with socket.socket() as probe:  # aiosmtpd needs a port number up front
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox(url=f"mailto://127.0.0.1:{port}?from=alerts@example.com&to=ops@example.com&mode=insecure")
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture()
def make_channel(api):  # noqa: ANN001, ANN201
    def create(url: str, **extra: Any) -> dict[str, Any]:
        response = api.post("/api/v1/alerts", json={"name": extra.pop("name", "ops"), "url": url} | extra)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return create


@pytest.fixture()
def scheduler_alive(redis):  # noqa: ANN001, ANN201
    """A scheduler that beats, as `shoprelay scheduler` would (tests run none of their own)."""
    scheduler = CronScheduler(connection=redis, name="test-scheduler")
    scheduler.register_birth()
    scheduler.heartbeat()
    return scheduler


@pytest.fixture()
def work(worker):  # noqa: ANN001, ANN201
    """The suite's in-process worker (without RQ's pubsub listener)."""
    return worker


@pytest.fixture()
def tick(redis, work, scheduler_alive):  # noqa: ANN001, ANN201
    """One cron round: the scheduler's alerts job on the "alerts" queue, run by a worker with the sends it
    signals (a registered worker and a beating scheduler: no liveness incident)."""

    def run() -> None:
        scheduler_alive.heartbeat()
        enqueue(redis, "alerts", JOB_EVALUATE_ALERTS)
        work(["alerts"])

    return run

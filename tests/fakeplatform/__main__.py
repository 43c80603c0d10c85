"""Run the fake platforms as a process: `python -m tests.fakeplatform --port 8765`."""

from __future__ import annotations

import argparse
import contextlib
import gc
import signal
import threading
from typing import Any

from tests.fakeplatform import control
from tests.fakeplatform.records import Reply
from tests.fakeplatform.server import FakePlatform


class ProcessFakePlatform(FakePlatform):
    """The fake as its own long-running process (benchmarks): what it keeps only grows (every event it
    accepted, to de-duplicate like the platform), and the garbage collector's full passes walked all of it
    again during every request: a 1,000-event bulk request took 81 ms at the start of a 100-request run and
    ~150 ms at its end. Freezing what is kept after each request keeps the answer time flat, as a real
    platform's is; refcounting still frees everything as before.

    Tests in other processes steer it through `/_control/` (tests/fakeplatform/control.py); every answer
    that carried Retry-After is kept as (platform, arrival time, seconds) to check that nobody called early."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.throttles: list[tuple[str, float, float]] = []

    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes, arrived: float) -> Reply:
        if target.startswith(control.PREFIX):
            return control.answer(self, method, target, body)
        reply = super().dispatch(method, target, headers, body, arrived)
        retry_after = reply.headers.get("Retry-After")
        if retry_after is not None:
            with self.lock:
                self.throttles.append((target.lstrip("/").partition("/")[0], arrived, float(retry_after)))
        gc.freeze()
        return reply


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakeplatform", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--klaviyo-key", default="pk_test")
    parser.add_argument("--sendlane-token", default="sl_api_test")
    parser.add_argument("--sendlane-integration-token", default="3f0c6a52-7f6b-4c1e-9a55-5e0d1c2b7a10")
    parser.add_argument("--esputnik-key", default="es_test")
    parser.add_argument("--webhook-secret", default="whsec_test")
    parser.add_argument("--no-bodies", action="store_true", help="do not keep request bodies (long runs)")
    args = parser.parse_args(argv)
    fake = ProcessFakePlatform(
        klaviyo_key=args.klaviyo_key, sendlane_token=args.sendlane_token,
        sendlane_integration_token=args.sendlane_integration_token, esputnik_key=args.esputnik_key,
        webhook_secret=args.webhook_secret, keep_bodies=not args.no_bodies, host=args.host, port=args.port,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with fake:
        print(fake.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()


if __name__ == "__main__":
    main()

"""The store's backend as a careful integration drives shoprelay: new orders singly and in batches, each
order's later states (fulfilled, cancelled, refunded) sent after the previous one was accepted, and every
call retried until it is accepted: on 503 (after its Retry-After), on 5xx and on connection errors.

Each HTTP attempt is kept as an `Answer`, so a test can say which answers the store should never have seen.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.factories import make_order

CALL_DEADLINE = 120.0  # one order call keeps retrying this long at most
ATTEMPT_TIMEOUT = 45.0  # one HTTP attempt (longer than a 30 s database lock wait, to see it)
LINES = ("SKU-A", "SKU-B")
# The states each order goes through, by its number modulo 4.
LIFECYCLES = (("placed", "fulfilled"), ("placed", "fulfilled", "refunded"), ("placed", "cancelled"), ("placed",))
METRICS = {"placed": "Placed Order", "fulfilled": "Fulfilled Order", "cancelled": "Cancelled Order",
           "refunded": "Refunded Order"}
TIMES = {"fulfilled": "fulfilled_at", "cancelled": "cancelled_at", "refunded": "refunded_at"}


@dataclass(frozen=True)
class Answer:
    """One HTTP attempt: when, how long, its status (0: no answer) and Retry-After."""

    at: float
    seconds: float
    status: int
    retry_after: str | None
    orders: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def order_body(prefix: str, number: int, status: str) -> dict[str, Any]:
    """Order `number` in `status` (the canonical example with two lines and its own customer)."""
    order = make_order(id=f"{prefix}{number}", status=status)
    for line, sku in zip(order["items"], LINES, strict=True):
        line["sku"] = sku
    who = number % 60
    order["customer"] = order["customer"] | {"id": f"{prefix}c{who}", "email": f"{prefix.lower()}{who}@example.com",
                                             "phone": None}
    lifecycle = LIFECYCLES[number % len(LIFECYCLES)]
    for reached in lifecycle[1:lifecycle.index(status) + 1]:
        order[TIMES[reached]] = "2026-11-21T09:00:00Z"
    if status == "refunded":
        order["refunded_amount"] = order["total"]
    return order


def expected_events(prefix: str, numbers: list[int]) -> Counter[tuple[str, str, str]]:
    """(platform, metric, unique id) → 1 for every event Klaviyo must end up with for these orders."""
    expected: Counter[tuple[str, str, str]] = Counter()
    for number in numbers:
        oid = f"{prefix}{number}"
        for status in LIFECYCLES[number % len(LIFECYCLES)]:
            expected["klaviyo", METRICS[status], oid] += 1
            if status == "placed":
                for sku in LINES:
                    expected["klaviyo", "Ordered Product", f"{oid}:{sku}"] += 1
    return expected


@dataclass
class _Pending:
    number: int
    step: int  # index of the next state in its lifecycle
    due: float


@dataclass
class Store:
    """Two sender threads (singles, batches) posting to `web_url` until `stop()`; then each order's
    remaining states are sent at once, so every order ends in its final state."""

    web_url: str
    api_key: str
    prefix: str
    single_rate: float = 4.0        # new single orders per second
    batch_size: int = 20
    batch_every: float = 1.5        # seconds between batches
    update_after: float = 2.0       # an order's next state follows this long after the previous one
    answers: list[Answer] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    batch_in_flight: threading.Event = field(default_factory=threading.Event)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._next = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(batched,), name=f"store-{kind}", daemon=True)
                         for batched, kind in ((False, "singles"), (True, "batches"))]

    def start(self) -> Store:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 240) -> None:
        """Stop creating orders, finish every order's lifecycle, wait for both threads (bounded)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        assert not alive, f"the store's senders did not finish within {timeout:.0f} s: {alive}"
        assert not self.failures, self.failures

    # --- the senders ---------------------------------------------------------------------------

    def _new_numbers(self, count: int) -> list[int]:
        with self._lock:
            numbers = list(range(self._next, self._next + count))
            self._next += count
        return numbers

    def _run(self, batched: bool) -> None:
        pending: list[_Pending] = []
        try:
            with httpx.Client(base_url=self.web_url, timeout=ATTEMPT_TIMEOUT,
                              headers={"Authorization": f"Bearer {self.api_key}"}) as client:
                pace = self.batch_every if batched else 1 / self.single_rate
                while not self._stop.is_set():
                    started = time.monotonic()
                    numbers = self._new_numbers(self.batch_size if batched else 1)
                    self._send(client, [(n, 0) for n in numbers], batched)
                    pending += [_Pending(n, 1, time.monotonic() + self.update_after) for n in numbers]
                    pending = self._send_due(client, pending, batched, time.monotonic())
                    self._stop.wait(max(0.0, pace - (time.monotonic() - started)))
                while pending:  # the rest of every lifecycle, one state per order per round
                    pending = self._send_due(client, pending, batched, float("inf"))
        except Exception as exc:  # noqa: BLE001 - reported by stop()
            self.failures.append(f"{'batches' if batched else 'singles'}: {exc!r}")

    def _send_due(self, client: httpx.Client, pending: list[_Pending], batched: bool, now: float) -> list[_Pending]:
        due = [p for p in pending if p.due <= now and p.step < len(LIFECYCLES[p.number % len(LIFECYCLES)])]
        rest = [p for p in pending if p not in due and p.step < len(LIFECYCLES[p.number % len(LIFECYCLES)])]
        if not due:
            return rest
        chunks = [due] if batched else [[p] for p in due]
        for chunk in chunks:
            self._send(client, [(p.number, p.step) for p in chunk], batched)
        later = time.monotonic() + self.update_after
        return rest + [_Pending(p.number, p.step + 1, later) for p in due
                       if p.step + 1 < len(LIFECYCLES[p.number % len(LIFECYCLES)])]

    def _send(self, client: httpx.Client, items: list[tuple[int, int]], batched: bool) -> None:
        orders = [order_body(self.prefix, n, LIFECYCLES[n % len(LIFECYCLES)][step]) for n, step in items]
        body: Any = {"orders": orders} if batched else copy.deepcopy(orders[0])
        self.post(client, body, len(orders), batched)
        with self._lock:
            self.numbers += [n for n, step in items if step == 0]

    def post(self, client: httpx.Client, body: Any, count: int, batched: bool) -> None:
        """POST /api/v1/orders until accepted; Retry-After honoured; every attempt kept."""
        deadline = time.monotonic() + CALL_DEADLINE
        backoff = 0.25
        while True:
            started = time.monotonic()
            if batched:
                self.batch_in_flight.set()
            try:
                response = client.post("/api/v1/orders", json=body)
                status, retry_after, error = response.status_code, response.headers.get("Retry-After"), ""
                if not 200 <= status < 300 and status < 500:
                    raise AssertionError(f"{status} for a valid order call: {response.text[:500]}")
                if status >= 500:
                    error = response.text[:300]
            except httpx.HTTPError as exc:
                status, retry_after, error = 0, None, repr(exc)
            finally:
                self.batch_in_flight.clear()
            self.answers.append(Answer(time.time(), time.monotonic() - started, status, retry_after, count, error))
            if 200 <= status < 300:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"an order call was not accepted within {CALL_DEADLINE:.0f} s: {error}")
            wait = _seconds(retry_after) if retry_after else backoff
            backoff = min(backoff * 2, 2.0)
            time.sleep(wait)

    # --- what was sent ---------------------------------------------------------------------------

    def expected(self) -> Counter[tuple[str, str, str]]:
        return expected_events(self.prefix, sorted(set(self.numbers)))


def _seconds(value: str) -> float:
    try:
        return max(0.0, min(float(value), 30.0))
    except ValueError:
        return 1.0

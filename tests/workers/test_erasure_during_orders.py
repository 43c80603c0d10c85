"""An erasure while the same person keeps buying: real `shoprelay web` and two `shoprelay worker` processes, the
fake platforms, on SQLite and PostgreSQL.

The person has thousands of orders (dozens of chunks of 200, resumed from the row's cursor). An order of theirs
is in flight when the erasure is asked for; while the job works through the chunks, a thread posts new orders,
checkouts, onsite identify and page views for the same address, re-sends old orders just ahead of the job's
cursor and an old checkout before the job reaches checkouts. What must hold afterwards:

- everything that arrived after the request belongs to a new contact, whole: not scrubbed by a later chunk,
  its events delivered to the platforms with the person's address, the new browser still remembered;
- nothing of the old person survives anywhere (every table, every column, as in test_erasure.py), and the
  address shows only on rows of the new contact;
- the order in flight lands wholly before the request (erased with the rest) or wholly after it (the new
  contact's), never an old contact's row with personal data left, nor a new contact's row scrubbed.

The thread records the erasure's progress around every call it makes, so the test fails when the calls did
not really overlap several chunks.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import REDIS_URL, both_databases
from tests.factories import make_order
from tests.processes import free_port, wait_until
from tests.reliability.stack import REPO, Child
from webapp.models import Base, Checkout, Contact, DeliveryAttempt, Erasure, Event, Order
from webapp.services.contacts import erasure as erasures
from webapp.services.contacts.erasure_steps import CHUNK

pytestmark = [pytest.mark.slow, both_databases]

EMAIL = "canary.overlap@example.org"
OLD_ORDERS = 2400  # 12 chunks of orders, 24 of their events: seconds of work for the job
OLD_CHECKOUTS = 3
OTHERS_IN_FLIGHT = 400  # other customers' orders in the batch that carries the order in flight
ONSITE = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0",
          "Origin": "https://shop.example"}  # what a shopper's browser sends to /t/collect


@dataclass(frozen=True)
class Person:
    customer_id: str
    phone: str | None
    first_name: str
    last_name: str
    street: str

    def customer(self) -> dict[str, Any]:
        return {"id": self.customer_id, "email": EMAIL, "phone": self.phone, "first_name": self.first_name,
                "last_name": self.last_name, "accepts_marketing": True}

    def markers(self) -> tuple[str, ...]:
        digits = (self.phone or "")[2:]
        return tuple(v for v in (self.customer_id, self.phone, digits, self.first_name, self.last_name, self.street)
                     if v)


OLD = Person("cust-old-canary", "+16502530000", "Zebedee", "Quagmire", "42 Zebedee Row")
IN_FLIGHT = Person("cust-inflight-3", None, "Ingmar", "Transitory", "9 Transit Way")
NEW = Person("cust-new-7", "+16502539876", "Nadia", "Newcombe", "7 Fresh Lane")


def _order(order_id: str, person: Person, **overrides: Any) -> dict[str, Any]:
    order = make_order(id=order_id, **overrides)
    order["items"] = order["items"][:1]
    order["total"] = order["subtotal"] = order["items"][0]["total"]
    order["customer"] = person.customer()
    for address in (order["billing_address"], order["shipping_address"]):
        address.update(first_name=person.first_name, last_name=person.last_name, address1=person.street, phone=None)
    return order


def _checkout(checkout_id: str, person: Person) -> dict[str, Any]:
    return {"id": checkout_id, "started_at": "2026-11-20T10:00:00Z", "currency": "USD", "total": 9.99,
            "customer": person.customer(), "items": [{"name": "Mug", "quantity": 1, "price": 9.99}]}


def _other(number: int) -> dict[str, Any]:
    order = make_order(id=f"other-{number}")
    order["items"] = order["items"][:1]
    order["customer"] = {"id": f"c-other-{number}", "email": f"other{number}@example.com", "phone": None,
                         "first_name": "Other", "last_name": "Shopper", "accepts_marketing": False}
    return order


# --- the processes -----------------------------------------------------------------------------------------

class Processes:
    """`shoprelay web` and two `shoprelay worker` on the test's database, Redis and instance folder."""

    def __init__(self, app: Any, folder: Path) -> None:
        env = {key: value for key, value in os.environ.items()
               if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
        env |= {"DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": REDIS_URL,
                "SHOPRELAY_INSTANCE_PATH": app.instance_path, "SECRET_KEY": app.config["SECRET_KEY"],
                "SHOPRELAY_ENCRYPTION_KEY": app.config["ENCRYPTION_KEY"], "SHOPRELAY_LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(REPO)}
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        cli = [sys.executable, "-m", "webapp.cli"]
        # A worker on every queue takes delivery first, and a delivery job runs up to 30 s while orders keep
        # coming: the erasure would wait behind them. One worker for the default queue, one for delivery, as
        # a deployment with its own worker for long jobs runs.
        queues = {1: ["-q", "default"], 2: ["-q", "delivery"]}
        self.children = [Child("web", [*cli, "web", "--port", str(port)], env, folder / "web.log"),
                         *(Child(f"worker{n}", [*cli, "worker", *queues[n]], env, folder / f"worker{n}.log")
                           for n in (1, 2))]

    def start(self) -> None:
        from redis import Redis
        from rq import Worker

        for child in self.children:
            child.start()
        wait_until(lambda: _status(f"{self.url}/healthz") == 200, timeout=60)
        with Redis.from_url(REDIS_URL) as redis:
            wait_until(lambda: Worker.count(connection=redis) >= 2, timeout=60)

    def stop(self) -> None:
        for child in self.children:
            child.terminate()
        for child in self.children:
            child.stop()

    def logs(self) -> str:
        """The children's output and what Redis says about the queues (when the job did not run)."""
        from redis import Redis
        from rq import Queue, Worker

        with Redis.from_url(REDIS_URL) as redis:
            queues = {name: Queue(name, connection=redis).count for name in ("default", "delivery")}
            workers = [(w.name, w.get_state(), w.get_current_job_id()) for w in Worker.all(connection=redis)]
        tails = "\n".join(f"--- {child.name}\n{child.tail(2000)}" for child in self.children)
        return f"queues {queues}, workers {workers}\n{tails}"


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


@pytest.fixture()
def processes(app, tmp_path):  # noqa: ANN001, ANN201
    running = Processes(app, tmp_path / "logs")
    try:
        yield running
    finally:
        running.stop()


# --- the store, calling while the erasure runs -----------------------------------------------------------

@dataclass
class Call:
    """One call the store made while the erasure ran, with the erasure's progress just before and after."""

    kind: str
    ref: str
    status: int
    body: Any
    before: dict[str, Any]
    after: dict[str, Any]
    seconds: float = 0.0
    busy: int = 0  # 503 answers before it went in


@dataclass
class Store:
    url: str
    key: str
    engine: sa.Engine
    erasure_id: str = ""
    calls: list[Call] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def progress(self) -> dict[str, Any]:
        table = Erasure.__table__
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(table.c.status, table.c.phase, table.c.cursor, table.c.done,
                                               table.c.total, table.c.local_done_at, table.c.contact_ids)
                                     .where(table.c.id == self.erasure_id)).mappings().one()
        return dict(row)

    def call(self, client: httpx.Client, kind: str, ref: str, path: str, body: dict[str, Any],
             headers: dict[str, str] | None = None) -> Call:
        headers = headers or {"Authorization": f"Bearer {self.key}"}
        before = self.progress()
        began, busy = time.monotonic(), 0
        for _ in range(20):  # 503 (the database busy past the wait): nothing stored, send again
            response = client.post(f"{self.url}{path}", json=body, headers=headers, timeout=30)
            if response.status_code != 503:
                break
            busy += 1
            time.sleep(float(response.headers.get("Retry-After", "1")))
        made = Call(kind, ref, response.status_code, response.json() if response.content else None, before,
                    self.progress(), time.monotonic() - began, busy)
        self.calls.append(made)
        if response.status_code not in (200, 201, 202):
            self.errors.append(f"{kind} {ref}: {response.status_code} {response.text[:300]}")
        return made

    def old_order_ahead(self) -> str | None:
        """An old order the job has not reached yet (a little past its cursor), while it works on orders."""
        state = self.progress()
        if state["phase"] != "orders" or not state["contact_ids"]:
            return None
        with self.engine.connect() as connection:
            return connection.execute(sa.select(Order.external_id).where(
                Order.contact_id.in_(state["contact_ids"]), Order.id > state["cursor"],
                Order.external_id.like("old-%")).order_by(Order.id).offset(120).limit(1)).scalar()

    def run(self, deadline: float) -> None:
        """Until the job has cleaned everything local (or the deadline): the person keeps buying."""
        try:
            with httpx.Client() as client:
                self.call(client, "identify", "browser-new", "/t/collect", {
                    "event": "identify", "anonymous_id": "browser-new-1", "email": EMAIL,
                    "customer_id": NEW.customer_id}, ONSITE)
                self.call(client, "onsite", "browser-new", "/t/collect", {
                    "event": "viewed_product", "anonymous_id": "browser-new-1", "url": "https://shop.example/p/1",
                    "properties": {"product": {"id": "1111", "name": "Winnie the Pooh"}}}, ONSITE)
                self.call(client, "onsite", "browser-old", "/t/collect", {
                    "event": "viewed_product", "anonymous_id": "browser-old-1", "url": "https://shop.example/p/2"},
                    ONSITE)
                self.call(client, "checkout", "co-old-0", "/api/v1/checkouts", _checkout("co-old-0", NEW))
                number = 0
                while time.monotonic() < deadline and self.progress()["local_done_at"] is None:
                    self.call(client, "order", f"new-{number}", "/api/v1/orders", _order(f"new-{number}", NEW))
                    ahead = self.old_order_ahead()
                    if ahead is not None:
                        self.call(client, "resend", ahead, "/api/v1/orders", _order(
                            ahead, NEW, status="fulfilled", fulfilled_at="2026-11-22T10:00:00Z"))
                    if number % 4 == 0:
                        self.call(client, "checkout", f"co-new-{number}", "/api/v1/checkouts",
                                  _checkout(f"co-new-{number}", NEW))
                    number += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test, with what the thread had done
            self.errors.append(f"{type(exc).__name__}: {exc}")


# --- what the database holds ---------------------------------------------------------------------------

def _mentions(engine: sa.Engine, needles: tuple[str, ...]) -> list[tuple[str, dict[str, Any], str]]:
    """Every row of every table where one of the needles shows (any column, as text, case-insensitive)."""
    found = []
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(sa.select(table)).mappings():
                text = " ".join(str(value) for value in row.values()).lower()
                found += [(table.name, dict(row), needle) for needle in needles if needle.lower() in text]
    return found


def _not_the_newcomers(engine: sa.Engine, mentions: list[tuple[str, dict[str, Any], str]], newcomer: int,
                       asked_at: Any) -> list[str]:
    """Mentions on rows that are not the new contact's: the contact itself, its orders, checkouts and events,
    events of no contact written after the request, and the logs of delivering those events."""
    with engine.connect() as connection:
        events = connection.execute(sa.select(Event.id, Event.contact_id, Event.created_at)).all()
        attempts = connection.execute(sa.select(DeliveryAttempt.event_id, DeliveryAttempt.request_id)).all()
    new_events = {row.id for row in events if row.contact_id == newcomer or
                  (row.contact_id is None and row.created_at > asked_at)}
    new_requests = {row.request_id for row in attempts if row.event_id in new_events}

    def theirs(table: str, row: dict[str, Any]) -> bool:
        if table == "contacts":
            return row["id"] == newcomer
        if table in ("orders", "checkouts"):
            return row["contact_id"] == newcomer
        if table == "events":
            return row["id"] in new_events
        if table == "delivery_attempts":
            return row["event_id"] in new_events
        if table == "delivery_requests":
            return row["id"] in new_requests
        return False

    return [f"{table} #{row.get('id')}: {needle}" for table, row, needle in mentions if not theirs(table, row)]


def _trace(calls: list[Call]) -> str:
    """The calls with the erasure's progress around each (phase@cursor/done), for a failure's message."""
    def at(progress: dict[str, Any]) -> str:
        return "done" if progress["local_done_at"] else f"{progress['phase']}@{progress['cursor']}/{progress['done']}"

    return "\n".join(f"{c.kind} {c.ref}: {c.status} in {c.seconds:.2f} s ({c.busy} busy), "
                     f"{at(c.before)} -> {at(c.after)}" for c in calls)


def _settled(engine: sa.Engine) -> bool:
    with engine.connect() as connection:
        return not connection.scalar(sa.select(sa.func.count()).select_from(Event).where(
            Event.state.in_(("pending", "in_flight", "retrying"))))


# --- the test ------------------------------------------------------------------------------------------

def test_orders_during_an_erasure_start_a_new_contact_and_nothing_of_the_old_person_survives(
        app, api, api_key, db, fake, make_destination, worker, redis, processes) -> None:
    make_destination("klaviyo")
    for start in range(0, OLD_ORDERS, 800):  # the person's history, delivered before anything else happens
        batch = [_order(f"old-{n}", OLD) for n in range(start, min(OLD_ORDERS, start + 800))]
        assert api.post("/api/v1/orders", json={"orders": batch}).status_code == 202
    for number in range(OLD_CHECKOUTS):
        assert api.post("/api/v1/checkouts", json=_checkout(f"co-old-{number}", OLD)).status_code == 202
    identified = api.post("/t/collect", headers=ONSITE, json={"event": "identify", "anonymous_id": "browser-old-1",
                                                              "email": EMAIL, "customer_id": OLD.customer_id})
    assert identified.status_code == 202, identified.get_json()
    worker(["delivery"])
    make_destination("webhook", events=["placed_order", "fulfilled_order", "started_checkout", "viewed_product"],
                     rate_limits={"burst_per_second": 1000, "per_minute": 60000})  # the fake takes it all
    assert redis.exists("shoprelay:onsite:anon:browser-old-1")
    processes.start()
    store = Store(processes.url, api_key, db.engine)
    auth = {"Authorization": f"Bearer {api_key}"}

    # An order of the person in flight (in a batch that takes a while) when the erasure is asked for.
    in_flight: dict[str, Any] = {}

    def post_in_flight() -> None:
        batch = [_other(n) for n in range(OTHERS_IN_FLIGHT)]
        batch.insert(OTHERS_IN_FLIGHT // 2, _order("inflight-1", IN_FLIGHT))
        in_flight["sent"] = time.monotonic()
        response = httpx.post(f"{processes.url}/api/v1/orders", json={"orders": batch}, headers=auth, timeout=60)
        in_flight["answered"], in_flight["status"] = time.monotonic(), response.status_code

    flying = threading.Thread(target=post_in_flight)
    flying.start()
    wait_until(lambda: "sent" in in_flight, timeout=10)
    time.sleep(0.1)
    delete_sent = time.monotonic()
    for _ in range(20):
        response = httpx.delete(f"{processes.url}/api/v1/contacts/{EMAIL}", headers=auth, timeout=60)
        if response.status_code != 503:
            break
        time.sleep(float(response.headers.get("Retry-After", "1")))
    assert response.status_code == 202, response.text
    store.erasure_id = response.json()["id"]
    caller = threading.Thread(target=store.run, args=(time.monotonic() + 40,))
    caller.start()
    caller.join(timeout=60)
    flying.join(timeout=60)
    assert not store.errors, (store.errors, processes.logs())
    assert in_flight["status"] == 202
    assert in_flight["sent"] < delete_sent < in_flight["answered"], ("the batch was not in flight", in_flight)

    # The calls overlapped the job: accepted while it was mid-way, over several chunks, none kept waiting long.
    progress = store.progress()
    assert progress["local_done_at"] is not None, (progress, processes.logs())
    overlapped = [c for c in store.calls if c.before["status"] == "running" and c.after["local_done_at"] is None
                  and (c.before["phase"], c.before["cursor"]) != ("orders", 0)]
    assert len(overlapped) >= 5, _trace(store.calls)
    assert len({(c.before["phase"], c.before["cursor"]) for c in overlapped}) >= 3, _trace(store.calls)
    assert any(c.kind == "resend" for c in overlapped), "no old order was re-sent ahead of the job's cursor"
    assert not any(c.busy for c in store.calls), _trace(store.calls)
    if db.engine.dialect.name == "sqlite":  # the write lock goes to the waiting calls between chunks (taken back
        # to back, one call waited through 12 chunks, and a bigger erasure would have had it answer 503)
        assert max(c.after["done"] - c.before["done"] for c in store.calls) <= 5 * CHUNK, _trace(store.calls)

    wait_until(lambda: _settled(db.engine), timeout=60)
    erasures.finish_ready()  # (the job settled it itself when the platforms had answered by its end)
    done = erasures.get_erasure(store.erasure_id)
    assert done.status == "succeeded", (done.error, done.counts)
    erased, asked_at = set(done.contact_ids), done.created_at

    # The new contact: everything that arrived after the request, whole and delivered.
    db.session.expire_all()
    newcomer = db.session.scalars(sa.select(Contact).where(Contact.email == EMAIL)).one()
    assert newcomer.id not in erased and newcomer.erased_at is None
    assert (newcomer.customer_id, newcomer.first_name, newcomer.phone) == (NEW.customer_id, NEW.first_name, NEW.phone)
    arrived = {c.ref for c in store.calls if c.kind in ("order", "resend")}
    resent = {c.ref for c in store.calls if c.kind == "resend"}
    orders = {o.external_id: o for o in db.session.scalars(sa.select(Order).where(Order.external_id.in_(arrived)))}
    assert set(orders) == arrived
    for order in orders.values():
        assert order.contact_id == newcomer.id and order.email == EMAIL, order.external_id
        assert order.data["customer"]["first_name"] == NEW.first_name, (order.external_id, order.data)
        assert order.data["billing_address"]["address1"] == NEW.street, (order.external_id, order.data)
        assert order.status == ("fulfilled" if order.external_id in resent else "placed")
    checkouts = {c.ref for c in store.calls if c.kind == "checkout"}
    found = db.session.scalars(sa.select(Checkout).where(Checkout.external_id.in_(checkouts))).all()
    assert {checkout.external_id for checkout in found} == checkouts
    for checkout in found:
        assert checkout.contact_id == newcomer.id and checkout.email == EMAIL, checkout.external_id
        assert checkout.data["customer"]["first_name"] == NEW.first_name, (checkout.external_id, checkout.data)
    new_events = db.session.scalars(sa.select(Event).where(Event.created_at > asked_at,
                                                           Event.name != "contact_erased")).all()
    order_ids = {order.id for order in orders.values()}
    theirs = [e for e in new_events if e.contact_id == newcomer.id or e.order_id in order_ids]
    assert theirs and all(e.state == "delivered" for e in theirs), {(e.name, e.state) for e in theirs}
    for event in theirs:
        assert event.payload["contact"].get("email") == EMAIL, (event.name, event.unique_id, event.payload)
    placed = {doc["id"]: doc for doc in fake.webhook_deliveries.values() if doc.get("event") == "placed_order"}
    for ref in arrived - resent:
        assert ref in placed, f"Placed Order of {ref} never reached the webhook"
        assert EMAIL in str(placed[ref]) and NEW.last_name in str(placed[ref])
    viewed = [e for e in new_events if e.name == "viewed_product"]
    assert viewed and all(e.payload["contact"].get("email") == EMAIL for e in viewed), [e.payload for e in viewed]
    assert redis.hget("shoprelay:onsite:anon:browser-new-1", "email") == EMAIL.encode()  # the new browser stays
    assert not redis.exists("shoprelay:onsite:anon:browser-old-1")  # the old one was forgotten at once
    old_view = next(c for c in store.calls if c.ref == "browser-old")
    assert old_view.body == {"result": "ignored: visitor not identified"}, old_view.body

    # The order in flight: wholly erased with the old person, or wholly the new contact's.
    flown = db.session.scalars(sa.select(Order).where(Order.external_id == "inflight-1")).one()
    flown_events = db.session.scalars(sa.select(Event).where(Event.order_id == flown.id)).all()
    if flown.contact_id in erased:
        assert flown.email is None and EMAIL not in str(flown.data)
        assert all(EMAIL not in str(e.payload) and IN_FLIGHT.last_name not in str(e.payload) for e in flown_events)
        allowed: tuple[str, ...] = ()
    else:
        assert flown.contact_id == newcomer.id and flown.email == EMAIL
        assert flown.data["customer"]["last_name"] == IN_FLIGHT.last_name
        assert all(e.state == "delivered" and e.payload["contact"]["email"] == EMAIL for e in flown_events)
        allowed = IN_FLIGHT.markers()
    summary = api.get(f"/api/v1/contacts/{EMAIL}").get_json()
    assert summary["customer_id"] == NEW.customer_id
    assert summary["ltv"][0]["orders"] == len(orders) + (flown.contact_id == newcomer.id)

    # Nothing of the old person anywhere; the address (and the in-flight order's values) only on the new contact.
    assert _mentions(db.engine, OLD.markers()) == []
    if not allowed:
        assert _mentions(db.engine, IN_FLIGHT.markers()) == []
    assert _not_the_newcomers(db.engine, _mentions(db.engine, (EMAIL, *allowed)), newcomer.id, asked_at) == []
    assert done.counts["orders"] + len(resent) >= OLD_ORDERS
    print(f"{len(store.calls)} calls, {len(overlapped)} while the erasure was mid-way (the longest waited "
          f"{max(c.seconds for c in store.calls):.2f} s, over {max(c.after['done'] - c.before['done'] for c in store.calls)}"
          f" rows of it); the order in flight landed {'before' if flown.contact_id in erased else 'after'} the request")

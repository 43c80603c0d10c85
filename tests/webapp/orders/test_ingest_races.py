"""Two ingests (or checkouts) at the same moment for the same customer or order: nothing fails or is lost.

One request ("first") is held at a chosen statement while a second runs; the held one goes on when the
second has finished or after a short wait (on SQLite, and on PostgreSQL when the second queues on a row
lock, the second cannot finish before the first commits).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.models import Checkout, Contact, ContactLtv, Event, Order
from webapp.schemas.canonical.checkouts import CanonicalCheckout
from webapp.schemas.canonical.orders import parse_orders_payload
from webapp.services.contacts.ltv import recompute_all
from webapp.services.orders.checkouts import record_checkout
from webapp.services.orders.ingest import ingest_orders

pytestmark = both_databases
HOLD_SECONDS = 2.0


def _race(app, db, first: dict, second: dict, hold_after: Callable[[str], bool],
          call: Callable[[dict], object] | None = None) -> dict[str, BaseException]:
    """Ingest `first` in one thread, held after its first statement matching `hold_after`, while
    `second` is ingested in another (or `call` each); returns the errors each raised."""
    call = call or (lambda order: ingest_orders(parse_orders_payload(order)))
    second_done = threading.Event()
    errors: dict[str, BaseException] = {}
    held = threading.Event()

    def hold(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        if threading.current_thread().name == "first" and not held.is_set() and hold_after(statement):
            held.set()
            second_done.wait(HOLD_SECONDS)

    def run(name: str, order: dict, done: threading.Event | None) -> None:
        try:
            with app.app_context():
                call(order)
                db.session.remove()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors[name] = error
        finally:
            if done is not None:
                done.set()

    sa.event.listen(db.engine, "after_cursor_execute", hold)
    try:
        first_thread = threading.Thread(target=run, args=("first", first, None), name="first")
        first_thread.start()
        assert held.wait(10), "the first ingest never reached the statement to hold at"
        second_thread = threading.Thread(target=run, args=("second", second, second_done), name="second")
        second_thread.start()
        second_thread.join(30)
        first_thread.join(30)
    finally:
        sa.event.remove(db.engine, "after_cursor_execute", hold)
    return errors


def _figures(db) -> tuple[int, int, float, int]:
    db.session.remove()
    contacts = db.session.scalar(sa.select(sa.func.count()).select_from(Contact))
    orders_count = db.session.scalar(sa.select(sa.func.sum(Contact.orders_count)))
    placed = db.session.scalar(sa.select(sa.func.sum(ContactLtv.placed)))
    events = db.session.scalar(sa.select(sa.func.count()).select_from(Event))
    return contacts, orders_count, float(placed or 0), events


def test_two_orders_creating_the_same_new_contact_both_land_on_one_contact(app, db):
    first, second = make_order(id="R1"), make_order(id="R2")
    errors = _race(app, db, first, second, lambda sql: sql.lstrip().upper().startswith("SELECT CONTACTS"))
    assert errors == {}
    contacts, orders_count, placed, _ = _figures(db)
    assert (contacts, orders_count) == (1, 2)
    assert placed == pytest.approx(first["total"] + second["total"])


def test_a_concurrent_order_for_a_known_contact_is_not_lost_from_its_ltv(app, db):
    ingest_orders(parse_orders_payload(make_order(id="R0")))
    db.session.remove()
    first, second = make_order(id="R1"), make_order(id="R2")
    # Held after reading the stored LTV: without a lock the second request would write its figures
    # now, and the first would then overwrite them with figures that miss the second order.
    errors = _race(app, db, first, second, lambda sql: "FROM contact_ltv" in sql)
    assert errors == {}
    contacts, orders_count, placed, _ = _figures(db)
    assert (contacts, orders_count) == (1, 3)
    assert placed == pytest.approx(3 * first["total"])
    before = _figures(db)
    recompute_all()
    db.session.commit()
    assert _figures(db) == before


def test_the_same_new_order_sent_twice_at_once_is_stored_once(app, db):
    order = make_order(id="R9")
    errors = _race(app, db, order, order, lambda sql: sql.lstrip().upper().startswith("SELECT CONTACTS"))
    assert errors == {}
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 1
    contacts, orders_count, placed, _ = _figures(db)
    assert (contacts, orders_count, placed) == (1, 1, pytest.approx(order["total"]))


def test_the_same_new_checkout_from_a_new_customer_sent_twice_at_once_is_stored_once(app, db):
    checkout = {"id": "co-race", "started_at": "2026-11-20T10:00:00+00:00", "currency": "USD", "total": 20,
                "checkout_url": "https://s.example/checkout/1", "customer": {"email": "new@example.com"},
                "items": [{"name": "Mug", "quantity": 2, "price": 10}]}
    errors = _race(app, db, checkout, checkout,
                   lambda sql: sql.lstrip().upper().startswith("SELECT CONTACTS"),
                   call=lambda body: record_checkout(CanonicalCheckout.model_validate(body)))
    assert errors == {}
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Checkout)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 1

"""Set-based batch ingest gives what ingesting the orders one by one gives: contacts, merges, LTV, events."""

import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.models import Contact, ContactLtv, Destination, Event, Order, OrderLine
from webapp.schemas.canonical.orders import parse_orders_payload
from webapp.services.contacts.ltv import recompute_all
from webapp.services.orders.ingest import ingest_orders

pytestmark = both_databases


def _ingest(*orders):
    """Through the import path's entry point (no duplicate-id check), one call = one batch."""
    parsed = [parse_orders_payload(order)[0] for order in orders]
    return ingest_orders(parsed)


def _webhook(db):
    db.session.add(Destination(name="hook", kind="webhook", credentials_encrypted="x", mode="realtime",
                               enabled=True))
    db.session.commit()


def _ltv(db):
    return sorted((row.contact_id, row.currency, row.placed, row.cancelled, row.refunded, row.orders,
                   row.fulfilled_orders, row.fulfilled_value)
                  for row in db.session.scalars(sa.select(ContactLtv)).all())


def _summaries(db):
    return [(c.id, c.merged_into_id, c.orders_count, c.ltv_primary, c.ltv_primary_currency, c.first_order_at,
             c.last_order_at, c.avg_days_between_orders)
            for c in db.session.scalars(sa.select(Contact).order_by(Contact.id))]


def _assert_recompute_matches(db):
    incremental, summaries = _ltv(db), _summaries(db)
    recompute_all()
    assert _ltv(db) == incremental
    assert [s for s in _summaries(db) if s[1] is None] == [s for s in summaries if s[1] is None]


def test_two_orders_of_one_new_contact_make_one_contact(app, db):
    _webhook(db)
    results = _ingest(make_order(id="1", total=10, customer={"email": "new@example.com", "first_name": "Ann"}),
                      make_order(id="2", total=20, placed_at="2026-11-22T10:15:00Z",
                                 customer={"email": "new@example.com", "first_name": "Ann"}))
    contact = db.session.scalars(sa.select(Contact)).one()
    assert contact.orders_count == 2 and contact.ltv_primary == 30
    assert contact.first_order_at.isoformat().startswith("2026-11-20")
    assert contact.avg_days_between_orders == 2.0
    assert {o.contact_id for o in db.session.scalars(sa.select(Order))} == {contact.id}
    # The profile event goes out with the first order only: the second changes nothing about the person.
    assert "profile_upsert" in results[0].events and "profile_upsert" not in results[1].events
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)
                             .where(Event.name == "profile_upsert")) == 1
    _assert_recompute_matches(db)


def test_a_later_order_in_the_batch_links_two_existing_contacts(app, db):
    _ingest(make_order(id="1", total=10, customer={"id": "c-1"}),
            make_order(id="2", total=20, customer={"email": "b@example.com"}))
    results = _ingest(make_order(id="3", total=5, customer={"id": "c-1"}),
                      make_order(id="4", total=7, customer={"id": "c-1", "email": "b@example.com"}),
                      make_order(id="5", total=1, customer={"email": "b@example.com"}))
    assert [r.created for r in results] == [True, True, True]
    live = db.session.scalars(sa.select(Contact).where(Contact.merged_into_id.is_(None))).all()
    assert len(live) == 1 and live[0].customer_id == "c-1" and live[0].email == "b@example.com"
    assert {o.contact_id for o in db.session.scalars(sa.select(Order))} == {live[0].id}
    ltv_row = db.session.scalars(sa.select(ContactLtv)).one()
    assert ltv_row.orders == 5 and ltv_row.placed == 43
    merged = db.session.scalars(sa.select(Contact).where(Contact.merged_into_id.is_not(None))).one()
    assert merged.orders_count == 0
    _assert_recompute_matches(db)


def test_new_contacts_linked_within_one_batch(app, db):
    _ingest(make_order(id="1", total=10, customer={"id": "c-1"}),
            make_order(id="2", total=20, customer={"email": "b@example.com"}),
            make_order(id="3", total=30, customer={"id": "c-1", "email": "b@example.com"}))
    live = db.session.scalars(sa.select(Contact).where(Contact.merged_into_id.is_(None))).all()
    assert len(live) == 1 and live[0].orders_count == 3
    assert {o.contact_id for o in db.session.scalars(sa.select(Order))} == {live[0].id}
    _assert_recompute_matches(db)


def test_the_same_order_twice_in_one_call_is_applied_in_order(app, db):
    _webhook(db)
    results = _ingest(make_order(id="1", total=10),
                      make_order(id="1", total=10, status="fulfilled", fulfilled_at="2026-11-21T00:00:00Z"))
    assert [(r.created, r.status) for r in results] == [(True, "placed"), (False, "fulfilled")]
    assert "placed_order" in results[0].events and results[1].events == ["fulfilled_order"]
    order = db.session.scalars(sa.select(Order)).one()
    assert [h["status"] for h in order.status_history] == ["placed", "fulfilled"]
    assert len(db.session.scalars(sa.select(OrderLine)).all()) == 2
    _assert_recompute_matches(db)


def test_batch_updates_move_orders_between_contacts_and_currencies(app, db):
    _ingest(make_order(id="1", total=10, customer={"email": "a@example.com"}),
            make_order(id="2", total=20, customer={"email": "a@example.com"}),
            make_order(id="3", total=30, status="pending", customer={"email": "c@example.com"}))
    results = _ingest(
        make_order(id="1", total=10, customer={"email": "b@example.com"}),  # moves to a new contact
        make_order(id="2", total=25, currency="EUR", customer={"email": "a@example.com"}),  # changes currency
        make_order(id="3", total=30, status="cancelled", cancelled_at="2026-11-22T00:00:00Z",
                   customer={"email": "c@example.com"}),
        make_order(id="4", total=5, status="placed", customer={"email": "a@example.com"}),
        make_order(id="2", total=25, currency="EUR", status="fulfilled", fulfilled_at="2026-11-23T00:00:00Z",
                   customer={"email": "a@example.com"}))
    assert [r.created for r in results] == [False, False, False, True, False]
    by_email = {c.email: c for c in db.session.scalars(sa.select(Contact))}
    assert by_email["a@example.com"].orders_count == 2 and by_email["b@example.com"].orders_count == 1
    assert by_email["c@example.com"].orders_count == 0
    _assert_recompute_matches(db)


def test_re_sending_a_batch_writes_nothing_new(app, db):
    _webhook(db)
    orders = [make_order(id=str(n), total=n + 1, customer={"email": f"p{n % 3}@example.com"}) for n in range(9)]
    _ingest(*orders)
    events = db.session.scalar(sa.select(sa.func.count()).select_from(Event))
    stamps = {o.id: o.updated_at for o in db.session.scalars(sa.select(Order))}
    lines = {line.id for line in db.session.scalars(sa.select(OrderLine))}
    results = _ingest(*orders)
    assert all(not r.created and r.events == [] for r in results)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == events
    db.session.expire_all()
    assert {o.id: o.updated_at for o in db.session.scalars(sa.select(Order))} == stamps
    assert {line.id for line in db.session.scalars(sa.select(OrderLine))} == lines
    _assert_recompute_matches(db)


def test_batch_and_one_by_one_agree(app, db):
    def orders(prefix):
        return [make_order(id=f"{prefix}{n}", total=10 + n, placed_at=f"2026-11-{10 + n:02d}T10:00:00Z",
                           status=["placed", "fulfilled", "pending"][n % 3],
                           fulfilled_at="2026-11-25T00:00:00Z" if n % 3 == 1 else None,
                           customer={"id": f"{prefix}c{n % 4}", "email": f"{prefix}{n % 3}@example.com"})
                for n in range(12)]

    batch = _ingest(*orders("a"))
    single = [_ingest(order)[0] for order in orders("b")]
    assert [(r.created, r.status, r.events, r.anomaly) for r in batch] == [
        (r.created, r.status, r.events, r.anomaly) for r in single]

    def shape(prefix):
        contacts = db.session.scalars(sa.select(Contact).where(Contact.email.startswith(prefix))
                                      .order_by(Contact.email)).all()
        return [(c.email.removeprefix(prefix), c.customer_id.removeprefix(prefix), c.orders_count, c.ltv_primary,
                 c.first_order_at, c.last_order_at, c.avg_days_between_orders,
                 sorted((r.currency, r.placed, r.orders, r.fulfilled_orders) for r in c.ltv)) for c in contacts]

    assert shape("a") == shape("b")
    _assert_recompute_matches(db)

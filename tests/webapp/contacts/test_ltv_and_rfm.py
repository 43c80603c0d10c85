"""LTV maintained on ingest equals LTV recomputed from orders; RFM quintiles and segments."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.models import Contact, ContactLtv
from webapp.schemas.canonical.orders import parse_orders_payload
from webapp.services.contacts.ltv import ltv_json, recompute_all
from webapp.services.contacts.rfm import live_rfm, quintile_scorer, refresh_rfm, segment_for
from webapp.services.orders.ingest import ingest_orders


def _ingest(*orders):
    return ingest_orders(parse_orders_payload({"orders": list(orders)}))


def _snapshot(db):
    return sorted((row.contact_id, row.currency, row.placed, row.cancelled, row.refunded, row.orders,
                   row.fulfilled_orders, row.fulfilled_value)
                  for row in db.session.scalars(sa.select(ContactLtv)).all())


@both_databases
def test_ltv_by_hand_with_partial_refunds_and_two_currencies(app, db):
    _ingest(make_order(id="1", total=100),
            make_order(id="2", total=60, status="fulfilled", fulfilled_at="2026-11-21T00:00:00Z"),
            make_order(id="3", total=80, status="partially_refunded", refunded_amount=20.5,
                       refunded_at="2026-11-22T00:00:00Z"),
            make_order(id="4", total=45, status="cancelled", cancelled_at="2026-11-21T00:00:00Z"),
            make_order(id="5", total=1000, currency="JPY"),
            make_order(id="6", total=10, status="pending"))
    # order 1 later refunded in full, order 2 partially refunded
    _ingest(make_order(id="1", total=100, status="refunded", refunded_at="2026-11-23T00:00:00Z"),
            make_order(id="2", total=60, status="partially_refunded", refunded_amount=10,
                       refunded_at="2026-11-23T00:00:00Z"))
    contact = db.session.scalars(sa.select(Contact)).one()
    usd, jpy = sorted(ltv_json(list(contact.ltv)), key=lambda e: e["currency"], reverse=True)
    # placed 100+60+80+45 = 285; cancelled 45; refunded 100 + 10 + 20.5 = 130.5; net 109.5
    assert usd == {"currency": "USD", "placed": 285.0, "cancelled": 45.0, "refunded": 130.5, "net": 109.5,
                   "orders": 3, "aov": 80.0}
    assert jpy["placed"] == 1000.0 and jpy["orders"] == 1 and jpy["aov"] == 1000.0
    assert contact.orders_count == 4
    assert contact.ltv_primary == Decimal("109.5")


@both_databases
def test_recompute_gives_identical_numbers(app, db):
    _ingest(make_order(id="1", total=10),
            make_order(id="2", total=20, customer={"email": "b@example.com"}),
            make_order(id="3", total=30, status="fulfilled", fulfilled_at="2026-11-21T00:00:00Z",
                       customer={"id": "c-9", "email": "c@example.com"}))
    _ingest(make_order(id="2", total=25, status="cancelled", cancelled_at="2026-11-22T00:00:00Z",
                       customer={"email": "b@example.com"}),
            make_order(id="4", total=5, customer={"id": "c-9", "email": "b@example.com"}))  # merges b into c-9
    incremental = _snapshot(db)
    summaries = [(c.id, c.orders_count, c.ltv_primary, c.first_order_at, c.last_order_at)
                 for c in db.session.scalars(sa.select(Contact).order_by(Contact.id))]
    recompute_all()
    assert _snapshot(db) == incremental
    assert [(c.id, c.orders_count, c.ltv_primary, c.first_order_at, c.last_order_at)
            for c in db.session.scalars(sa.select(Contact).order_by(Contact.id))] == summaries


def test_quintiles():
    score = quintile_scorer(list(range(1, 11)))
    assert [score(v) for v in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert quintile_scorer([7, 7, 7])(7) == 1  # a tie is not lifted into the top quintile
    most_once = quintile_scorer([1] * 80 + [2] * 15 + [5] * 5)
    assert (most_once(1), most_once(2), most_once(5)) == (1, 5, 5)


def test_segments_cover_every_score():
    names = {segment_for(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)}
    assert {"Champions", "Loyal", "At risk", "Hibernating", "New", "Lost"} <= names
    assert segment_for(5, 5, 5) == "Champions"
    assert segment_for(5, 1, 1) == "New"
    assert segment_for(1, 4, 2) == "At risk"


@both_databases
def test_refresh_rfm_scores_only_contacts_with_fulfilled_orders(app, db):
    now = datetime(2026, 11, 22, tzinfo=UTC)
    orders = []
    for i in range(10):
        placed = (now - timedelta(days=10 * i + 1)).isoformat()
        for n in range(i + 1):
            orders.append(make_order(id=f"{i}-{n}", placed_at=placed, status="fulfilled", total=10 * (i + 1),
                                     fulfilled_at=placed, customer={"email": f"c{i}@example.com"}))
    orders.append(make_order(id="x", customer={"email": "placed-only@example.com"}))
    _ingest(*orders)
    assert refresh_rfm(now) == 10
    by_email = {c.email: c for c in db.session.scalars(sa.select(Contact))}
    assert by_email["placed-only@example.com"].rfm_segment is None
    best, worst = by_email["c0@example.com"], by_email["c9@example.com"]
    assert (best.rfm_recency, best.rfm_frequency, best.rfm_monetary) == (5, 1, 1)
    assert (worst.rfm_recency, worst.rfm_frequency, worst.rfm_monetary) == (1, 5, 5)
    assert worst.rfm_segment == "Can't lose them"


@both_databases
def test_live_rfm_equals_refresh_and_only_changes_are_written(app, db):
    now = datetime(2026, 11, 22, tzinfo=UTC)
    orders = []
    for i in range(7):  # ties on purpose: contacts 2 and 3 have the same recency, 4 and 5 the same spend
        placed = (now - timedelta(days=5 * min(i, 3) + i % 2)).isoformat()
        for n in range(1 + i % 3):
            orders.append(make_order(id=f"{i}-{n}", placed_at=placed, status="fulfilled", total=15 + 5 * (i // 2),
                                     fulfilled_at=placed, customer={"email": f"c{i}@example.com"}))
    orders.append(make_order(id="r", placed_at=now.isoformat(), status="partially_refunded", total=90,
                             refunded_amount=30, refunded_at=now.isoformat(), customer={"email": "c6@example.com"}))
    _ingest(*orders)
    assert refresh_rfm(now) == 7
    contacts = db.session.scalars(sa.select(Contact).order_by(Contact.id)).all()
    for contact in contacts:
        assert live_rfm(contact.id) == (contact.rfm_recency, contact.rfm_frequency, contact.rfm_monetary,
                                        contact.rfm_segment)

    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        refresh_rfm(now)  # nothing changed: nothing is written
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert statements and not [s for s in statements if s.lstrip().upper().startswith("UPDATE")]


@both_databases
def test_contact_api_scores_rfm_live_without_waiting_for_the_nightly_refresh(app, db, api):
    placed = datetime(2026, 11, 20, tzinfo=UTC).isoformat()
    _ingest(make_order(id="1", status="fulfilled", placed_at=placed, fulfilled_at=placed,
                       customer={"email": "Ann@Example.com"}),
            make_order(id="2", customer={"email": "bob@example.com"}))
    body = api.get("/api/v1/contacts/ANN@example.com").get_json()
    assert body["email"] == "ann@example.com"
    assert body["rfm"] == {"recency": 1, "frequency": 1, "monetary": 1, "segment": "Lost"}
    assert api.get("/api/v1/contacts/bob@example.com").get_json()["rfm"] is None
    assert api.get("/api/v1/contacts/nobody@example.com").status_code == 404

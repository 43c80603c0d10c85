"""Contacts dashboard: list (search, segments, every sort, keyset pages), CSV export, RFM, contact page."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases, csrf_token
from tests.factories import make_order
from webapp.models import Contact
from webapp.services.contacts.export import HEADER, export_csv
from webapp.services.contacts.insights import (
    SUMMARY_KEY,
    compute_summary,
    ltv_distribution,
    ltv_over_time,
    primary_currency,
    rfm_grid,
    segment_counts,
    summary,
)
from webapp.services.contacts.queries import COLUMNS, ContactFilters, list_contacts

pytestmark = both_databases

HTMX = {"HX-Request": "true"}


def post_orders(api, orders: list[dict]) -> None:  # noqa: ANN001
    response = api.post("/api/v1/orders", json={"orders": orders})
    assert response.status_code == 202, response.get_json()


def customer(n: int, **extra) -> dict:  # noqa: ANN003
    return {"id": f"c-{n}", "email": f"person{n:02d}@example.com", "first_name": f"Pat{n % 4}",
            "last_name": f"Lee{n % 5}"} | extra


def _emails(html: str) -> list[str]:
    return re.findall(r'<td><a href="/contacts/\d+">([^<]+)</a></td>', html)


@pytest.fixture()
def customers(api) -> None:  # noqa: ANN001
    """Twelve customers with 1–3 fulfilled orders each, some in EUR as well."""
    orders = []
    for n in range(12):
        for k in range(1 + n % 3):
            orders.append(make_order(
                id=f"O{n}-{k}", customer=customer(n), total=10 * (n + 1) + k, status="fulfilled",
                placed_at=f"2026-0{1 + n % 9}-{10 + k:02d}T10:00:00Z", fulfilled_at="2026-10-01T00:00:00Z"))
        if n % 4 == 0:
            orders.append(make_order(id=f"E{n}", customer=customer(n), currency="EUR", total=5,
                                     placed_at="2026-10-02T10:00:00Z"))
    post_orders(api, orders)


def test_empty_contacts_page_says_where_contacts_come_from(logged_in):
    html = logged_in.get("/contacts/").get_data(as_text=True)
    assert "No contacts yet" in html and "POST /api/v1/orders" in html


def test_list_page_overview_and_rows_partial(logged_in, customers):
    token = csrf_token(logged_in, "/contacts/")
    assert logged_in.post("/contacts/rfm/refresh", data={"csrf_token": token}).status_code == 302
    html = logged_in.get("/contacts/").get_data(as_text=True)
    assert "RFM segments" in html and "R 4–5, F 4–5, M 4–5: bought recently, often, and spend the most" in html
    assert 'class="rfm-grid"' in html and "<svg" in html and "Lifetime value distribution" in html
    assert "<summary>Numbers</summary>" in html and "Refresh RFM" in html
    assert len(_emails(html)) == 12 and "Export CSV" in html
    # Highest LTV first by default: person11 has 3 orders worth 120+121+122.
    assert _emails(html)[0] == "person11@example.com"
    partial = logged_in.get("/contacts/?sort=email&dir=asc", headers=HTMX).get_data(as_text=True)
    assert "<html" not in partial and "RFM segments" not in partial and 'id="contact-rows"' in partial
    assert _emails(partial) == sorted(f"person{n:02d}@example.com" for n in range(12))
    assert 'aria-sort="ascending"' in partial


def test_refresh_rfm_scores_everyone_with_a_fulfilled_order(logged_in, customers, db):
    token = csrf_token(logged_in, "/contacts/")
    response = logged_in.post("/contacts/rfm/refresh", data={"csrf_token": token})
    assert response.status_code == 302
    assert "RFM scores refreshed for 12 contacts" in logged_in.get("/contacts/").get_data(as_text=True)
    segments = db.session.scalars(sa.select(Contact.rfm_segment)).all()
    assert all(segments) and rfm_grid().total == 12


def test_one_pass_summary_matches_the_separate_queries(logged_in, customers):
    token = csrf_token(logged_in, "/contacts/")
    logged_in.post("/contacts/rfm/refresh", data={"csrf_token": token})
    together = compute_summary()
    assert together.segments == segment_counts() and together.grid == rfm_grid() and together.grid.total == 12
    assert together.currency == primary_currency() == "USD" and together.buckets == ltv_distribution("USD")


def test_summary_is_cached_for_a_minute_and_dropped_on_rfm_refresh(logged_in, customers, db, redis, app):
    html = logged_in.get("/contacts/").get_data(as_text=True)
    assert "as of <time" in html and "the list below is live" in html
    assert 0 < redis.ttl(SUMMARY_KEY) <= 60
    assert summary().grid.total == 0  # nothing scored yet, and the cached copy says so
    contact = db.session.scalar(sa.select(Contact).where(Contact.email == "person02@example.com"))
    contact.rfm_segment, contact.rfm_recency, contact.rfm_frequency = "Champions", 5, 5
    db.session.commit()
    assert summary().grid.total == 0  # still the cached copy: at most a minute old
    token = csrf_token(logged_in, "/contacts/")
    logged_in.post("/contacts/rfm/refresh", data={"csrf_token": token})
    assert not redis.exists(SUMMARY_KEY)
    assert summary().grid.total == 12
    app.config["REDIS_URL"] = None  # no Redis: computed on every view
    assert summary().grid.total == 12


def test_search_segment_filter_and_merged_contacts_hidden(logged_in, customers, api, db):
    assert _emails(logged_in.get("/contacts/?q=PERSON03").get_data(as_text=True)) == ["person03@example.com"]
    by_name = _emails(logged_in.get("/contacts/?q=pat1 lee").get_data(as_text=True))
    assert sorted(by_name) == ["person01@example.com", "person05@example.com", "person09@example.com"]
    assert _emails(logged_in.get("/contacts/?q=lee4&sort=email&dir=asc").get_data(as_text=True)) == [
        "person04@example.com", "person09@example.com"]
    contact = db.session.scalar(sa.select(Contact).where(Contact.email == "person02@example.com"))
    contact.rfm_segment = "Champions"
    db.session.commit()
    assert _emails(logged_in.get("/contacts/?segment=Champions").get_data(as_text=True)) == [
        "person02@example.com"]
    merged = _merge_two_contacts(api, db)
    html = logged_in.get("/contacts/?q=merge").get_data(as_text=True)
    assert _emails(html) == ["merge-me@example.com"] and f'href="/contacts/{merged.id}"' not in html


def _merge_two_contacts(api, db) -> Contact:  # noqa: ANN001
    """An id-only and an email-only contact, then an order carrying both: the second merges into the first."""
    post_orders(api, [make_order(id="M1", customer={"id": "c-m", "first_name": "Merle"}),
                      make_order(id="M2", customer={"email": "merge-me@example.com"})])
    post_orders(api, [make_order(id="M3", customer={"id": "c-m", "email": "Merge-Me@example.com"})])
    return db.session.scalar(sa.select(Contact).where(Contact.merged_into_id.is_not(None)))


@pytest.mark.parametrize("column", list(COLUMNS))
@pytest.mark.parametrize("descending", [False, True])
def test_every_sort_pages_through_everyone_once_in_order(customers, db, column, descending):
    contact = db.session.scalar(sa.select(Contact).where(Contact.email == "person05@example.com"))
    contact.avg_days_between_orders, contact.rfm_segment = None, None  # NULLs sort last both ways
    db.session.commit()
    filters = ContactFilters(sort=column, descending=descending)
    everyone = [row[0].id for row in list_contacts(filters, limit=100).rows]
    seen, page = [], list_contacts(filters, limit=5)
    while True:
        seen += [row[0].id for row in page.rows]
        if not page.has_next:
            break
        page = list_contacts(filters, after=page.last_id, limit=5)
    assert seen == everyone and len(set(seen)) == 12
    back = list_contacts(filters, before=everyone[5], limit=5)
    assert [row[0].id for row in back.rows] == everyone[:5] and not back.has_prev
    rows = list_contacts(filters, limit=100).rows
    keys = [_sort_value(column, contact, aov) for contact, aov in rows]
    present = [k for k in keys if k is not None]
    assert present == sorted(present, reverse=descending)
    assert keys[len(present):] == [None] * (len(keys) - len(present))


def _sort_value(column: str, contact: Contact, aov: float | None):  # noqa: ANN202
    return {"email": contact.email, "name": contact.last_name, "orders": contact.orders_count,
            "first_order": contact.first_order_at, "last_order": contact.last_order_at,
            "ltv": contact.ltv_primary, "aov": aov, "avg_days": contact.avg_days_between_orders,
            "segment": contact.rfm_segment}[column]


def test_csv_export_has_one_row_per_contact_and_currency(logged_in, customers, api):
    post_orders(api, [make_order(id="X1", customer={"email": "=cmd@example.com", "first_name": "=HYPERLINK()"},
                                 total=7)])
    response = logged_in.get("/contacts/export.csv?q=person0")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 10 + 3  # person00..09, with EUR rows for 00, 04, 08
    zero = [row for row in rows if row["email"] == "person00@example.com"]
    assert [(r["currency"], r["placed"], r["net_ltv"], r["orders"], r["aov"]) for r in zero] == [
        ("EUR", "5.00", "5.00", "1", "5.00"), ("USD", "10.00", "10.00", "1", "10.00")]
    everything = list(csv.DictReader(io.StringIO(logged_in.get("/contacts/export.csv").get_data(as_text=True))))
    risky = next(row for row in everything if "cmd@" in row["email"])
    assert risky["email"] == "'=cmd@example.com" and risky["first_name"] == "'=HYPERLINK()"


def test_export_in_small_batches_gives_the_same_rows(logged_in, customers):
    whole = logged_in.get("/contacts/export.csv").get_data(as_text=True)
    batched = "".join(export_csv(ContactFilters(), batch=5))
    assert batched == whole
    rows = list(csv.reader(io.StringIO(whole)))
    assert rows[0] == list(HEADER) and len(rows) == 1 + 12 + 3
    assert len({tuple(row) for row in rows}) == len(rows)


def test_sort_links_flip_direction_and_keep_the_search(logged_in, customers):
    html = logged_in.get("/contacts/?q=person&sort=orders&dir=desc", headers=HTMX).get_data(as_text=True)
    assert 'href="/contacts/?q=person&amp;sort=orders&amp;dir=asc"' in html  # current column: flip
    assert 'href="/contacts/?q=person&amp;sort=email&amp;dir=asc"' in html  # another: its default
    assert 'name="sort" value="orders"' in html and 'form="contact-search"' in html


def test_ltv_distribution_buckets_primary_currency(customers):
    buckets = dict(ltv_distribution("USD"))
    assert sum(buckets.values()) == 12
    # person n holds orders of 10(n+1)+k for k < 1 + n % 3: nets 10, 41, 93, 40, 101, 183, 70, 161, ...
    expected: dict[str, int] = {}
    for n in range(12):
        net = sum(10 * (n + 1) + k for k in range(1 + n % 3))
        label = next(label for label, low, high in (("0–50", 0, 50), ("50–100", 50, 100), ("100–250", 100, 250),
                                                    ("250–500", 250, 500)) if low < net <= high)
        expected[label] = expected.get(label, 0) + 1
    assert {label: count for label, count in buckets.items() if count} == expected


def _contact_with_history(api, db) -> Contact:  # noqa: ANN001
    who = {"email": "hist@example.com", "first_name": "Hana", "accepts_marketing": True}
    post_orders(api, [
        make_order(id="H1", customer=who, total=100, placed_at="2026-01-01T10:00:00Z"),
        make_order(id="H2", customer=who, total=50, placed_at="2026-01-02T10:00:00Z", status="cancelled",
                   cancelled_at="2026-01-03T10:00:00Z"),
        make_order(id="H3", customer=who, total=80, placed_at="2026-01-04T10:00:00Z",
                   status="partially_refunded", refunded_amount=30, refunded_at="2026-01-05T10:00:00Z"),
        make_order(id="H4", customer=who, total=40, currency="EUR", placed_at="2026-01-02T12:00:00Z"),
    ])
    return db.session.scalar(sa.select(Contact).where(Contact.email == "hist@example.com"))


def test_ltv_over_time_hand_computed(api, db):
    contact = _contact_with_history(api, db)
    timeline = ltv_over_time(contact.id)
    assert [(c.order_id, c.kind, c.currency, c.amount, c.cumulative) for c in timeline.changes] == [
        ("H1", "placed", "USD", Decimal(100), Decimal(100)),
        ("H2", "placed", "USD", Decimal(50), Decimal(150)),
        ("H4", "placed", "EUR", Decimal(40), Decimal(40)),
        ("H2", "cancelled", "USD", Decimal(-50), Decimal(100)),
        ("H3", "placed", "USD", Decimal(80), Decimal(180)),
        ("H3", "refunded", "USD", Decimal(-30), Decimal(150)),
    ]
    assert timeline.changes[3].at == datetime(2026, 1, 3, 10, tzinfo=UTC)
    assert timeline.labels == ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]
    assert [(s.name, list(s.values)) for s in timeline.series] == [
        ("EUR", [0.0, 40.0, 40.0, 40.0, 40.0]), ("USD", [100.0, 150.0, 100.0, 180.0, 150.0])]


def test_contact_page_profile_ltv_chart_orders_and_events(logged_in, api, db):
    api.post("/api/v1/destinations", json={"name": "Hook", "kind": "webhook",
                                           "credentials": {"url": "http://127.0.0.1:9/h", "secret": "s3cret-value"}})
    contact = _contact_with_history(api, db)
    response = logged_in.get(f"/contacts/{contact.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html
    assert "hist@example.com" in html and "Hana" in html and "✓ subscribed" in html
    assert "Net LTV over time" in html and "<svg" in html and "<summary>Numbers</summary>" in html
    assert "-30.00 USD" in html and "150.00 USD" in html  # refund row and the running total after it
    assert "<strong>150.00</strong>" in html  # USD net in the LTV table (230 − 50 − 30)
    for external_id in ("H1", "H2", "H3", "H4"):
        assert f'href="/orders/{external_id}"' in html
    assert "Events sent to each platform" in html and "Hook" in html and "profile" in html
    partial = logged_in.get(f"/contacts/{contact.id}", headers=HTMX).get_data(as_text=True)
    assert "<html" not in partial and 'id="contact-body"' in partial and "Net LTV over time" in partial
    assert logged_in.get("/contacts/999999").status_code == 404


def test_contact_without_orders_page_and_merged_notice(logged_in, api, db):
    merged = _merge_two_contacts(api, db)
    html = logged_in.get(f"/contacts/{merged.id}").get_data(as_text=True)
    assert "This contact was merged into" in html and "Not scored" in html
    survivor = logged_in.get(f"/contacts/{merged.merged_into_id}").get_data(as_text=True)
    assert "Merged contacts" in survivor and f'href="/contacts/{merged.id}"' in survivor

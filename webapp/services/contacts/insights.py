"""Figures behind the contacts charts: RFM segments and grid, LTV distribution, one contact's LTV over time
and what was sent about a contact to each platform.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy.orm import selectinload

from webapp.extensions import db
from webapp.models import Contact, Destination, Event, Order, utcnow
from webapp.services.contacts.ltv import contribution
from webapp.services.contacts.rfm import SEGMENTS
from webapp.services.delivery import rollups as event_rollups
from webapp.services.platform.charts import Series

LIVE = Contact.merged_into_id.is_(None)


@dataclass(frozen=True)
class SegmentCount:
    name: str
    rule: str
    count: int


def segment_counts() -> list[SegmentCount]:
    """Every named segment with its rule and how many contacts are in it, plus the unscored ones."""
    return _segment_rows(dict(db.session.execute(sa.select(Contact.rfm_segment, sa.func.count())
                                                 .where(LIVE).group_by(Contact.rfm_segment)).all()))


def _segment_rows(counts: dict[str | None, int]) -> list[SegmentCount]:
    """Named segments in rule order, then renamed ones, then the unscored count."""
    counts = dict(counts)
    rows = [SegmentCount(rule.name, rule.rule, counts.pop(rule.name, 0)) for rule in SEGMENTS]
    unscored = counts.pop(None, 0)
    rows += [SegmentCount(name, "", count) for name, count in sorted(counts.items())]  # renamed rules
    rows.append(SegmentCount("Not scored", "no fulfilled order yet, or RFM not refreshed since", unscored))
    return rows


@dataclass(frozen=True)
class RfmGrid:
    """Contacts per (recency, frequency) score; rows run R 5 → 1, columns F 1 → 5."""

    cells: dict[tuple[int, int], int]

    @property
    def total(self) -> int:
        return sum(self.cells.values())

    def count(self, recency: int, frequency: int) -> int:
        return self.cells.get((recency, frequency), 0)

    def level(self, recency: int, frequency: int) -> int:
        """0–4 shade for the heat map (the count is always printed too)."""
        top = max(self.cells.values(), default=0)
        value = self.count(recency, frequency)
        return 0 if not value or not top else min(4, 1 + (value * 4 - 1) // top)


def rfm_grid() -> RfmGrid:
    rows = db.session.execute(sa.select(Contact.rfm_recency, Contact.rfm_frequency, sa.func.count())
                              .where(LIVE, Contact.rfm_recency.is_not(None), Contact.rfm_frequency.is_not(None))
                              .group_by(Contact.rfm_recency, Contact.rfm_frequency)).all()
    return RfmGrid({(int(r), int(f)): count for r, f, count in rows})


def primary_currency() -> str | None:
    """The currency most contacts mainly buy in: the one the LTV distribution is drawn in."""
    return db.session.scalar(sa.select(Contact.ltv_primary_currency).where(
        LIVE, Contact.ltv_primary_currency.is_not(None)).group_by(Contact.ltv_primary_currency)
        .order_by(sa.func.count().desc(), Contact.ltv_primary_currency).limit(1))


LTV_EDGES: tuple[int, ...] = (0, 50, 100, 250, 500, 1000, 2500, 5000)


def _short(value: int) -> str:
    """1000 -> '1k', 2500 -> '2.5k': chart labels stay short enough not to overlap."""
    return f"{value / 1000:g}k" if abs(value) >= 1000 else str(value)


def ltv_bucket_labels(edges: Sequence[int] = LTV_EDGES) -> list[str]:
    labels = [f"≤ {_short(edges[0])}"]
    labels += [f"{_short(low)}–{_short(high)}" for low, high in zip(edges, edges[1:], strict=False)]
    return [*labels, f"{_short(edges[-1])}+"]


def ltv_distribution(currency: str, edges: Sequence[int] = LTV_EDGES) -> list[tuple[str, int]]:
    """Contacts per net-LTV bucket in one currency, in one grouped query; buckets include their upper edge."""
    value = Contact.ltv_primary
    bucket = sa.case(*((value <= edge, index) for index, edge in enumerate(edges)),
                     else_=len(edges)).label("bucket")
    # Grouping by the output name: PostgreSQL would not match a repeated CASE with its own bind parameters.
    counts = dict(db.session.execute(sa.select(bucket, sa.func.count()).where(
        LIVE, Contact.ltv_primary_currency == currency).group_by(sa.literal_column("bucket"))).all())
    return [(label, counts.get(index, 0)) for index, label in enumerate(ltv_bucket_labels(edges))]


@dataclass(frozen=True)
class ContactsSummary:
    """What the contacts page shows above the list, computed together and cached briefly (see summary())."""

    segments: list[SegmentCount]
    grid: RfmGrid
    currency: str | None
    buckets: list[tuple[str, int]]
    as_of: datetime


SUMMARY_KEY = "shoprelay:contacts:summary"
SUMMARY_TTL_SECONDS = 60


def compute_summary(edges: Sequence[int] = LTV_EDGES) -> ContactsSummary:
    """Segment counts, RFM grid, primary currency and its LTV buckets from one scan of the live contacts.

    One GROUP BY over (currency, bucket, segment, R, F) yields at most a few thousand groups, which are
    folded here into the four summaries: one pass instead of four full scans (~35-45 ms each at 200k).
    """
    value = Contact.ltv_primary
    bucket = sa.case(*((value <= edge, index) for index, edge in enumerate(edges)),
                     else_=len(edges)).label("bucket")
    keys = (Contact.ltv_primary_currency, Contact.rfm_segment, Contact.rfm_recency, Contact.rfm_frequency)
    rows = db.session.execute(sa.select(*keys, bucket, sa.func.count()).where(LIVE)
                              .group_by(*keys, sa.literal_column("bucket"))).all()
    segment_totals: dict[str | None, int] = {}
    cells: dict[tuple[int, int], int] = {}
    per_currency: dict[str, int] = {}
    buckets: dict[tuple[str, int], int] = {}
    for currency, segment, recency, frequency, index, count in rows:
        segment_totals[segment] = segment_totals.get(segment, 0) + count
        if recency is not None and frequency is not None:
            cell = (int(recency), int(frequency))
            cells[cell] = cells.get(cell, 0) + count
        if currency is not None:
            per_currency[currency] = per_currency.get(currency, 0) + count
            buckets[currency, index] = buckets.get((currency, index), 0) + count
    primary = min(per_currency, key=lambda code: (-per_currency[code], code)) if per_currency else None
    distribution = [(label, buckets.get((primary, index), 0))
                    for index, label in enumerate(ltv_bucket_labels(edges))] if primary else []
    return ContactsSummary(_segment_rows(segment_totals), RfmGrid(cells), primary, distribution, utcnow())


def summary() -> ContactsSummary:
    """The summary as of at most SUMMARY_TTL_SECONDS ago (the page says when): it only moves with ingest
    and RFM refreshes, and recomputing it on every view cost most of the page's time at 200k contacts.
    Without Redis (or when it fails) it is computed fresh."""
    redis = _redis()
    if redis is not None:
        with contextlib.suppress(RedisError, ValueError, TypeError, KeyError):
            cached = redis.get(SUMMARY_KEY)
            if cached:
                return _summary_from_json(orjson.loads(cached))
    fresh = compute_summary()
    if redis is not None:
        with contextlib.suppress(RedisError):
            redis.set(SUMMARY_KEY, orjson.dumps(_summary_json(fresh)), ex=SUMMARY_TTL_SECONDS)
    return fresh


def forget_summary() -> None:
    """Drop the cached summary (after an RFM refresh the user expects the new scores at once)."""
    redis = _redis()
    if redis is not None:
        with contextlib.suppress(RedisError):
            redis.delete(SUMMARY_KEY)


def _redis():  # noqa: ANN202 - redis.Redis | None
    from workers.queue import connect

    url = current_app.config.get("REDIS_URL")
    return connect(url) if url else None


def _summary_json(value: ContactsSummary) -> dict[str, Any]:
    return {"segments": [[s.name, s.rule, s.count] for s in value.segments],
            "grid": [[r, f, count] for (r, f), count in value.grid.cells.items()],
            "currency": value.currency, "buckets": value.buckets, "as_of": value.as_of.isoformat()}


def _summary_from_json(data: dict[str, Any]) -> ContactsSummary:
    return ContactsSummary(
        segments=[SegmentCount(name, rule, count) for name, rule, count in data["segments"]],
        grid=RfmGrid({(r, f): count for r, f, count in data["grid"]}), currency=data["currency"],
        buckets=[(label, count) for label, count in data["buckets"]],
        as_of=datetime.fromisoformat(data["as_of"]))


@dataclass(frozen=True)
class LtvChange:
    at: datetime
    order_id: str
    kind: str  # placed | cancelled | refunded
    currency: str
    amount: Decimal  # signed
    cumulative: Decimal


@dataclass(frozen=True)
class LtvTimeline:
    changes: list[LtvChange]
    labels: list[str]  # one per day with a change
    series: list[Series]  # cumulative net per currency at the end of each day


_KIND_ORDER = {"placed": 0, "cancelled": 1, "refunded": 2}


def ltv_over_time(contact_id: int) -> LtvTimeline:
    """Net LTV as it grew: placed adds the total when placed; a cancellation subtracts it when cancelled,
    a refund subtracts the refunded amount when refunded (the same amounts as services.ltv)."""
    orders = db.session.scalars(sa.select(Order).where(Order.contact_id == contact_id)
                                .order_by(Order.placed_at, Order.id)).all()
    steps: list[tuple[datetime, str, str, str, Decimal]] = []
    for order in orders:
        part = contribution(order.status, order.total, order.refunded_amount)
        if part.placed:
            steps.append((order.placed_at, order.external_id, "placed", order.currency, part.placed))
        if part.cancelled:
            at = max(order.cancelled_at or order.placed_at, order.placed_at)
            steps.append((at, order.external_id, "cancelled", order.currency, -part.cancelled))
        if part.refunded:
            at = max(order.refunded_at or order.placed_at, order.placed_at)
            steps.append((at, order.external_id, "refunded", order.currency, -part.refunded))
    steps.sort(key=lambda step: (step[0], _KIND_ORDER[step[2]]))
    running: dict[str, Decimal] = {}
    changes = []
    for at, order_id, kind, currency, amount in steps:
        running[currency] = running.get(currency, Decimal(0)) + amount
        changes.append(LtvChange(at, order_id, kind, currency, amount, running[currency]))
    return LtvTimeline(changes, *_daily_series(changes))


def _daily_series(changes: list[LtvChange]) -> tuple[list[str], list[Series]]:
    labels: list[str] = []
    end_of_day: dict[str, dict[str, Decimal]] = {}
    for change in changes:
        day = change.at.strftime("%Y-%m-%d")
        if not labels or labels[-1] != day:
            labels.append(day)
        end_of_day.setdefault(change.currency, {})[day] = change.cumulative
    series = []
    for currency in sorted(end_of_day):
        values, last = [], Decimal(0)
        for day in labels:
            last = end_of_day[currency].get(day, last)
            values.append(float(last))
        series.append(Series(currency, values))
    return labels, series


@dataclass(frozen=True)
class PlatformEvents:
    destination: Destination
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def events_by_platform(contact_ids: Sequence[int]) -> list[PlatformEvents]:
    """Event counts per destination and state for these contacts (a contact and those merged into it)."""
    rows = db.session.execute(sa.select(Event.destination_id, Event.state, sa.func.count())
                              .where(Event.contact_id.in_(contact_ids))
                              .group_by(Event.destination_id, Event.state)).all()
    per_destination: dict[int, dict[str, int]] = {}
    for destination_id, state, count in rows:
        per_destination.setdefault(destination_id, {})[state] = count
    for destination_id, states in event_rollups.per_contact(contact_ids).items():  # pruned events
        for state, count in states.items():
            found = per_destination.setdefault(destination_id, {})
            found[state] = found.get(state, 0) + count
    destinations = db.session.scalars(sa.select(Destination).where(
        Destination.id.in_(per_destination))).all() if per_destination else []
    return sorted((PlatformEvents(d, per_destination[d.id]) for d in destinations),
                  key=lambda item: item.destination.name.lower())


def latest_events(contact_ids: Sequence[int], limit: int = 20) -> list[tuple[Event, str | None]]:
    """The newest events with the external id of their order (None for profile events)."""
    return [(event, external_id) for event, external_id in db.session.execute(
        sa.select(Event, Order.external_id).outerjoin(Order, Order.id == Event.order_id)
        .where(Event.contact_id.in_(contact_ids)).options(selectinload(Event.destination))
        .order_by(Event.created_at.desc(), Event.id.desc()).limit(limit)).all()]


def merged_contacts(contact: Contact) -> list[Contact]:
    return list(db.session.scalars(sa.select(Contact).where(Contact.merged_into_id == contact.id)
                                   .order_by(Contact.id)).all())


def contact_orders(contact_id: int, limit: int = 100) -> tuple[list[Order], int]:
    """The newest orders and how many there are in all."""
    total = db.session.scalar(sa.select(sa.func.count()).where(Order.contact_id == contact_id)) or 0
    orders = db.session.scalars(sa.select(Order).where(Order.contact_id == contact_id)
                                .order_by(Order.placed_at.desc(), Order.id.desc()).limit(limit)).all()
    return list(orders), total

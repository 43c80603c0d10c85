"""RFM: recency, frequency and monetary scores (1–5 quintiles over fulfilled orders) and named segments.

Scores are relative to the whole customer base, so they are refreshed together (every 10 minutes, after a
recompute, and on demand from the contacts page) rather than per order.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Contact, Order, utcnow

FULFILLED = ("fulfilled", "partially_refunded")
WRITE_CHUNK = 500


@dataclass(frozen=True)
class SegmentRule:
    name: str
    rule: str  # shown on the contacts page
    r: tuple[int, int]
    f: tuple[int, int]
    m: tuple[int, int] = (1, 5)

    def matches(self, r: int, f: int, m: int) -> bool:
        return self.r[0] <= r <= self.r[1] and self.f[0] <= f <= self.f[1] and self.m[0] <= m <= self.m[1]


# First match wins; the last rule catches everything, so every scored contact gets a segment.
SEGMENTS: tuple[SegmentRule, ...] = (
    SegmentRule("Champions", "R 4–5, F 4–5, M 4–5: bought recently, often, and spend the most", (4, 5), (4, 5), (4, 5)),
    SegmentRule("Loyal", "R 3–5, F 4–5: buy often", (3, 5), (4, 5)),
    SegmentRule("Can't lose them", "R 1–2, F 4–5, M 4–5: were your best, gone quiet", (1, 2), (4, 5), (4, 5)),
    SegmentRule("At risk", "R 1–2, F 3–5: used to buy often, not lately", (1, 2), (3, 5)),
    SegmentRule("New", "R 5, F 1: first purchase very recently", (5, 5), (1, 1)),
    SegmentRule("Potential loyalists", "R 4–5, F 1–3: recent, buying again", (4, 5), (1, 3)),
    SegmentRule("Need attention", "R 3, F 1–3: average recency and frequency", (3, 3), (1, 3)),
    SegmentRule("Hibernating", "R 2, F 1–2: last bought a while ago, rarely", (2, 2), (1, 2)),
    SegmentRule("Lost", "R 1, F 1–2: long gone, bought little", (1, 1), (1, 5)),
)


def segment_for(r: int, f: int, m: int) -> str:
    for rule in SEGMENTS:
        if rule.matches(r, f, m):
            return rule.name
    return "Hibernating"


def quintile_scorer(values: Sequence[float]):  # noqa: ANN201
    """Score 1–5 by the share of all values strictly below this one (higher value, higher score).

    Ties share the score of their lowest member, so when most customers have one order they all get
    F1 rather than being lifted into the top quintile by the tie.
    """
    ordered = sorted(values)
    n = len(ordered)

    def score(value: float) -> int:
        if n == 0:
            return 1
        below = bisect_left(ordered, value) / n
        return min(5, 1 + int(below * 5))

    return score


@dataclass(frozen=True)
class RfmInput:
    contact_id: int
    last_fulfilled_at: datetime
    frequency: int
    monetary: Decimal


def score_all(rows: Sequence[RfmInput], now: datetime) -> dict[int, tuple[int, int, int, str]]:
    """contact id -> (R, F, M, segment). Recency: fewer days since the last fulfilled order scores higher."""
    days = {row.contact_id: (now - row.last_fulfilled_at).total_seconds() / 86400 for row in rows}
    r_score = quintile_scorer([-d for d in days.values()])
    f_score = quintile_scorer([row.frequency for row in rows])
    m_score = quintile_scorer([float(row.monetary) for row in rows])
    result = {}
    for row in rows:
        r, f, m = r_score(-days[row.contact_id]), f_score(row.frequency), m_score(float(row.monetary))
        result[row.contact_id] = (r, f, m, segment_for(r, f, m))
    return result


def _per_contact() -> sa.Select:
    """Per contact with at least one fulfilled order: last order time, order count, net spend."""
    refunded = sa.func.coalesce(Order.refunded_amount, 0)
    return (sa.select(Order.contact_id.label("contact_id"), sa.func.max(Order.placed_at).label("last"),
                      sa.func.count().label("frequency"), sa.func.sum(Order.total - refunded).label("monetary"))
            .where(Order.status.in_(FULFILLED), Order.contact_id.is_not(None))
            .group_by(Order.contact_id))


def refresh_rfm(now: datetime | None = None) -> int:
    """Recompute every contact's RFM from its fulfilled orders; contacts without any get none.

    Only rows whose scores changed are written, so running it often (the scheduler does, every few
    minutes) costs one grouped read and a handful of updates rather than rewriting every contact. A first
    refresh of a big base commits every WRITE_CHUNK contacts (each score stands alone; a page read meanwhile
    sees some contacts rescored and others not yet), so ingest never waits behind it.
    """
    now = now or utcnow()
    rows = [RfmInput(contact_id, last, count, Decimal(value or 0))
            for contact_id, last, count, value in db.session.execute(_per_contact()).all()]
    scores = score_all(rows, now)
    stored = {cid: (r, f, m, segment) for cid, r, f, m, segment in db.session.execute(
        sa.select(Contact.id, Contact.rfm_recency, Contact.rfm_frequency, Contact.rfm_monetary, Contact.rfm_segment)
        .where(Contact.rfm_segment.is_not(None))).all()}
    updates = [{"id": cid, "rfm_recency": r, "rfm_frequency": f, "rfm_monetary": m, "rfm_segment": segment}
               for cid, (r, f, m, segment) in scores.items() if stored.get(cid) != (r, f, m, segment)]
    updates += [{"id": cid, "rfm_recency": None, "rfm_frequency": None, "rfm_monetary": None, "rfm_segment": None}
                for cid in stored.keys() - scores.keys()]
    for start in range(0, len(updates), WRITE_CHUNK):  # a commit per chunk: never a long write transaction
        db.session.execute(sa.update(Contact), updates[start:start + WRITE_CHUNK],
                           execution_options={"synchronize_session": False})
        db.session.commit()
    db.session.commit()
    return len(scores)


def live_rfm(contact_id: int) -> tuple[int, int, int, str] | None:
    """One contact's (R, F, M, segment) against the customer base as it is right now.

    Gives exactly what `refresh_rfm` would store (same "share strictly below" quintiles), in one
    aggregate query, so the API never answers with scores older than the last order.
    """
    per = _per_contact().subquery()
    own = db.session.execute(sa.select(per.c.last, per.c.frequency, per.c.monetary)
                             .where(per.c.contact_id == contact_id)).first()
    if own is None:
        return None
    last, frequency, monetary = own
    below = db.session.execute(sa.select(
        sa.func.count(),
        sa.func.sum(sa.case((per.c.last < last, 1), else_=0)),
        sa.func.sum(sa.case((per.c.frequency < frequency, 1), else_=0)),
        sa.func.sum(sa.case((per.c.monetary < monetary, 1), else_=0)),
    )).one()
    total = below[0]

    def score(count: int | None) -> int:
        return min(5, 1 + int((count or 0) / total * 5))

    r, f, m = score(below[1]), score(below[2]), score(below[3])
    return r, f, m, segment_for(r, f, m)

"""Prometheus text exposition of delivery health, computed from the database and the queues."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from webapp.extensions import db
from webapp.models import DeliveryAttempt, Destination, Event, Order
from webapp.services.statements import dialect_name

LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_metrics() -> str:
    lines: list[str] = []
    names = dict(db.session.execute(sa.select(Destination.id, Destination.name)).all())

    def label(dest_id: int) -> str:
        return _escape(names.get(dest_id, str(dest_id)))

    lines += ["# HELP shoprelay_events Outbox events by destination and state.",
              "# TYPE shoprelay_events gauge"]
    for dest_id, state, count in db.session.execute(
            sa.select(Event.destination_id, Event.state, sa.func.count()).group_by(
                Event.destination_id, Event.state)).all():
        lines.append(f'shoprelay_events{{destination="{label(dest_id)}",state="{state}"}} {count}')

    lines += ["# HELP shoprelay_delivery_attempts_total Delivery attempts by destination and outcome.",
              "# TYPE shoprelay_delivery_attempts_total counter"]
    for dest_id, outcome, count in db.session.execute(
            sa.select(DeliveryAttempt.destination_id, DeliveryAttempt.outcome, sa.func.count()).group_by(
                DeliveryAttempt.destination_id, DeliveryAttempt.outcome)).all():
        lines.append(f'shoprelay_delivery_attempts_total{{destination="{label(dest_id)}",'
                     f'outcome="{outcome}"}} {count}')

    lines += ["# HELP shoprelay_delivery_latency_seconds Time from event creation to delivery.",
              "# TYPE shoprelay_delivery_latency_seconds histogram"]
    lines += _latency_histogram(label)

    now = datetime.now(UTC)
    oldest = db.session.scalar(sa.select(sa.func.min(Event.created_at)).where(
        Event.state.in_(("pending", "retrying", "in_flight"))))
    lines += ["# HELP shoprelay_oldest_pending_event_age_seconds Age of the oldest undelivered event.",
              "# TYPE shoprelay_oldest_pending_event_age_seconds gauge",
              f"shoprelay_oldest_pending_event_age_seconds {_age(oldest, now):.3f}"]
    lines += ["# HELP shoprelay_orders Orders stored.", "# TYPE shoprelay_orders gauge",
              f"shoprelay_orders {db.session.scalar(sa.select(sa.func.count()).select_from(Order)) or 0}"]
    lines += ["# HELP shoprelay_destination_paused 1 when a destination is paused.",
              "# TYPE shoprelay_destination_paused gauge"]
    for dest in db.session.scalars(sa.select(Destination)).all():
        lines.append(f'shoprelay_destination_paused{{destination="{_escape(dest.name)}"}} '
                     f'{1 if dest.paused_at else 0}')
    lines += _queue_depths()
    return "\n".join(lines) + "\n"


def _age(when: datetime | None, now: datetime) -> float:
    if when is None:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (now - when).total_seconds())


def _latency_histogram(label) -> list[str]:  # noqa: ANN001
    seconds = _seconds_between(Event.created_at, Event.delivered_at)
    columns = [sa.func.count().label("count"), sa.func.coalesce(sa.func.sum(seconds), 0).label("sum")]
    columns += [sa.func.sum(sa.case((seconds <= bound, 1), else_=0)).label(f"b{i}")
                for i, bound in enumerate(LATENCY_BUCKETS)]
    rows = db.session.execute(
        sa.select(Event.destination_id, *columns).where(Event.state == "delivered")
        .group_by(Event.destination_id)).all()
    lines = []
    for row in rows:
        dest = label(row[0])
        for i, bound in enumerate(LATENCY_BUCKETS):
            lines.append(f'shoprelay_delivery_latency_seconds_bucket{{destination="{dest}",le="{bound}"}} '
                         f'{int(getattr(row, f"b{i}") or 0)}')
        lines.append(f'shoprelay_delivery_latency_seconds_bucket{{destination="{dest}",le="+Inf"}} {row.count}')
        lines.append(f'shoprelay_delivery_latency_seconds_sum{{destination="{dest}"}} {float(row.sum):.3f}')
        lines.append(f'shoprelay_delivery_latency_seconds_count{{destination="{dest}"}} {row.count}')
    return lines


def _seconds_between(start, end):  # noqa: ANN001, ANN202
    """Portable interval in seconds (PostgreSQL epoch extraction, SQLite julianday)."""
    if dialect_name() == "postgresql":
        return sa.func.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def _queue_depths() -> list[str]:
    from workers.queue import QUEUE_NAMES, connect, get_queue

    lines = ["# HELP shoprelay_queue_depth Jobs waiting per RQ queue.", "# TYPE shoprelay_queue_depth gauge"]
    url = current_app.config.get("REDIS_URL")
    if not url:
        return lines
    try:
        connection = connect(url)
        for name in QUEUE_NAMES:
            lines.append(f'shoprelay_queue_depth{{queue="{name}"}} {get_queue(name, connection).count}')
    except RedisError:
        lines.append("# redis unreachable")
    return lines

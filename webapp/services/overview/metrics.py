"""Prometheus text exposition of delivery health, computed from the database and the queues."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app
from redis import Redis
from redis.exceptions import RedisError

from webapp.extensions import db
from webapp.models import Destination, Event
from webapp.services.delivery import counters as delivery_counters
from webapp.services.delivery.counters import LATENCY_BUCKETS
from webapp.services.overview.order_count import stored_orders


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_metrics() -> str:
    """Every figure is a bounded query: counters (a few rows per destination), live counts of the states
    retention keeps (index ranges), one index look-up for the oldest pending event, and the orders stored
    since a mark (a primary-key range, see order_count)."""
    lines: list[str] = []
    names = dict(db.session.execute(sa.select(Destination.id, Destination.name)).all())

    def label(dest_id: int) -> str:
        return _escape(names.get(dest_id, str(dest_id)))

    counters = delivery_counters.totals()
    lines += ["# HELP shoprelay_events Outbox events by destination and state (delivered and skipped: "
              "ever, including pruned ones).", "# TYPE shoprelay_events gauge"]
    # Filtered by destination, the live counts read ix_events_dest_state per destination.
    for dest_id, states in sorted(delivery_counters.state_counts(names, counters=counters).items()):
        for state, count in sorted(states.items()):
            lines.append(f'shoprelay_events{{destination="{label(dest_id)}",state="{state}"}} {count}')

    lines += ["# HELP shoprelay_delivery_attempts_total Delivery attempts by destination and outcome.",
              "# TYPE shoprelay_delivery_attempts_total counter"]
    for dest_id, values in sorted(counters.items()):
        for name, (count, _) in sorted(values.items()):
            if name.startswith("attempts:"):
                lines.append(f'shoprelay_delivery_attempts_total{{destination="{label(dest_id)}",'
                             f'outcome="{name.removeprefix("attempts:")}"}} {count}')

    lines += ["# HELP shoprelay_delivery_latency_seconds Time from event creation to delivery.",
              "# TYPE shoprelay_delivery_latency_seconds histogram"]
    lines += _latency_histogram(label, counters)

    now = datetime.now(UTC)
    oldest = min((when for when in (db.session.scalar(sa.select(sa.func.min(Event.created_at)).where(
        Event.state == state)) for state in ("pending", "retrying", "in_flight")) if when is not None),
        default=None)
    lines += ["# HELP shoprelay_oldest_pending_event_age_seconds Age of the oldest undelivered event.",
              "# TYPE shoprelay_oldest_pending_event_age_seconds gauge",
              f"shoprelay_oldest_pending_event_age_seconds {_age(oldest, now):.3f}"]
    lines += ["# HELP shoprelay_orders Orders stored.", "# TYPE shoprelay_orders gauge",
              f"shoprelay_orders {stored_orders(_redis())}"]
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


def _latency_histogram(label, counters: dict[int, dict[str, tuple[int, float]]]) -> list[str]:  # noqa: ANN001
    lines = []
    for dest_id, values in sorted(counters.items()):
        count, total = values.get("events:delivered", (0, 0.0))
        if not count:
            continue
        dest, cumulative = label(dest_id), 0
        for i, bound in enumerate(LATENCY_BUCKETS):
            cumulative += values.get(f"latency:{i}", (0, 0.0))[0]
            lines.append(f'shoprelay_delivery_latency_seconds_bucket{{destination="{dest}",le="{bound}"}} '
                         f'{cumulative}')
        lines.append(f'shoprelay_delivery_latency_seconds_bucket{{destination="{dest}",le="+Inf"}} {count}')
        lines.append(f'shoprelay_delivery_latency_seconds_sum{{destination="{dest}"}} {total:.3f}')
        lines.append(f'shoprelay_delivery_latency_seconds_count{{destination="{dest}"}} {count}')
    return lines


def _redis() -> Redis | None:
    from workers.queue import connect

    url = current_app.config.get("REDIS_URL")
    return connect(url) if url else None


def _queue_depths() -> list[str]:
    from workers.queue import QUEUE_NAMES, get_queue

    lines = ["# HELP shoprelay_queue_depth Jobs waiting per RQ queue.", "# TYPE shoprelay_queue_depth gauge"]
    connection = _redis()
    if connection is None:
        return lines
    try:
        for name in QUEUE_NAMES:
            lines.append(f'shoprelay_queue_depth{{queue="{name}"}} {get_queue(name, connection).count}')
    except RedisError:
        lines.append("# redis unreachable")
    return lines

"""Recording what a platform answered: request log, per-event attempts, event states, destination health."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import DeliveryAttempt, DeliveryRequest, Destination, Event
from webapp.services.crypto import redact
from webapp.services.order_rollup import refresh_delivery_state
from workers.delivery.http_client import SendResult
from workers.delivery.policy import RetryPolicy
from workers.destinations.base import Classification, Outcome, PreparedRequest

MAX_REQUEST_BODY = 64 * 1024
MAX_RESPONSE_BODY = 4 * 1024


def request_text(request: PreparedRequest, secrets: list[str]) -> str:
    if request.content is not None:
        text = request.content.decode("utf-8", "replace")
    elif request.json is not None:
        text = orjson.dumps(request.json, option=orjson.OPT_INDENT_2).decode()
    else:
        text = ""
    text = redact(text, secrets)
    return text if len(text) <= MAX_REQUEST_BODY else text[:MAX_REQUEST_BODY] + "\n… (trimmed)"


def record(destination: Destination, request: PreparedRequest, result: SendResult,
           classification: Classification, events: dict[int, Event], secrets: list[str],
           policy: RetryPolicy, now: datetime) -> dict[str, int]:
    """Store the request and one attempt per event; move every event to its next state. Returns counts."""
    response = redact(result.body[:MAX_RESPONSE_BODY].decode("utf-8", "replace"), secrets)
    logged = DeliveryRequest(
        destination_id=destination.id, started_at=now, duration_ms=result.duration_ms, method=request.method,
        url=redact(request.url, secrets), http_status=result.status, outcome=classification.outcome.value,
        request_body=request_text(request, secrets), response_body=response,
        error=redact(result.error, secrets) if result.error else None, event_count=len(request.event_ids))
    db.session.add(logged)
    db.session.flush()
    counts: dict[str, int] = {}
    attempts, updates = [], []
    for event_id in request.event_ids:
        event = events[event_id]
        outcome, message = classification.per_event.get(event_id, (classification.outcome,
                                                                    classification.message))
        message = redact(message or "", secrets)[:2000]
        attempts.append({"event_id": event_id, "destination_id": destination.id, "request_id": logged.id,
                         "attempted_at": now, "outcome": outcome.value, "http_status": result.status,
                         "duration_ms": result.duration_ms, "message": message or result.error})
        updates.append(_next_state(event, outcome, message or result.error or "", classification, policy, now))
        counts[outcome.value] = counts.get(outcome.value, 0) + 1
    db.session.execute(sa.insert(DeliveryAttempt), attempts)
    db.session.execute(sa.update(Event), updates, execution_options={"synchronize_session": False})
    _destination_health(destination, classification, now, policy)
    order_ids = {events[i].order_id for i in request.event_ids if events[i].order_id}
    refresh_delivery_state(order_ids)
    db.session.commit()
    return counts


def _next_state(event: Event, outcome: Outcome, message: str, classification: Classification,
                policy: RetryPolicy, now: datetime) -> dict:
    attempts = event.attempts + 1
    values = {"id": event.id, "attempts": attempts, "lease_until": None, "leased_by": None}
    if outcome is Outcome.DELIVERED:
        return values | {"state": "delivered", "delivered_at": now, "last_error": None}
    if outcome is Outcome.REJECTED:
        return values | {"state": "rejected", "last_error": message}
    if policy.is_dead(attempts, event.created_at, now):
        return values | {"state": "dead", "last_error": message}
    delay = policy.backoff(attempts, classification.retry_after)
    return values | {"state": "retrying", "last_error": message,
                     "next_attempt_at": now + timedelta(seconds=delay)}


def _destination_health(destination: Destination, classification: Classification, now: datetime,
                        policy: RetryPolicy) -> None:
    """Success clears the failure streak; setup errors pause at once; long failure streaks trip the breaker."""
    outcome = classification.outcome
    if outcome in (Outcome.DELIVERED, Outcome.REJECTED):
        destination.last_success_at = now if outcome is Outcome.DELIVERED else destination.last_success_at
        destination.failing_since = None
        return
    if outcome is Outcome.SETUP_ERROR:
        pause(destination, f"the platform refused the credentials: {classification.message[:300]}", now)
        return
    destination.failing_since = destination.failing_since or now
    if now - destination.failing_since >= policy.breaker:
        minutes = int((now - destination.failing_since).total_seconds() // 60)
        pause(destination, f"failing continuously for {minutes} min; last answer: "
                           f"{classification.message[:300]}", now)


def pause(destination: Destination, reason: str, now: datetime) -> None:
    if destination.paused_at is None:
        destination.paused_at = now
    destination.pause_reason = reason


def mark_skipped(skipped: dict[int, str], events: dict[int, Event], now: datetime) -> None:
    """Events the platform does not take are settled as skipped, with the reason, never retried."""
    if not skipped:
        return
    db.session.execute(sa.update(Event), [
        {"id": event_id, "state": "skipped", "last_error": reason[:2000], "lease_until": None,
         "leased_by": None, "delivered_at": now} for event_id, reason in skipped.items()],
        execution_options={"synchronize_session": False})
    refresh_delivery_state({events[i].order_id for i in skipped if events[i].order_id})
    db.session.commit()

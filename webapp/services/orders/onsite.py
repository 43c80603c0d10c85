"""Onsite activity: identified visitors' events become outbox events like any other.

Anonymous visitors are remembered by their browser id once they identify (Redis, 90 days), so later
page views of the same browser reach the platform as that contact. Unidentified activity is dropped:
no platform can attach it to a profile.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app
from redis.exceptions import RedisError

from webapp.models import utcnow
from webapp.schemas.onsite import Collect
from webapp.services.contacts.matching import contact_payload, find_contact
from webapp.services.orders.ingest import signal_destinations
from webapp.services.orders.outbox import NewEvent, active_targets, write_events

ANON_TTL = 90 * 86400
PER_IP_PER_MINUTE = 120


def _redis():  # noqa: ANN202
    from workers.queue import connect

    url = current_app.config.get("REDIS_URL")
    return connect(url) if url else None


def allowed(ip: str) -> bool:
    """A per-IP budget so the open endpoint cannot be used to flood the outbox."""
    redis = _redis()
    if redis is None:
        return True
    key = f"shoprelay:onsite:ip:{ip}:{int(utcnow().timestamp() // 60)}"
    try:
        count = redis.incr(key)
        redis.expire(key, 120)
    except RedisError:
        return True
    return count <= PER_IP_PER_MINUTE


def _remember(anonymous_id: str, email: str | None, customer_id: str | None) -> tuple[str | None, str | None]:
    redis = _redis()
    key = f"shoprelay:onsite:anon:{anonymous_id}"
    try:
        if redis is not None and (email or customer_id):
            redis.hset(key, mapping={"email": email or "", "customer_id": customer_id or ""})
            redis.expire(key, ANON_TTL)
        elif redis is not None:
            known = redis.hgetall(key)
            email = (known.get(b"email") or b"").decode() or None
            customer_id = (known.get(b"customer_id") or b"").decode() or None
    except RedisError:
        pass
    return email, customer_id


def collect(body: Collect) -> str:
    """Record one onsite event; returns what happened (for the response and the tests)."""
    email, customer_id = _remember(body.anonymous_id, body.email and body.email.lower(), body.customer_id)
    if body.event == "identify":
        return "identified"
    matches = find_contact(customer_id, email, None)
    contact = matches[0] if matches else None
    if contact is None and not email:
        return "ignored: visitor not identified"
    activity: dict[str, Any] = {"url": body.url, "at": utcnow().isoformat(), **body.properties}
    payload = {"activity": activity, "contact": contact_payload(contact) if contact else {
        "email": email, "customer_id": customer_id}}
    targets = active_targets()
    touched = write_events([NewEvent(body.event, f"{body.anonymous_id}:{body.event}:{uuid.uuid4().hex[:12]}",
                                     payload, utcnow(), contact_id=contact.id if contact else None)], targets)
    from webapp.extensions import db

    db.session.commit()
    signal_destinations(touched, targets)
    return "recorded"

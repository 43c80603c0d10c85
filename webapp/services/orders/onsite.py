"""Onsite activity: identified visitors' events become outbox events like any other.

A browser is remembered by its browser id once it identifies (Redis, 90 days), so later page views of the
same browser reach the platforms as that contact. Identities are trusted as far as the settings say: a
signed email always, an unsigned one unless SHOPRELAY_ONSITE_REQUIRE_SIGNED, a Klaviyo `_kx` (Klaviyo
resolves it itself) for Klaviyo destinations only. Unidentified activity is dropped: no platform can
attach it to a profile.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from webapp.extensions import db
from webapp.models import Destination, utcnow
from webapp.schemas.canonical.onsite import Collect
from webapp.services.contacts.matching import contact_payload, find_contact
from webapp.services.onsite import person_index
from webapp.services.onsite.signing import verify
from webapp.services.orders.ingest import signal_destinations
from webapp.services.orders.outbox import NewEvent, active_targets, write_events

ANON_TTL = 90 * 86400
# A `_kx` alone stores itself, but refreshes the browser's lifetime only while the browser names nobody: an
# identified browser lives ANON_TTL from its last identity, as its entries in the person index do (person_index).
_KX_ONLY = """
redis.call('HSET', KEYS[1], 'kx', ARGV[1])
if (redis.call('HGET', KEYS[1], 'email') or '') == '' and (redis.call('HGET', KEYS[1], 'customer_id') or '') == '' then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class BadSignature(Exception):
    """A signature was sent and does not match: a misconfigured store (or a forgery), never silently used."""


@dataclass(frozen=True)
class Identity:
    email: str | None = None
    customer_id: str | None = None
    kx: str | None = None

    def __bool__(self) -> bool:
        return bool(self.email or self.customer_id or self.kx)


def _redis():  # noqa: ANN202
    from workers.queue import connect

    url = current_app.config.get("REDIS_URL")
    return connect(url) if url else None


def claimed_identity(body: Collect) -> Identity:
    """The identity this request may carry, by the signing rules; raises BadSignature for a wrong one."""
    email = str(body.email).strip().lower() if body.email else None
    customer_id = body.customer_id
    if email and body.signature:
        if not verify(email, body.signature, current_app.config["ONSITE_SECRET"]):
            raise BadSignature("signature does not match this email (HMAC-SHA256 of the lower-cased email "
                               "with the onsite secret, hex)")
    elif current_app.config.get("ONSITE_REQUIRE_SIGNED"):
        email = customer_id = None  # unsigned identities are ignored
    return Identity(email, customer_id if email or not current_app.config.get("ONSITE_REQUIRE_SIGNED") else None,
                    body.kx)


def _key(anonymous_id: str) -> str:
    return f"shoprelay:onsite:anon:{anonymous_id}"


def queue_identity(pipe: Any, anonymous_id: str, claim: Identity) -> None:
    """Queue on a Redis pipeline: read what this browser said before, then store what it says now (an email or
    customer id replaces the person and adds the browser to the person's index, for erasures; a `_kx` is added),
    so the collector needs no round trip of its own."""
    key = _key(anonymous_id)
    pipe.hgetall(key)
    if claim.email or claim.customer_id:  # when: an erasure spares browsers identified after it was asked for
        fields = {"email": claim.email or "", "customer_id": claim.customer_id or "",
                  "identified_at": f"{time.time():.3f}"} | ({"kx": claim.kx} if claim.kx else {})
        pipe.hset(key, mapping=fields)
        pipe.expire(key, ANON_TTL)
        person_index.queue_add(pipe, anonymous_id, claim.email, claim.customer_id, ANON_TTL)
    elif claim.kx:
        pipe.eval(_KX_ONLY, 1, key, claim.kx, ANON_TTL)


def identity_from(stored: dict[bytes, bytes] | None) -> Identity:
    """The Identity in what HGETALL answered."""
    stored = stored or {}
    return Identity(*((stored.get(name.encode()) or b"").decode() or None for name in ("email", "customer_id", "kx")))


def _recall(anonymous_id: str, claim: Identity) -> Identity:
    """Read and store a browser's identity in one round trip (when the caller had no pipeline to share)."""
    redis = _redis()
    if redis is None:
        return Identity()
    try:
        pipe = redis.pipeline(transaction=False)
        queue_identity(pipe, anonymous_id, claim)
        return identity_from(pipe.execute()[0])
    except RedisError:
        return Identity()


def last_claim(claims: list[Identity]) -> Identity:
    """What a batch's events, in order, leave this browser known as (what is stored for its next events)."""
    email = customer_id = kx = None
    for claim in claims:
        if claim.email or claim.customer_id:
            email, customer_id = claim.email, claim.customer_id
        kx = claim.kx or kx
    return Identity(email, customer_id, kx)


def collect(body: Collect) -> str:
    """Record one onsite event; returns what happened (for the response and the tests)."""
    return collect_many([body])[0]


def collect_many(bodies: list[Collect], claims: list[Identity] | None = None,
                 stored: Identity | None = None) -> list[str]:
    """Record one browser's batch of onsite events (what /t.js sends together) with one outbox write, one
    commit and one delivery signal; returns what happened to each, in order.

    `claims` are the events' claimed identities and `stored` what the browser was known as before the batch,
    when the caller already read them (the collector does, in the same Redis round trip as its budget).
    Raises BadSignature, before anything is stored, when any event carries a wrong signature.
    """
    claims = claims if claims is not None else [claimed_identity(body) for body in bodies]
    if stored is None:
        stored = _recall(bodies[0].anonymous_id, last_claim(claims))
    who = stored
    results: list[str] = []
    contacts: dict[tuple[str | None, str | None], Any] = {}
    pending: list[tuple[int, NewEvent, bool]] = []  # (result index, event, for Klaviyo only)
    for body, claim in zip(bodies, claims, strict=True):
        if claim.email or claim.customer_id:
            who = Identity(claim.email, claim.customer_id, claim.kx or who.kx)
        elif claim.kx:
            who = Identity(who.email, who.customer_id, claim.kx)
        if body.event == "identify":
            results.append("identified" if claim else
                           "ignored: identity not signed" if body.email else "ignored: no identity given")
            continue
        if not who:
            results.append("ignored: visitor not identified")
            continue
        key = (who.customer_id, who.email)
        if key not in contacts:
            matches = find_contact(who.customer_id, who.email, None) if who.email or who.customer_id else []
            contacts[key] = matches[0] if matches else None
        contact = contacts[key]
        person = contact_payload(contact) if contact else {"email": who.email, "customer_id": who.customer_id}
        if who.kx:
            person["_kx"] = who.kx
        activity: dict[str, Any] = {"url": body.url, "at": utcnow().isoformat(), **body.properties}
        event = NewEvent(body.event, f"{body.anonymous_id}:{body.event}:{uuid.uuid4().hex[:12]}",
                         {"activity": activity, "contact": person}, utcnow(),
                         contact_id=contact.id if contact else None)
        pending.append((len(results), event, not (who.email or who.customer_id or contact)))
        results.append("")
    if pending:
        _write(pending, results)
    return results


def _write(pending: list[tuple[int, NewEvent, bool]], results: list[str]) -> None:
    """The batch's events into the outbox (a `_kx`-only visitor's to Klaviyo destinations only)."""
    targets = active_targets()
    klaviyo = klaviyo_destination_ids() if any(only for _, _, only in pending) else frozenset()
    touched: set[int] = set()
    for only_klaviyo in (False, True):
        events = [(index, event) for index, event, only in pending if only is only_klaviyo]
        chosen = [target for target in targets if target.id in klaviyo] if only_klaviyo else targets
        if events:
            touched |= write_events([event for _, event in events], chosen)
        for index, event in events:
            taken = any(event.name in target.accepts for target in chosen)
            results[index] = "recorded" if taken else "ignored: no destination takes this event"
    db.session.commit()
    signal_destinations(touched, targets)


def klaviyo_destination_ids() -> frozenset[int]:
    """Enabled Klaviyo destinations (read only for `_kx`-only events, which are few)."""
    table = Destination.__table__
    return frozenset(db.session.scalars(sa.select(table.c.id).where(table.c.kind == "klaviyo", table.c.enabled)))

"""Destinations: create/update with encrypted credentials, pause/resume, test connection."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx

from webapp.extensions import db
from webapp.models import Destination, utcnow
from webapp.schemas.destinations import (
    DestinationCreate,
    DestinationUpdate,
    credential_names,
    credential_problem,
)
from webapp.schemas.errors import ApiError, problem
from webapp.services.platform.crypto import decrypt_json, encrypt_json, redact
from webapp.services.platform.jsonutil import iso
from webapp.services.platform.outbound_http import outbound_client


def adapter_class(kind: str):  # noqa: ANN201
    from workers.destinations import get_adapter_class  # pure adapter metadata, imports nothing from webapp

    return get_adapter_class(kind)


def kinds() -> dict[str, Any]:
    from workers.destinations import adapter_classes

    return adapter_classes()


def _problems(kind: str, data: DestinationUpdate, credentials: dict[str, str],
              creating: bool) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(invalid, conflicts): what no destination kind takes, which the OpenAPI document refuses in any body, and
    what only `kind` refuses, which a PATCH body (it does not carry the kind) cannot show as wrong by itself."""
    cls, takes = adapter_class(kind), credential_names()
    invalid: list[dict[str, str]] = []
    conflicts: list[dict[str, str]] = []
    for name, value in (data.credentials or {}).items():
        path = ["credentials", name]
        owners = [other for other, names in takes.items() if name in names]
        if not owners:
            invalid.append(problem(path, f"unknown credential ({cls.label} takes: {', '.join(takes[kind])})"))
        elif not value:  # blank (values are stripped): no kind takes it; leave a credential out to keep it
            required = creating and name in cls.credential_fields
            invalid.append(problem(path, f"required for {cls.label}" if required else "must not be empty"))
        else:
            found = {other: credential_problem(other, name, value) for other in owners}
            if kind in found and found[kind] is None:
                continue
            fits_another = any(why is None for why in found.values())  # e.g. an eSputnik key on a Klaviyo one
            if kind in found:
                message = _checker_message(cls, name, value) or found[kind]
            elif creating or fits_another:
                message = f"{cls.label} does not take this credential (it takes: {', '.join(takes[kind])})"
            else:
                message = next(iter(found.values()))  # the shape every kind that takes it asks for
            (conflicts if fits_another else invalid).append(problem(path, message))
    given = data.credentials or {}
    for name in cls.credential_fields:
        if not credentials.get(name) and name not in given:  # on a PATCH: the stored one is there
            (invalid if creating else conflicts).append(problem(["credentials", name], f"required for {cls.label}"))
    if data.catalog == "api" and kind == "esputnik":
        conflicts.append(problem(["catalog"], "eSputnik takes no product data from shoprelay; leave the catalog off"))
    if data.events is not None:
        unsupported = [name for name in data.events if name not in cls.supported_events]
        if unsupported:
            conflicts.append(problem(["events"], f"{cls.label} does not take: {', '.join(unsupported)}"))
    return invalid, conflicts


def _checker_message(cls: Any, name: str, value: str) -> str | None:  # noqa: ANN401
    checker = getattr(cls, "credential_problems", None)  # e.g. why a webhook's whsec_ secret is not base64
    return checker({name: value}).get(name) if checker is not None else None


def _check(kind: str, data: DestinationUpdate, credentials: dict[str, str], *, creating: bool) -> None:
    """Refuse what the kind cannot take. A create's body names its kind, so its document says everything: 422.
    An update's says only what no kind takes (422); what this destination's kind alone refuses is a conflict
    with what the server holds (409), which the document states for a PATCH in words."""
    invalid, conflicts = _problems(kind, data, credentials, creating)
    if invalid or (creating and conflicts):
        raise ApiError(422, invalid + conflicts)
    if conflicts:
        raise ApiError(409, conflicts)


def create_destination(data: DestinationCreate) -> Destination:
    _check(data.kind, data, data.credentials, creating=True)
    cls = adapter_class(data.kind)
    limits = dict(cls.default_rate_limits)
    bulk = getattr(cls, "bulk_rate_limits", None) or {}
    limits |= {f"bulk_{key}": value for key, value in bulk.items()}
    if data.rate_limits:
        limits |= data.rate_limits.model_dump(exclude_none=True)
    destination = Destination(
        name=data.name, kind=data.kind, credentials_encrypted=encrypt_json(data.credentials),
        base_url=data.base_url, mode=data.mode, batch_interval_minutes=data.batch_interval_minutes,
        events=data.events or [], enabled=data.enabled, rate_limits=limits, settings=data.settings or {},
        catalog=data.catalog, last_batch_at=utcnow() if data.mode == "batch" else None)  # a batch one waits
    db.session.add(destination)
    db.session.commit()
    return destination


def update_destination(destination: Destination, data: DestinationUpdate) -> Destination:
    stored = decrypt_json(destination.credentials_encrypted)
    _check(destination.kind, data, stored | (data.credentials or {}), creating=False)
    credentials = None if data.credentials is None else stored | data.credentials
    empty = {"events": [], "settings": {}}  # null clears these back to "all events" / no settings
    for name in ("name", "base_url", "mode", "batch_interval_minutes", "events", "enabled", "settings", "catalog"):
        if name in data.model_fields_set:
            value = getattr(data, name)
            if value is None and name in ("name", "mode", "batch_interval_minutes", "enabled", "catalog"):
                continue  # required fields: null means "leave as is"
            setattr(destination, name, value if value is not None else empty.get(name))
    if data.mode == "batch" and destination.last_batch_at is None:
        destination.last_batch_at = utcnow()
    if data.rate_limits is not None:
        destination.rate_limits = dict(destination.rate_limits or {}) | data.rate_limits.model_dump(
            exclude_none=True)
    if credentials is not None:
        destination.credentials_encrypted = encrypt_json(credentials)
    db.session.commit()
    return destination


def pause_destination(destination: Destination, reason: str = "paused by a user") -> None:
    destination.paused_at = destination.paused_at or utcnow()
    destination.pause_reason = reason
    db.session.commit()


def resume_destination(destination: Destination) -> None:
    """Resume: the backlog drains at the rate limit (events are never dropped while paused)."""
    destination.paused_at = None
    destination.pause_reason = None
    destination.failing_since = None
    db.session.commit()
    signal_delivery(destination.id)


def signal_delivery(destination_id: int) -> None:
    from flask import current_app

    from workers.queue import JOB_DELIVER, deliver_signal_key, safe_signal

    safe_signal(current_app.config.get("REDIS_URL"), "delivery", JOB_DELIVER, deliver_signal_key(destination_id),
                destination_id)


def destination_json(destination: Destination) -> dict[str, Any]:
    """Credentials are write-only: never returned, only which fields are set."""
    from webapp.services.delivery.queries import event_counts

    counts = {state: count for state, count in event_counts([destination.id])[destination.id].items() if count}
    credentials = decrypt_json(destination.credentials_encrypted)
    return {
        "id": destination.id, "name": destination.name, "kind": destination.kind,
        "credentials_set": sorted(key for key, value in credentials.items() if value),
        "base_url": destination.base_url, "mode": destination.mode,
        "batch_interval_minutes": destination.batch_interval_minutes,
        "events": destination.events or sorted(adapter_class(destination.kind).supported_events),
        "enabled": destination.enabled, "rate_limits": destination.rate_limits,
        "settings": destination.settings, "paused": destination.paused_at is not None,
        "paused_at": iso(destination.paused_at), "pause_reason": destination.pause_reason,
        "last_success_at": iso(destination.last_success_at), "event_counts": counts,
        "rate_limited_until": iso(rate_limited_until(destination)), "catalog": destination.catalog,
    }


def rate_limited_until(destination: Destination, now: datetime | None = None) -> datetime | None:
    """When the platform's "wait" (429, 503 with Retry-After) ends, while it lasts; None otherwise."""
    until = destination.rate_limited_until
    return until if until is not None and until > (now or datetime.now(UTC)) else None


def test_connection(destination: Destination, timeout: float = 10.0) -> dict[str, Any]:
    """A harmless authenticated call; the platform's answer (secrets redacted) for the user to read."""
    cls = adapter_class(destination.kind)
    adapter = cls(decrypt_json(destination.credentials_encrypted), destination.base_url, destination.settings)
    request = adapter.test_request()
    if (until := rate_limited_until(destination)) is not None:  # the platform said wait: not even a test
        return {"ok": False, "status": None, "duration_ms": 0, "url": redact(request.url, adapter.secrets()),
                "message": f"Not sent: the platform asked to wait until {iso(until)} (rate limited)."}
    started = time.perf_counter()
    try:
        with outbound_client(timeout, follow_redirects=False) as client:  # the URL guard, as deliveries have
            response = client.request(request.method, request.url, headers=request.headers, auth=request.auth,
                                      content=request.content,
                                      json=request.json if request.content is None else None)
        status, body = response.status_code, response.content
        classification = adapter.classify(status, dict(response.headers), body)
        error = None
    except httpx.HTTPError as exc:
        status, body, error = None, b"", f"{type(exc).__name__}: {exc}"
        classification = adapter.classify(None, {}, b"", error)
    return {"ok": classification.outcome.value == "delivered", "status": status,
            "duration_ms": int((time.perf_counter() - started) * 1000),
            "message": redact(classification.message or error or "", adapter.secrets())[:1000],
            "url": redact(request.url, adapter.secrets())}

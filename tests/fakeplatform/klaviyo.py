"""Fake Klaviyo (served under /klaviyo): auth, revision, validation, Klaviyo-like de-duplication.

The Catalogs API (items, variants, categories, their bulk jobs, back in stock) is in klaviyo_catalog.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tests.fakeplatform import klaviyo_catalog as catalog
from tests.fakeplatform import klaviyo_rules as rules
from tests.fakeplatform.klaviyo_rules import MEDIA_TYPE, Invalid
from tests.fakeplatform.records import NOT_JSON, Incoming, KlaviyoEvent, Reply

if TYPE_CHECKING:
    from tests.fakeplatform.server import FakePlatform

KIND = "klaviyo"
REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.pre)?$")
# (burst per second, steady per minute) per path, from reference/platforms.md §2–4
LIMITS = {"/api/events": (350, 3500), "/api/event-bulk-create-jobs": (10, 150), "/api/accounts": (1, 15),
          "/api/back-in-stock-subscriptions": (350, 3500), "/api/data-privacy-deletion-jobs": (3, 60)}
DEFAULT_LIMIT = (75, 750)
CODES = {400: "invalid", 401: "authentication_failed", 403: "permission_denied", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 429: "throttled"}
TITLES = {400: "Invalid input.", 401: "Incorrect authentication credentials.", 404: "Not found.",
          405: "Method not allowed.", 429: "Throttled."}


def error_reply(status: int, detail: str, code: str | None = None, pointer: str | None = "/data",
                parameter: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    """Klaviyo's JSON:API error document."""
    source = {"parameter": parameter} if parameter else {"pointer": pointer or "/data"}
    error = {"id": str(uuid.uuid4()), "status": status, "code": code or CODES.get(status, "error"),
             "title": TITLES.get(status, "A server error occurred." if status >= 500 else "Error."),
             "detail": detail, "source": source, "meta": {}}
    return Reply.json(status, {"errors": [error]}, {"Content-Type": MEDIA_TYPE, **(headers or {})})


def throttled_reply(retry_after: float) -> Reply:
    """429 with Retry-After and, like Klaviyo, none of the RateLimit-* headers."""
    seconds = math.ceil(retry_after)
    return error_reply(429, f"Request was throttled. Expected available in {seconds} seconds.",
                       headers={"Retry-After": str(seconds)})


def unauthorized_reply() -> Reply:
    return error_reply(401, "Missing or invalid private key.", pointer="/data/")


def handle(request: Incoming, fake: FakePlatform) -> Reply:
    reply = _answer(request, fake)
    if reply.status != 429:
        reply.headers.update(_rate_limit_headers(request.path, fake))
    return reply


def _answer(request: Incoming, fake: FakePlatform) -> Reply:
    if fake.faults.auth_broken(KIND) or request.headers.get("authorization") != f"Klaviyo-API-Key {fake.klaviyo_key}":
        return unauthorized_reply()
    try:
        _check_revision(request.headers.get("revision"), fake.klaviyo_min_revision)
        if request.method == "GET":
            return _get(request, fake)
        route = rules.ROUTES.get(request.path)
        if route is None:
            return error_reply(404, f"{request.path} is not a Klaviyo API path.")
        if request.method != "POST":
            return error_reply(405, f'Method "{request.method}" not allowed.')
        body = _checked_body(request, route)
        if request.path in catalog.POST_HANDLERS:
            return catalog.POST_HANDLERS[request.path](body, route, fake, request)
        return POST_HANDLERS[request.path](body, route, fake)
    except Invalid as invalid:
        return error_reply(invalid.status, invalid.detail, invalid.code, invalid.pointer, invalid.parameter,
                           invalid.headers)


def _check_revision(revision: str | None, minimum: str) -> None:
    if not revision:
        raise Invalid("Missing required header 'revision'.", parameter="revision")
    if not REVISION.match(revision) or revision < minimum:
        raise Invalid(f"Invalid or unsupported revision '{revision}'.", parameter="revision")


def _checked_body(request: Incoming, route: rules.Route) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != MEDIA_TYPE:
        raise Invalid(f"Content-Type must be {MEDIA_TYPE}, got '{content_type}'.", parameter="Content-Type")
    if len(request.body) > route.max_bytes:
        raise Invalid(f"Payload is {len(request.body)} bytes; at most {route.max_bytes} are allowed.")
    body = request.json()
    if body is NOT_JSON or not isinstance(body, dict):
        raise Invalid("The request body is not a JSON object.", pointer="/")
    rules.validate_with_model(route.model, body)
    return body


def _get(request: Incoming, fake: FakePlatform) -> Reply:
    path = request.path
    if path.startswith("/api/catalog-"):
        return catalog.get(request, fake)
    if path == "/api/accounts":
        account = {"type": "account", "id": "FAKE01", "attributes": {
            "test_account": True, "public_api_key": "FAKE01",
            "contact_information": {"organization_name": "Fake Store", "default_sender_email": "shop@example.com"}}}
        return Reply.json(200, {"data": [account]}, {"Content-Type": MEDIA_TYPE})
    prefix, _, job_id = path.rpartition("/")
    with fake.lock:
        route = rules.ROUTES.get(prefix)
        job = next((j for j in fake.klaviyo_jobs if route and j["id"] == job_id and j["type"] == route.job_type), None)
    if job is None:
        return error_reply(404, f"{path} was not found.")
    return Reply.json(200, {"data": job}, {"Content-Type": MEDIA_TYPE})


def _rate_limit_headers(path: str, fake: FakePlatform) -> dict[str, str]:
    """RateLimit-* headers from a fixed one-second window per path (what Klaviyo sends on non-429s)."""
    burst, steady = LIMITS.get(path, DEFAULT_LIMIT)
    key = _window_key(path)
    now = time.time()
    second = int(now)
    with fake.lock:
        start, count = fake.klaviyo_window.get(key, (second, 0))
        count = count + 1 if start == second else 1
        fake.klaviyo_window[key] = (second, count)
    return {"RateLimit-Limit": f"{burst}, {burst};w=1, {steady};w=60",
            "RateLimit-Remaining": str(max(0, burst - count)),
            "RateLimit-Reset": str(max(1, math.ceil(second + 1 - now)))}


def _window_key(path: str) -> str:
    """One window per endpoint: `/api/catalog-items/<id>` and `/api/…-jobs/<id>` count with their collection."""
    prefix = path.rpartition("/")[0]
    return prefix if prefix in rules.ROUTES or prefix in catalog.COLLECTIONS else path


# --- POST handlers: the body already passed the SDK model -------------------------------------


def _event(identity: tuple[str, str], profile: dict[str, Any], attributes: dict[str, Any],
           pointer: str) -> KlaviyoEvent:
    name = attributes["metric"]["data"]["attributes"]["name"]
    if not name or len(name) >= 128:
        raise Invalid("Metric name must be 1 to 127 characters.", f"{pointer}/metric/data/attributes/name")
    if len(attributes["properties"]) > 400:
        raise Invalid("At most 400 event properties are allowed.", f"{pointer}/properties")
    unique_id = attributes.get("unique_id")
    if unique_id is None:  # Klaviyo falls back to the timestamp: one event per profile+metric per second
        unique_id = _second(attributes.get("time"))
    return KlaviyoEvent(metric=name, identity=identity, unique_id=str(unique_id),
                        profile=profile.get("attributes") or {}, properties=attributes["properties"],
                        value=attributes.get("value"), value_currency=attributes.get("value_currency"),
                        time=attributes.get("time"), backfill=bool(attributes.get("backfill")))


def _second(timestamp: str | None) -> str:
    if not timestamp:
        return str(int(time.time()))
    try:
        parsed = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return str(int(parsed.timestamp()))


def _create_event(body: dict[str, Any], route: rules.Route, fake: FakePlatform) -> Reply:
    attributes = body["data"]["attributes"]
    profile = attributes["profile"]["data"]
    identity = rules.require_identity(profile, "/data/attributes/profile/data")
    event = _event(identity, profile, attributes, "/data/attributes")
    with fake.lock:
        fake.keep_klaviyo_event(event)
    return Reply(202)


def _bulk_events(body: dict[str, Any], route: rules.Route, fake: FakePlatform) -> Reply:
    entries = body["data"]["attributes"]["events-bulk-create"]["data"]
    base = "/data/attributes/events-bulk-create/data"
    events = [
        _event(identity, entries[i]["attributes"]["profile"]["data"], attributes,
               f"{base}/{i}/attributes/events/data/{j}/attributes")
        for identity, attributes, i, j in rules.bulk_event_entries(body)
    ]
    with fake.lock:
        for event in events:
            fake.keep_klaviyo_event(event)
    return _job_reply(route, len(events), 0, fake)


def _profile_import(body: dict[str, Any], route: rules.Route, fake: FakePlatform) -> Reply:
    data = body["data"]
    identity = rules.require_identity(data, "/data/attributes")
    with fake.lock:
        existing = fake.klaviyo_profiles.get(identity)
        profile = existing or {"type": "profile", "id": uuid.uuid4().hex[:26].upper(), "attributes": {}}
        for key, value in (data.get("attributes") or {}).items():
            if value is None:  # null clears a field, an omitted one stays unchanged
                profile["attributes"].pop(key, None)
            else:
                profile["attributes"][key] = value
        fake.klaviyo_profiles[identity] = profile
    return Reply.json(200 if existing else 201, {"data": profile}, {"Content-Type": MEDIA_TYPE})


def _subscriptions(body: dict[str, Any], route: rules.Route, fake: FakePlatform) -> Reply:
    attributes = body["data"]["attributes"]
    profiles = attributes["profiles"]["data"]
    pointer = "/data/attributes/profiles/data"
    rules.check_item_count(profiles, rules.MAX_SUBSCRIPTION_PROFILES, pointer)
    list_data = ((body["data"].get("relationships") or {}).get("list") or {}).get("data") or {}
    action = "unsubscribe" if route.job_type.endswith("delete-job") else "subscribe"
    records = []
    for index, profile in enumerate(profiles):
        profile_attributes = profile.get("attributes") or {}
        if not (profile_attributes.get("email") or profile_attributes.get("phone_number")):
            raise Invalid("Each profile needs an email or a phone_number.", f"{pointer}/{index}/attributes")
        channels = profile_attributes.get("subscriptions") or {}
        phone = profile_attributes.get("phone_number")
        if phone is not None and not rules.E164.match(phone):
            raise Invalid(f"Invalid phone number format (Example of a valid format: +12345678901): {phone!r}.",
                          f"{pointer}/{index}/attributes/phone_number")
        if "sms" in channels and not phone:
            raise Invalid("An SMS subscription needs a phone_number.", f"{pointer}/{index}/attributes")
        if "email" in channels and not profile_attributes.get("email"):
            raise Invalid("An email subscription needs an email.", f"{pointer}/{index}/attributes")
        if not attributes.get("historical_import") and _has_consented_at(channels):
            raise Invalid("consented_at may only be given with historical_import.",
                          f"{pointer}/{index}/attributes/subscriptions")
        records.append({"action": action, "list_id": list_data.get("id"), "profile": profile_attributes,
                        "historical_import": bool(attributes.get("historical_import"))})
    with fake.lock:
        fake.klaviyo_subscriptions.extend(records)
    return _job_reply(route, len(records), 0, fake)


def _has_consented_at(channels: dict[str, Any]) -> bool:
    return any((kinds or {}).get(kind, {}).get("consented_at") for kinds in channels.values()
               for kind in ("marketing", "transactional") if isinstance(kinds, dict))


def _privacy_deletion(body: dict[str, Any], route: rules.Route, fake: FakePlatform) -> Reply:
    """202 and an empty body, as Klaviyo answers; the profile and everything about it go at once."""
    who = body["data"]["attributes"]["profile"]["data"].get("attributes") or {}
    named = [(name, who[name]) for name in ("email", "phone_number") if who.get(name)]
    if len(named) != 1:
        raise Invalid("Exactly one of email, phone_number or id identifies the profile to delete.",
                      "/data/attributes/profile/data/attributes")
    name, value = named[0]
    with fake.lock:
        fake.klaviyo_deletions.append({name: value})
        fake.forget_klaviyo_person(name, value)
    return Reply(202)


def _job_reply(route: rules.Route, total: int, failed: int, fake: FakePlatform) -> Reply:
    """202 with a job resource; the fake does the work at once, so the job is already complete."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    job = {"type": route.job_type, "id": uuid.uuid4().hex,
           "attributes": {"status": "complete", "total_count": total, "completed_count": total - failed,
                          "failed_count": failed, "created_at": now, "completed_at": now, "errors": []}}
    with fake.lock:
        fake.klaviyo_jobs.append(job)
    return Reply.json(202, {"data": job}, {"Content-Type": MEDIA_TYPE})


POST_HANDLERS = {
    "/api/events": _create_event,
    "/api/event-bulk-create-jobs": _bulk_events,
    "/api/profile-import": _profile_import,
    "/api/profile-subscription-bulk-create-jobs": _subscriptions,
    "/api/profile-subscription-bulk-delete-jobs": _subscriptions,
    "/api/data-privacy-deletion-jobs": _privacy_deletion,
}

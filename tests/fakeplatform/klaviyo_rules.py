"""Klaviyo request validation: the official SDK's pydantic models plus the documented rules they miss.

The SDK models (`openapi_client.models`) check shapes and strict types but silently drop
unknown keys and do not enforce identifiers, counts, sizes or bulk `unique_id` clashes
(see reference/platforms.md §3–5); those rules live here.
"""

from __future__ import annotations

from typing import Any

import pydantic
from openapi_client.models.catalog_item_create_job_create_query import CatalogItemCreateJobCreateQuery
from openapi_client.models.catalog_item_delete_job_create_query import CatalogItemDeleteJobCreateQuery
from openapi_client.models.catalog_item_update_job_create_query import CatalogItemUpdateJobCreateQuery
from openapi_client.models.event_create_query_v2 import EventCreateQueryV2
from openapi_client.models.events_bulk_create_job import EventsBulkCreateJob
from openapi_client.models.profile_upsert_query import ProfileUpsertQuery
from openapi_client.models.subscription_create_job_create_query import SubscriptionCreateJobCreateQuery
from openapi_client.models.subscription_delete_job_create_query import SubscriptionDeleteJobCreateQuery

MB = 1024 * 1024
MAX_BULK_EVENTS = 1000
MAX_SUBSCRIPTION_PROFILES = 1000
MAX_CATALOG_ITEMS = 100
IDENTIFIERS = ("email", "phone_number", "external_id", "anonymous_id", "_kx")


class Route:
    """What one Klaviyo POST path accepts."""

    def __init__(self, model: type[pydantic.BaseModel], max_bytes: int, job_type: str | None) -> None:
        self.model = model
        self.max_bytes = max_bytes
        self.job_type = job_type  # the job resource type answered, None for non-job endpoints


ROUTES: dict[str, Route] = {
    "/api/events": Route(EventCreateQueryV2, 5 * MB, None),
    "/api/event-bulk-create-jobs": Route(EventsBulkCreateJob, 5 * MB, "event-bulk-create-job"),
    "/api/profile-import": Route(ProfileUpsertQuery, 100 * 1024, None),
    "/api/profile-subscription-bulk-create-jobs": Route(
        SubscriptionCreateJobCreateQuery, 5 * MB, "profile-subscription-bulk-create-job"
    ),
    "/api/profile-subscription-bulk-delete-jobs": Route(
        SubscriptionDeleteJobCreateQuery, 5 * MB, "profile-subscription-bulk-delete-job"
    ),
    "/api/catalog-item-bulk-create-jobs": Route(
        CatalogItemCreateJobCreateQuery, 5 * MB, "catalog-item-bulk-create-job"
    ),
    "/api/catalog-item-bulk-update-jobs": Route(
        CatalogItemUpdateJobCreateQuery, 5 * MB, "catalog-item-bulk-update-job"
    ),
    "/api/catalog-item-bulk-delete-jobs": Route(
        CatalogItemDeleteJobCreateQuery, 5 * MB, "catalog-item-bulk-delete-job"
    ),
}


class Invalid(Exception):
    """A request Klaviyo would refuse; carries what goes into the JSON:API error object."""

    def __init__(self, detail: str, pointer: str | None = "/data", parameter: str | None = None,
                 status: int = 400, code: str = "invalid") -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter
        self.status = status
        self.code = code


def pointer_of(parts: list[Any]) -> str:
    """A JSON pointer (RFC 6901) from path parts."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def validate_with_model(model: type[pydantic.BaseModel], body: Any) -> None:
    """Parse with the SDK model, then refuse keys the model would have silently dropped."""
    try:
        parsed = model.from_dict(body)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise _located(model, body, error) from None
    if parsed is None:
        raise Invalid("The request body must be a JSON:API document with 'data'.")
    # `to_dict()` is `model_dump(by_alias=True, exclude_none=True)` plus enum/None touch-ups; the plain
    # dump keeps the same keys (and known keys sent as null) and is ~7x faster on a 1000-event bulk body.
    unknown = _first_unknown_key(body, parsed.model_dump(by_alias=True))
    if unknown is not None:
        raise Invalid(f"'{unknown[-1]}' is not a valid field for this resource.", pointer_of(unknown))


def _located(model: type[pydantic.BaseModel], body: Any, error: Exception) -> Invalid:
    """Turn an SDK error into one with a pointer into the body (the SDK's own locations are relative)."""
    try:
        model.model_validate(body)
    except pydantic.ValidationError as full:
        first = full.errors()[0]
        parts = _body_path(body, first["loc"])
        return Invalid(f"{first['msg']} at {pointer_of(parts)}.", pointer_of(parts))
    return Invalid(str(error).splitlines()[0])


def _body_path(body: Any, loc: tuple[Any, ...]) -> list[Any]:
    """Keep the parts of a pydantic location that are real keys/indexes of the body (drops union tags)."""
    parts: list[Any] = []
    current = body
    for part in loc:
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and part < len(current)
        if in_dict or in_list:
            current = current[part]
        elif isinstance(current, dict) and isinstance(part, str):
            parts.append(part)  # a missing required key: point at where it should be
            break
        else:
            break
        parts.append(part)
    return parts


def _first_unknown_key(sent: Any, known: Any) -> list[Any] | None:
    """The path of the first key in `sent` that the parsed model did not keep (an unknown key)."""
    if isinstance(sent, dict) and isinstance(known, dict):
        for key, value in sent.items():
            if key not in known:
                return [key]
            if isinstance(value, dict | list):
                found = _first_unknown_key(value, known[key])
                if found is not None:
                    return [key, *found]
    elif isinstance(sent, list) and isinstance(known, list):
        for index, (item, kept) in enumerate(zip(sent, known, strict=False)):
            if isinstance(item, dict | list):
                found = _first_unknown_key(item, kept)
                if found is not None:
                    return [index, *found]
    return None


def profile_identity(profile_data: dict[str, Any]) -> tuple[str, str] | None:
    """How Klaviyo would resolve a profile: by id, else the first identifier present."""
    if profile_data.get("id"):
        return ("id", str(profile_data["id"]))
    attributes = profile_data.get("attributes") or {}
    for name in IDENTIFIERS:
        value = attributes.get(name)
        if value:
            return (name, value.strip().lower() if name == "email" else str(value))
    return None


def require_identity(profile_data: dict[str, Any], pointer: str) -> tuple[str, str]:
    identity = profile_identity(profile_data)
    if identity is None:
        raise Invalid(
            "A profile identifier is required (id, email, phone_number, external_id, anonymous_id or _kx).",
            pointer,
        )
    return identity


def bulk_event_entries(body: dict[str, Any]) -> list[tuple[tuple[str, str], dict[str, Any], int, int]]:
    """(identity, event attributes, entry index, event index) of a valid bulk body.

    Enforces ≤ 1000 events and refuses the whole request when a unique_id repeats for
    the same profile and metric, as the spec says for this endpoint.
    """
    entries = body["data"]["attributes"]["events-bulk-create"]["data"]
    base = "/data/attributes/events-bulk-create/data"
    out = []
    seen: set[tuple[tuple[str, str], str, str]] = set()
    for i, entry in enumerate(entries):
        attributes = entry["attributes"]
        identity = require_identity(attributes["profile"]["data"], f"{base}/{i}/attributes/profile/data")
        for j, event in enumerate(attributes["events"]["data"]):
            event_attributes = event["attributes"]
            out.append((identity, event_attributes, i, j))
            if len(out) > MAX_BULK_EVENTS:
                raise Invalid(f"At most {MAX_BULK_EVENTS} events are allowed per request.",
                              "/data/attributes/events-bulk-create/data")
            unique_id = event_attributes.get("unique_id")
            if unique_id is None:
                continue
            key = (identity, event_attributes["metric"]["data"]["attributes"]["name"], unique_id)
            if key in seen:
                raise Invalid(
                    f"unique_id '{unique_id}' is repeated for the same profile and metric; no events were processed.",
                    f"{base}/{i}/attributes/events/data/{j}/attributes/unique_id",
                )
            seen.add(key)
    return out


def check_item_count(items: list[Any], limit: int, pointer: str) -> None:
    if len(items) > limit:
        raise Invalid(f"At most {limit} items are allowed per request; got {len(items)}.", pointer)

"""Klaviyo request validation: the official SDK's pydantic models plus the documented rules they miss.

The SDK models (`openapi_client.models`) check shapes and strict types but silently drop
unknown keys and do not enforce identifiers, counts, sizes or bulk `unique_id` clashes
(see reference/platforms.md §2–5, §9); those rules live here.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pydantic
from openapi_client.models.catalog_category_create_job_create_query import CatalogCategoryCreateJobCreateQuery
from openapi_client.models.catalog_category_delete_job_create_query import CatalogCategoryDeleteJobCreateQuery
from openapi_client.models.catalog_category_update_job_create_query import CatalogCategoryUpdateJobCreateQuery
from openapi_client.models.catalog_item_create_job_create_query import CatalogItemCreateJobCreateQuery
from openapi_client.models.catalog_item_delete_job_create_query import CatalogItemDeleteJobCreateQuery
from openapi_client.models.catalog_item_update_job_create_query import CatalogItemUpdateJobCreateQuery
from openapi_client.models.catalog_variant_create_job_create_query import CatalogVariantCreateJobCreateQuery
from openapi_client.models.catalog_variant_delete_job_create_query import CatalogVariantDeleteJobCreateQuery
from openapi_client.models.catalog_variant_update_job_create_query import CatalogVariantUpdateJobCreateQuery
from openapi_client.models.data_privacy_create_deletion_job_query import DataPrivacyCreateDeletionJobQuery
from openapi_client.models.event_create_query_v2 import EventCreateQueryV2
from openapi_client.models.events_bulk_create_job import EventsBulkCreateJob
from openapi_client.models.profile_upsert_query import ProfileUpsertQuery
from openapi_client.models.server_bis_subscription_create_query import ServerBISSubscriptionCreateQuery
from openapi_client.models.subscription_create_job_create_query import SubscriptionCreateJobCreateQuery
from openapi_client.models.subscription_delete_job_create_query import SubscriptionDeleteJobCreateQuery

MEDIA_TYPE = "application/vnd.api+json"
MB = 1024 * 1024
MAX_BULK_EVENTS = 1000
MAX_SUBSCRIPTION_PROFILES = 1000
MAX_CATALOG_ENTRIES = 100
MAX_CUSTOM_METADATA = 100 * 1024
IDENTIFIERS = ("email", "phone_number", "external_id", "anonymous_id", "_kx")
BIS_CHANNELS = ("EMAIL", "SMS")
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# the key that holds a catalog job's entries under data.attributes, per resource kind
CATALOG_ENTRY_KEYS = {"item": "items", "variant": "variants", "category": "categories"}
CATALOG_JOB_MODELS: dict[tuple[str, str], type[pydantic.BaseModel]] = {
    ("item", "create"): CatalogItemCreateJobCreateQuery,
    ("item", "update"): CatalogItemUpdateJobCreateQuery,
    ("item", "delete"): CatalogItemDeleteJobCreateQuery,
    ("variant", "create"): CatalogVariantCreateJobCreateQuery,
    ("variant", "update"): CatalogVariantUpdateJobCreateQuery,
    ("variant", "delete"): CatalogVariantDeleteJobCreateQuery,
    ("category", "create"): CatalogCategoryCreateJobCreateQuery,
    ("category", "update"): CatalogCategoryUpdateJobCreateQuery,
    ("category", "delete"): CatalogCategoryDeleteJobCreateQuery,
}


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
    **{f"/api/catalog-{kind}-bulk-{action}-jobs": Route(model, 5 * MB, f"catalog-{kind}-bulk-{action}-job")
       for (kind, action), model in CATALOG_JOB_MODELS.items()},
    "/api/back-in-stock-subscriptions": Route(ServerBISSubscriptionCreateQuery, 5 * MB, None),
    "/api/data-privacy-deletion-jobs": Route(DataPrivacyCreateDeletionJobQuery, 100 * 1024, None),
}


class Invalid(Exception):
    """A request Klaviyo would refuse; carries what goes into the JSON:API error object."""

    def __init__(self, detail: str, pointer: str | None = "/data", parameter: str | None = None,
                 status: int = 400, code: str = "invalid", headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter
        self.status = status
        self.code = code
        self.headers = headers or {}


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


def check_item_count(items: list[Any], limit: int, pointer: str, noun: str = "items") -> None:
    if len(items) > limit:
        raise Invalid(f"At most {limit} {noun} are allowed per request; got {len(items)}.", pointer)


def check_catalog_entries(entries: list[dict[str, Any]], kind: str, action: str) -> None:
    """What Klaviyo refuses for a whole catalog job and the SDK lets through: the count, a catalog
    other than `$default`, custom_metadata over 100 KB, a variant without its item."""
    pointer = f"/data/attributes/{CATALOG_ENTRY_KEYS[kind]}/data"
    check_item_count(entries, MAX_CATALOG_ENTRIES, pointer, CATALOG_ENTRY_KEYS[kind])
    for index, entry in enumerate(entries):
        at = f"{pointer}/{index}"
        attributes = entry.get("attributes") or {}
        if attributes.get("catalog_type") not in (None, "$default"):
            raise Invalid("catalog_type must be '$default', the only catalog Klaviyo supports.",
                          f"{at}/attributes/catalog_type")
        metadata = attributes.get("custom_metadata")
        if metadata is not None and len(orjson.dumps(metadata)) > MAX_CUSTOM_METADATA:
            raise Invalid("custom_metadata may not exceed 100 KB.", f"{at}/attributes/custom_metadata")
        if kind == "variant" and action == "create" and not entry["relationships"]["item"].get("data"):
            raise Invalid("A catalog variant needs its item in relationships.item.data.",
                          f"{at}/relationships/item/data")


def bis_subscription(body: dict[str, Any]) -> tuple[dict[str, Any], list[str], str]:
    """(profile attributes, channels, variant id) of a valid back-in-stock body; refuses what the SDK
    allows but Klaviyo does not: no profile identifier, a phone not in E.164, no or unsupported channels."""
    data = body["data"]
    channels = data["attributes"]["channels"]
    if not channels:
        raise Invalid("At least one channel (EMAIL or SMS) is required.", "/data/attributes/channels")
    for index, channel in enumerate(channels):
        if channel not in BIS_CHANNELS:
            raise Invalid(f"Channel '{channel}' is not supported; use EMAIL or SMS.",
                          f"/data/attributes/channels/{index}")
    profile = (data["attributes"].get("profile") or {}).get("data")
    if not profile:
        raise Invalid("A profile is required.", "/data/attributes/profile")
    attributes = profile.get("attributes") or {}
    _check_contact(attributes, "/data/attributes/profile/data/attributes")
    variant_id = (data["relationships"]["variant"].get("data") or {}).get("id")
    if not variant_id:
        raise Invalid("A catalog variant id is required.", "/data/relationships/variant/data/id")
    return attributes, channels, variant_id


def _check_contact(attributes: dict[str, Any], pointer: str) -> None:
    email, phone = attributes.get("email"), attributes.get("phone_number")
    if not (email or phone):
        raise Invalid("The profile needs an email or a phone_number.", pointer)
    if email and not EMAIL.match(email):
        raise Invalid(f"'{email}' is not a valid email address.", f"{pointer}/email")
    if phone and not E164.match(phone):
        raise Invalid(f"phone_number '{phone}' is not in E.164 format (e.g. +15005550006).",
                      f"{pointer}/phone_number")

"""Fake Klaviyo Catalogs API: bulk jobs for items, variants and categories, listings, back in stock.

A job applies its entries only when it completes (after `klaviyo_job_polls` GETs answered
"processing"), one by one against what the catalog holds then, as Klaviyo's asynchronous jobs do:
an entry that fails is reported in the job's `errors` and the others still apply.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote

from openapi_client.models.catalog_category_response_object_resource_attributes import (
    CatalogCategoryResponseObjectResourceAttributes,
)
from openapi_client.models.catalog_item_response_object_resource_attributes import (
    CatalogItemResponseObjectResourceAttributes,
)
from openapi_client.models.catalog_variant_response_object_resource_attributes import (
    CatalogVariantResponseObjectResourceAttributes,
)

from tests.fakeplatform import klaviyo_rules as rules
from tests.fakeplatform.klaviyo_rules import MEDIA_TYPE, Invalid
from tests.fakeplatform.records import Incoming, PendingJob, Reply

if TYPE_CHECKING:
    from tests.fakeplatform.server import FakePlatform

MAX_JOBS_IN_PROGRESS = 500
JOBS_FULL_RETRY_AFTER = 1
PAGE_SIZE = 100
JOB_LIFETIME = timedelta(days=7)
JOB_TYPE = re.compile(r"^catalog-(item|variant|category)-bulk-(create|update|delete)-job$")
JOB_PATH = re.compile(r"^/api/catalog-(item|variant|category)-bulk-(create|update|delete)-jobs$")
CURSOR_PREFIX = b"after::"
LIST_PARAMETERS = ("page[cursor]", "page[size]")  # plus fields[...], which the fake ignores

Failure = tuple[str, str, str]  # (code, title, detail) of one failed job entry


@dataclass(frozen=True)
class Kind:
    """One catalog resource kind: where its entries sit in a job, where it is stored and listed."""

    name: str
    resource: str
    entries: str
    store: str
    collection: str
    label: str
    fields: tuple[str, ...]  # the attributes a GET answers: the SDK response model's


KINDS = {
    "item": Kind("item", "catalog-item", "items", "klaviyo_catalog", "/api/catalog-items", "catalog item",
                 tuple(CatalogItemResponseObjectResourceAttributes.model_fields)),
    "variant": Kind("variant", "catalog-variant", "variants", "klaviyo_variants", "/api/catalog-variants",
                    "catalog variant", tuple(CatalogVariantResponseObjectResourceAttributes.model_fields)),
    "category": Kind("category", "catalog-category", "categories", "klaviyo_categories",
                     "/api/catalog-categories", "catalog category",
                     tuple(CatalogCategoryResponseObjectResourceAttributes.model_fields)),
}
COLLECTIONS = {kind.collection: kind for kind in KINDS.values()}
CREATE_DEFAULTS: dict[str, dict[str, Any]] = {  # the SDK models' defaults, which Klaviyo applies too
    "item": {"integration_type": "$custom", "catalog_type": "$default", "published": True},
    "variant": {"integration_type": "$custom", "catalog_type": "$default", "published": True,
                "inventory_policy": 0},
    "category": {"integration_type": "$custom", "catalog_type": "$default"},
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _base_url(request: Incoming, fake: FakePlatform) -> str:
    """The fake Klaviyo's absolute URL as the client reached it (for `links`)."""
    host = request.headers.get("host")
    return f"http://{host}/klaviyo" if host else fake.base_url("klaviyo")


def _store(fake: FakePlatform, kind: str) -> dict[str, dict[str, Any]]:
    return getattr(fake, KINDS[kind].store)


def compound_id(attributes: dict[str, Any]) -> str:
    return ":::".join((attributes["integration_type"], attributes["catalog_type"], attributes["external_id"]))


# --- per-entry outcomes ------------------------------------------------------------------------


def _conflict(kind: str, entry_id: str) -> Failure:
    return "conflict", "Conflict.", f"A {KINDS[kind].label} with id '{entry_id}' already exists."


def _missing(kind: str, entry_id: str) -> Failure:
    return "not_found", "Not found.", f"{KINDS[kind].label.capitalize()} '{entry_id}' does not exist."


def _missing_related(kind: str, entry_id: str, relationship: str) -> Failure:
    label = KINDS[kind].label.capitalize()
    return "not_found", "Not found.", f"{label} '{entry_id}' named in relationships.{relationship} does not exist."


def _related_ids(entry: dict[str, Any], relationship: str) -> list[str] | None:
    """The ids a to-many relationship names, None when the entry does not set it."""
    related = (entry.get("relationships") or {}).get(relationship)
    if related is None:
        return None
    return [ref["id"] for ref in related.get("data") or []]


def _unknown_related(fake: FakePlatform, kind: str, ids: list[str] | None, relationship: str) -> Failure | None:
    store = _store(fake, kind)
    missing = next((i for i in ids or [] if i not in store), None)
    return None if missing is None else _missing_related(kind, missing, relationship)


def _new_record(kind: str, entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(compound id, record) of a create entry; null attributes take the defaults."""
    sent = {key: value for key, value in entry["attributes"].items() if value is not None}
    attributes = {**CREATE_DEFAULTS[kind], **sent}
    now = _now()
    return compound_id(attributes), {"attributes": attributes, "created": now, "updated": now}


def _merge(record: dict[str, Any], attributes: dict[str, Any]) -> None:
    """An update changes the attributes it sends; null leaves a value as it was."""
    record["attributes"].update({key: value for key, value in attributes.items() if value is not None})
    record["updated"] = _now()


def _item_create(fake: FakePlatform, entry: dict[str, Any]) -> Failure | None:
    item_id, record = _new_record("item", entry)
    if item_id in fake.klaviyo_catalog:
        return _conflict("item", item_id)
    categories = _related_ids(entry, "categories")
    failure = _unknown_related(fake, "category", categories, "categories")
    if failure is None:
        fake.klaviyo_catalog[item_id] = {**record, "categories": categories or []}
    return failure


def _item_update(fake: FakePlatform, entry: dict[str, Any]) -> Failure | None:
    item = fake.klaviyo_catalog.get(entry["id"])
    if item is None:
        return _missing("item", entry["id"])
    categories = _related_ids(entry, "categories")
    failure = _unknown_related(fake, "category", categories, "categories")
    if failure is None:
        _merge(item, entry["attributes"])
        if categories is not None:
            item["categories"] = categories
    return failure


def _item_delete(fake: FakePlatform, entry: dict[str, Any]) -> Failure | None:
    """Deleting an item deletes its variants too."""
    item_id = entry["id"]
    if fake.klaviyo_catalog.pop(item_id, None) is None:
        return _missing("item", item_id)
    for variant_id in [v for v, variant in fake.klaviyo_variants.items() if variant["item"] == item_id]:
        del fake.klaviyo_variants[variant_id]
    return None


def _variant_create(fake: FakePlatform, entry: dict[str, Any]) -> Failure | None:
    variant_id, record = _new_record("variant", entry)
    if variant_id in fake.klaviyo_variants:
        return _conflict("variant", variant_id)
    item_id = entry["relationships"]["item"]["data"]["id"]
    if item_id not in fake.klaviyo_catalog:
        return _missing_related("item", item_id, "item")
    fake.klaviyo_variants[variant_id] = {**record, "item": item_id}
    return None


def _variant_update(fake: FakePlatform, entry: dict[str, Any]) -> Failure | None:
    variant = fake.klaviyo_variants.get(entry["id"])
    if variant is None:
        return _missing("variant", entry["id"])
    _merge(variant, entry["attributes"])
    return None


def _variant_delete(fake: FakePlatform, entry: dict[str, Any]) -> Failure | None:
    if fake.klaviyo_variants.pop(entry["id"], None) is None:
        return _missing("variant", entry["id"])
    return None


def _set_category_items(fake: FakePlatform, category_id: str, item_ids: list[str], only: bool) -> None:
    """Put the category on those items; `only` also takes it off every other item."""
    for item_id, item in fake.klaviyo_catalog.items():
        listed = category_id in item["categories"]
        if item_id in item_ids and not listed:
            item["categories"].append(category_id)
        elif only and listed and item_id not in item_ids:
            item["categories"].remove(category_id)


def _category_create(fake: FakePlatform, entry: dict[str, Any]) -> Failure | None:
    category_id, record = _new_record("category", entry)
    if category_id in fake.klaviyo_categories:
        return _conflict("category", category_id)
    items = _related_ids(entry, "items")
    failure = _unknown_related(fake, "item", items, "items")
    if failure is None:
        fake.klaviyo_categories[category_id] = record
        _set_category_items(fake, category_id, items or [], only=False)
    return failure


def _category_update(fake: FakePlatform, entry: dict[str, Any]) -> Failure | None:
    category = fake.klaviyo_categories.get(entry["id"])
    if category is None:
        return _missing("category", entry["id"])
    items = _related_ids(entry, "items")
    failure = _unknown_related(fake, "item", items, "items")
    if failure is None:
        _merge(category, entry["attributes"])
        if items is not None:
            _set_category_items(fake, entry["id"], items, only=True)
    return failure


def _category_delete(fake: FakePlatform, entry: dict[str, Any]) -> Failure | None:
    if fake.klaviyo_categories.pop(entry["id"], None) is None:
        return _missing("category", entry["id"])
    _set_category_items(fake, entry["id"], [], only=True)
    return None


APPLY: dict[tuple[str, str], Callable[[FakePlatform, dict[str, Any]], Failure | None]] = {
    ("item", "create"): _item_create, ("item", "update"): _item_update, ("item", "delete"): _item_delete,
    ("variant", "create"): _variant_create, ("variant", "update"): _variant_update,
    ("variant", "delete"): _variant_delete,
    ("category", "create"): _category_create, ("category", "update"): _category_update,
    ("category", "delete"): _category_delete,
}


# --- jobs --------------------------------------------------------------------------------------


def bulk_job(body: dict[str, Any], route: rules.Route, fake: FakePlatform, request: Incoming) -> Reply:
    """POST of a catalog bulk job: 202 with the job, "processing" unless `klaviyo_job_polls` is 0."""
    kind, action = _job_kind(route.job_type or "")
    entries = body["data"]["attributes"][KINDS[kind].entries]["data"]
    rules.check_catalog_entries(entries, kind, action)
    self_link = f"{_base_url(request, fake)}/api/catalog-{kind}-bulk-{action}-jobs"
    with fake.lock:
        job = _start_job(fake, route.job_type or "", kind, action, entries, self_link)
        return Reply.json(202, {"data": job}, {"Content-Type": MEDIA_TYPE})


def _job_kind(job_type: str) -> tuple[str, str]:
    """("item", "create") from "catalog-item-bulk-create-job"."""
    match = JOB_TYPE.match(job_type)
    if match is None:
        raise ValueError(f"not a catalog job type: {job_type!r}")
    return match[1], match[2]


def _start_job(fake: FakePlatform, job_type: str, kind: str, action: str, entries: list[dict[str, Any]],
               collection_link: str) -> dict[str, Any]:
    """Accept a job (lock held); Klaviyo refuses one past 500 in progress."""
    in_progress = len(fake.klaviyo_pending_jobs)
    if in_progress >= MAX_JOBS_IN_PROGRESS:
        raise Invalid(f"{MAX_JOBS_IN_PROGRESS} catalog bulk jobs are already in progress; "
                      "wait for some to complete.", status=429, code="throttled",
                      headers={"Retry-After": str(JOBS_FULL_RETRY_AFTER)})
    fake.klaviyo_max_jobs_in_flight = max(fake.klaviyo_max_jobs_in_flight, in_progress + 1)
    created = datetime.now(UTC)
    job_id = uuid.uuid4().hex
    job = {"type": job_type, "id": job_id,
           "attributes": {"status": "processing", "total_count": len(entries), "completed_count": 0,
                          "failed_count": 0, "created_at": created.isoformat(timespec="seconds"),
                          "completed_at": None,
                          "expires_at": (created + JOB_LIFETIME).isoformat(timespec="seconds"), "errors": []},
           "links": {"self": f"{collection_link}/{job_id}"}}
    fake.klaviyo_jobs.append(job)
    pending = PendingJob(job, kind, action, entries, fake.klaviyo_job_polls)
    if pending.polls_left == 0:
        _complete(fake, pending)
    else:
        fake.klaviyo_pending_jobs[job_id] = pending
    return job


def _complete(fake: FakePlatform, pending: PendingJob) -> None:
    """Run the job's entries now (lock held) and mark it complete with one error per failed entry."""
    apply = APPLY[pending.kind, pending.action]
    pointer = f"/data/attributes/{KINDS[pending.kind].entries}/data"
    errors = []
    for index, entry in enumerate(pending.entries):
        failure = apply(fake, entry)
        if failure is not None:
            code, title, detail = failure
            errors.append({"id": str(uuid.uuid4()), "code": code, "title": title, "detail": detail,
                           "source": {"pointer": f"{pointer}/{index}"}})
    attributes = pending.job["attributes"]
    attributes.update(status="complete", completed_count=len(pending.entries) - len(errors),
                      failed_count=len(errors), completed_at=_now(), errors=errors)
    fake.klaviyo_pending_jobs.pop(pending.job["id"], None)


def _job_status(fake: FakePlatform, job_type: str, job_id: str) -> Reply:
    """GET of a job: "processing" while it has polls left, then it runs and answers "complete"."""
    with fake.lock:
        job = next((j for j in fake.klaviyo_jobs if j["id"] == job_id and j["type"] == job_type), None)
        if job is None:
            raise Invalid(f"No {job_type} with id '{job_id}'.", status=404, code="not_found")
        pending = fake.klaviyo_pending_jobs.get(job_id)
        if pending is not None and pending.polls_left > 0:
            pending.polls_left -= 1
        elif pending is not None:
            _complete(fake, pending)
        return Reply.json(200, {"data": job, "links": job["links"]}, {"Content-Type": MEDIA_TYPE})


# --- reads -------------------------------------------------------------------------------------


def get(request: Incoming, fake: FakePlatform) -> Reply:
    """GET under /api/catalog-…: a listing, one resource, or a bulk job's status."""
    kind = COLLECTIONS.get(request.path)
    if kind is not None:
        return _listing(kind, request, fake)
    prefix, _, raw_id = request.path.rpartition("/")
    resource_id = unquote(raw_id)
    if prefix in COLLECTIONS:
        return _one(COLLECTIONS[prefix], resource_id, request, fake)
    job_path = JOB_PATH.match(prefix)
    if job_path is not None:
        return _job_status(fake, f"catalog-{job_path[1]}-bulk-{job_path[2]}-job", resource_id)
    raise Invalid(f"{request.path} was not found.", status=404, code="not_found")


def _one(kind: Kind, resource_id: str, request: Incoming, fake: FakePlatform) -> Reply:
    base = _base_url(request, fake)
    with fake.lock:
        record = getattr(fake, kind.store).get(resource_id)
        if record is None:
            raise Invalid(f"A {kind.label} with id '{resource_id}' does not exist.", status=404,
                          code="not_found")
        resource = _resource(kind, resource_id, record, _related_index(kind, fake), base)
        return Reply.json(200, {"data": resource, "links": resource["links"]}, {"Content-Type": MEDIA_TYPE})


def _listing(kind: Kind, request: Incoming, fake: FakePlatform) -> Reply:
    """One page in id order; `links.next` carries an opaque cursor naming the page's last id."""
    after, size = _page_parameters(request.query)
    base = _base_url(request, fake)
    with fake.lock:
        store = getattr(fake, kind.store)
        ids = sorted(store)
        start = bisect.bisect_right(ids, after) if after is not None else 0
        page = ids[start:start + size]
        related = _related_index(kind, fake)
        data = [_resource(kind, resource_id, store[resource_id], related, base) for resource_id in page]
        more = start + size < len(ids)
        self_link = f"{base}{request.path}" + (f"?{request.query}" if request.query else "")
        next_link = f"{base}{request.path}?page%5Bcursor%5D={encode_cursor(page[-1])}" if more else None
        if next_link is not None and size != PAGE_SIZE:
            next_link += f"&page%5Bsize%5D={size}"
        return Reply.json(200, {"data": data, "links": {"self": self_link, "next": next_link}},
                          {"Content-Type": MEDIA_TYPE})


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(CURSOR_PREFIX + last_id.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if not raw.startswith(CURSOR_PREFIX):
        raise Invalid(f"Invalid page cursor '{cursor}'.", parameter="page[cursor]")
    return raw[len(CURSOR_PREFIX):].decode(errors="replace")


def _page_parameters(query: str) -> tuple[str | None, int]:
    """(id after which the page starts, page size); refuses query parameters the fake does not implement
    (filter, sort, include) rather than silently answering unfiltered."""
    params = {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}
    for name in params:
        if name not in LIST_PARAMETERS and not name.startswith("fields["):
            raise Invalid(f"The fake Klaviyo does not support the '{name}' query parameter.", parameter=name)
    size_text = params.get("page[size]", str(PAGE_SIZE))
    if not size_text.isdigit() or not 1 <= int(size_text) <= PAGE_SIZE:
        raise Invalid(f"page[size] must be 1 to {PAGE_SIZE}, got '{size_text}'.", parameter="page[size]")
    cursor = params.get("page[cursor]")
    return (decode_cursor(cursor) if cursor else None), int(size_text)


def _related_index(kind: Kind, fake: FakePlatform) -> dict[str, list[str]]:
    """For items: their variant ids; for categories: their item ids (built once per request)."""
    index: dict[str, list[str]] = {}
    if kind.name == "item":
        for variant_id, variant in fake.klaviyo_variants.items():
            index.setdefault(variant["item"], []).append(variant_id)
    elif kind.name == "category":
        for item_id, item in fake.klaviyo_catalog.items():
            for category_id in item["categories"]:
                index.setdefault(category_id, []).append(item_id)
    return index


def _resource(kind: Kind, resource_id: str, record: dict[str, Any], related: dict[str, list[str]],
              base: str) -> dict[str, Any]:
    """A record as Klaviyo's JSON:API resource: the response model's attributes, null when unset."""
    values = {**record["attributes"], "created": record["created"], "updated": record["updated"]}
    self_link = f"{base}{kind.collection}/{quote(resource_id, safe='$:')}"
    return {"type": kind.resource, "id": resource_id,
            "attributes": {name: values.get(name) for name in kind.fields},
            "relationships": _relationships(kind, resource_id, record, related, self_link),
            "links": {"self": self_link}}


def _relationships(kind: Kind, resource_id: str, record: dict[str, Any], related: dict[str, list[str]],
                   self_link: str) -> dict[str, Any]:
    """Variants: their item; items: their variants; categories: their items (ids, sorted)."""
    if kind.name == "variant":
        name, data = "item", {"type": "catalog-item", "id": record["item"]}
    else:
        name, resource = ("variants", "catalog-variant") if kind.name == "item" else ("items", "catalog-item")
        data = [{"type": resource, "id": i} for i in sorted(related.get(resource_id, []))]
    links = {"self": f"{self_link}/relationships/{name}", "related": f"{self_link}/{name}"}
    return {name: {"data": data, "links": links}}


# --- back in stock -----------------------------------------------------------------------------


def back_in_stock(body: dict[str, Any], route: rules.Route, fake: FakePlatform, request: Incoming) -> Reply:
    """202 without a body, like Klaviyo; the variant must be one the catalog holds."""
    profile, channels, variant_id = rules.bis_subscription(body)
    with fake.lock:
        if variant_id not in fake.klaviyo_variants:
            raise Invalid(f"Catalog variant '{variant_id}' does not exist.", "/data/relationships/variant/data/id")
        fake.klaviyo_bis.append({"profile": profile, "channels": list(channels), "variant": variant_id})
    return Reply(202)


POST_HANDLERS: dict[str, Callable[[dict[str, Any], rules.Route, FakePlatform, Incoming], Reply]] = {
    **{path: bulk_job for path in rules.ROUTES if JOB_PATH.match(path)},
    "/api/back-in-stock-subscriptions": back_in_stock,
}

"""Klaviyo's Catalog API as pure functions: bulk job bodies for categories, items and variants, and the
job and listing answers read back. What to send is the reconcile's decision (webapp/services/platform_catalogs).

Limits (reference/platforms.md §2, §9): at most 100 entries and 5 MB per job, at most 500 jobs in progress
per account, 75 requests/s burst and 750/min steady on the catalog write endpoints; reading a job's status
or a listing is an XL endpoint (350/s, 3,500/min, scope catalogs:read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

KINDS = ("category", "item", "variant")
PLURAL = {"category": "categories", "item": "items", "variant": "variants"}
ENTRIES_PER_JOB = 100
JOB_MAX_BYTES = 5_000_000
JOBS_IN_FLIGHT = 450  # below Klaviyo's 500 jobs in progress, leaving room for the account's other clients
RATE_LIMITS = {"burst_per_second": 75, "per_minute": 750}
READ_RATE_LIMITS = {"burst_per_second": 350, "per_minute": 3500}
PREFIX = "$custom:::$default:::"
DONE_STATUSES = ("complete", "cancelled")


def compound_id(external_id: str) -> str:
    """Klaviyo's id of a custom catalog's category, item or variant."""
    return f"{PREFIX}{external_id}"


def external_of(compound: str) -> str:
    return compound[len(PREFIX):] if compound.startswith(PREFIX) else compound


@dataclass(frozen=True, slots=True)
class Entity:
    """One category, item or variant as shoprelay wants the platform to hold it."""

    kind: str
    external_id: str
    attributes: dict[str, Any]
    # item: {"categories": [category external ids]}; variant: {"item": item external id}
    relations: dict[str, Any] = field(default_factory=dict)
    digest: str = ""
    product_key: str | None = None


def _relationships(entity: Entity) -> dict[str, Any] | None:
    if entity.kind == "item" and entity.relations.get("categories"):
        return {"categories": {"data": [{"type": "catalog-category", "id": compound_id(category)}
                                        for category in entity.relations["categories"]]}}
    if entity.kind == "variant":
        return {"item": {"data": {"type": "catalog-item", "id": compound_id(entity.relations["item"])}}}
    return None


def entry(entity: Entity, action: str) -> dict[str, Any]:
    """The job entry for `action` (create | update | delete) of one entity."""
    kind = f"catalog-{entity.kind}"
    if action == "delete":
        return {"type": kind, "id": compound_id(entity.external_id)}
    if action == "create":
        attributes = {"external_id": entity.external_id, "integration_type": "$custom",
                      "catalog_type": "$default", **entity.attributes}
        body: dict[str, Any] = {"type": kind, "attributes": attributes}
        relationships = _relationships(entity)
    else:
        body = {"type": kind, "id": compound_id(entity.external_id), "attributes": dict(entity.attributes)}
        # A variant cannot move to another item; an item's categories are replaced by the update.
        relationships = _relationships(entity) if entity.kind == "item" else None
        if entity.kind == "item" and relationships is None:
            relationships = {"categories": {"data": []}}
    if relationships:
        body["relationships"] = relationships
    return body


def job_path(kind: str, action: str) -> str:
    return f"/api/catalog-{kind}-bulk-{action}-jobs"


def job_bodies(kind: str, action: str, entities: list[Entity]) -> list[tuple[bytes, list[Entity]]]:
    """Job bodies of ≤ 100 entries and ≤ 5 MB each, with the entities each carries, in the order given."""
    head = orjson.dumps({"data": {"type": f"catalog-{kind}-bulk-{action}-job",
                                  "attributes": {PLURAL[kind]: {"data": []}}}})
    opening, closing = head[:-len(b"]}}}}")], b"]}}}}"
    jobs: list[tuple[bytes, list[Entity]]] = []
    pieces: list[bytes] = []
    carried: list[Entity] = []
    size = len(opening) + len(closing)
    for entity in entities:
        piece = orjson.dumps(entry(entity, action))
        if carried and (len(carried) >= ENTRIES_PER_JOB or size + len(piece) + 1 > JOB_MAX_BYTES):
            jobs.append((opening + b",".join(pieces) + closing, carried))
            pieces, carried, size = [], [], len(opening) + len(closing)
        pieces.append(piece)
        carried.append(entity)
        size += len(piece) + 1
    if carried:
        jobs.append((opening + b",".join(pieces) + closing, carried))
    return jobs


@dataclass(slots=True)
class JobAnswer:
    """A bulk job as Klaviyo reports it: its status and which entries failed (by position, with why)."""

    job_id: str
    status: str
    total: int = 0
    completed: int = 0
    failed: dict[int, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES


def parse_job(body: bytes) -> JobAnswer | None:
    """The job resource of a POST's 202 or a status GET; None when the body is not one."""
    try:
        data = orjson.loads(body).get("data") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(data, dict) or not data.get("id"):
        return None
    attributes = data.get("attributes") or {}
    answer = JobAnswer(str(data["id"]), str(attributes.get("status") or "queued"),
                       int(attributes.get("total_count") or 0), int(attributes.get("completed_count") or 0))
    unplaced = []
    for error in attributes.get("errors") or []:
        detail = str(error.get("detail") or error.get("title") or error.get("code") or "refused")
        pointer = str((error.get("source") or {}).get("pointer") or "")
        index = _entry_index(pointer)
        if index is None:
            unplaced.append(detail)
        else:
            answer.failed[index] = detail
    if unplaced and answer.done and int(attributes.get("failed_count") or 0) > len(answer.failed):
        answer.failed[-1] = "; ".join(unplaced)  # errors the job did not tie to an entry
    return answer


def _entry_index(pointer: str) -> int | None:
    """The entry position in a pointer like /data/attributes/items/data/3(/...)."""
    parts = pointer.strip("/").split("/")
    for position, part in enumerate(parts[:-1]):
        if part == "data" and position > 0 and parts[position - 1] in PLURAL.values():
            try:
                return int(parts[position + 1])
            except ValueError:
                return None
    return None


def list_path(kind: str) -> str:
    return f"/api/catalog-{PLURAL[kind]}"


def parse_list(body: bytes) -> tuple[list[str], str | None]:
    """One page of a catalog listing: the external ids on it and the next page's URL (None at the end)."""
    parsed = orjson.loads(body)
    ids = [external_of(str(row.get("id"))) for row in parsed.get("data") or [] if isinstance(row, dict)]
    return ids, (parsed.get("links") or {}).get("next") or None


def back_in_stock_body(subscription: dict[str, Any]) -> dict[str, Any]:
    """A server back-in-stock subscription on the variant (Klaviyo notifies the shopper when it returns)."""
    profile = {key: value for key, value in (("email", subscription.get("email")),
                                             ("phone_number", subscription.get("phone"))) if value}
    channels = [channel.upper() for channel in subscription.get("channels") or ["email"]]
    return {"data": {"type": "back-in-stock-subscription", "attributes": {
        "channels": channels, "profile": {"data": {"type": "profile", "attributes": profile}}},
        "relationships": {"variant": {"data": {"type": "catalog-variant",
                                               "id": compound_id(str(subscription["product_id"]))}}}}}

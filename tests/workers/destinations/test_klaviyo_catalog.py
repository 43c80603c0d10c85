"""Klaviyo Catalog API job bodies (checked with the SDK's models) and the answers read back."""

from __future__ import annotations

import orjson
import pytest

from tests.workers.destinations.klaviyo_sdk import MODEL_BY_PATH, assert_sdk_accepts
from workers.destinations.klaviyo_catalog import (
    ENTRIES_PER_JOB,
    JOB_MAX_BYTES,
    Entity,
    job_bodies,
    job_path,
    parse_job,
    parse_list,
)

CATEGORY = Entity("category", "clothing-tshirts", {"name": "Clothing > Tshirts"})
ITEM = Entity("item", "44", {"title": "V-Neck T-Shirt", "description": "Soft", "url": "https://shop.example/?p=44",
                             "price": 18.0, "published": True}, {"categories": ["clothing-tshirts"]})
VARIANT = Entity("variant", "45", {"title": "V-Neck T-Shirt - Red", "description": "Soft", "sku": "woo-vneck-red",
                                   "inventory_quantity": 3, "inventory_policy": 1, "price": 20.0,
                                   "url": "https://shop.example/?p=44", "published": True}, {"item": "44"})


@pytest.mark.parametrize("entity", [CATEGORY, ITEM, VARIANT], ids=lambda e: e.kind)
@pytest.mark.parametrize("action", ["create", "update", "delete"])
def test_every_job_body_is_valid_for_the_sdk(entity: Entity, action: str) -> None:
    ((body, carried),) = job_bodies(entity.kind, action, [entity])
    assert carried == [entity]
    assert_sdk_accepts(MODEL_BY_PATH[job_path(entity.kind, action)], orjson.loads(body))


def test_relationships_and_ids() -> None:
    ((body, _),) = job_bodies("variant", "create", [VARIANT])
    entry = orjson.loads(body)["data"]["attributes"]["variants"]["data"][0]
    assert entry["attributes"]["external_id"] == "45" and entry["attributes"]["integration_type"] == "$custom"
    assert entry["relationships"]["item"]["data"] == {"type": "catalog-item", "id": "$custom:::$default:::44"}
    ((body, _),) = job_bodies("item", "update", [ITEM])
    entry = orjson.loads(body)["data"]["attributes"]["items"]["data"][0]
    assert entry["id"] == "$custom:::$default:::44" and "external_id" not in entry["attributes"]
    assert entry["relationships"]["categories"]["data"] == [
        {"type": "catalog-category", "id": "$custom:::$default:::clothing-tshirts"}]


def test_jobs_hold_at_most_100_entries_and_5_mb() -> None:
    many = [Entity("category", f"c{n}", {"name": f"C{n}"}) for n in range(250)]
    assert [len(carried) for _, carried in job_bodies("category", "create", many)] == [100, 100, 50]
    big = [Entity("item", f"i{n}", {**ITEM.attributes, "description": "x" * 400_000}) for n in range(40)]
    jobs = job_bodies("item", "create", big)
    assert all(len(body) <= JOB_MAX_BYTES and len(carried) <= ENTRIES_PER_JOB for body, carried in jobs)
    assert sum(len(carried) for _, carried in jobs) == 40 and len(jobs) == 4


def test_job_answer_names_the_failed_entries() -> None:
    body = orjson.dumps({"data": {"type": "catalog-item-bulk-update-job", "id": "J1", "attributes": {
        "status": "complete", "total_count": 3, "completed_count": 2, "failed_count": 1, "errors": [
            {"id": "e", "code": "not_found", "title": "Not found", "detail": "Item 44 does not exist",
             "source": {"pointer": "/data/attributes/items/data/1"}}]}}})
    answer = parse_job(body)
    assert answer is not None and answer.done and answer.failed == {1: "Item 44 does not exist"}
    assert parse_job(b"not json") is None
    processing = parse_job(orjson.dumps({"data": {"id": "J2", "attributes": {"status": "processing"}}}))
    assert processing is not None and not processing.done


def test_listing_pages() -> None:
    ids, following = parse_list(orjson.dumps({"data": [{"type": "catalog-item", "id": "$custom:::$default:::A"}],
                                              "links": {"next": "https://a.klaviyo.com/api/catalog-items?x=1"}}))
    assert ids == ["A"] and following == "https://a.klaviyo.com/api/catalog-items?x=1"
    assert parse_list(b'{"data": [], "links": {"next": null}}') == ([], None)

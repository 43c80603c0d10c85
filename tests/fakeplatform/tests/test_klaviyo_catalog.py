"""The fake Klaviyo Catalogs API: item, variant and category bulk jobs (SDK-validated, applied per entry when
the job completes), listings with cursors, single reads, back in stock, and the catalog controls."""

from __future__ import annotations

import copy
import importlib
import subprocess
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from openapi_client.models.get_catalog_category_response_collection import (
    GetCatalogCategoryResponseCollection,
)
from openapi_client.models.get_catalog_item_response_collection_compound_document import (
    GetCatalogItemResponseCollectionCompoundDocument,
)
from openapi_client.models.get_catalog_item_response_compound_document import (
    GetCatalogItemResponseCompoundDocument,
)
from openapi_client.models.get_catalog_variant_response_collection import GetCatalogVariantResponseCollection

from tests.fakeplatform.tests.bodies import (
    KLAVIYO_HEADERS,
    bis_body,
    catalog_id,
    catalog_job,
    catalog_ref,
    category_entry,
    item_entry,
    variant_entry,
)

JOB_PATHS = {(kind, action): f"/api/catalog-{kind}-bulk-{action}-jobs"
             for kind in ("item", "variant", "category") for action in ("create", "update", "delete")}


def _post_job(client: httpx.Client, kind: str, action: str, entries: list[dict[str, Any]]) -> httpx.Response:
    return client.post(JOB_PATHS[kind, action], json=catalog_job(kind, action, entries))


def _job(client: httpx.Client, kind: str, action: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Post a job and return its resource (it must be accepted)."""
    response = _post_job(client, kind, action, entries)
    assert response.status_code == 202, response.text
    return response.json()["data"]


def _poll(client: httpx.Client, kind: str, action: str, job_id: str) -> dict[str, Any]:
    response = client.get(f"{JOB_PATHS[kind, action]}/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _sdk_job_document(kind: str, action: str) -> Any:
    """The SDK's response model of GET <job>: Klaviyo's own shape for the job resource."""
    camel = f"GetCatalog{kind.capitalize()}{action.capitalize()}Job"
    if action == "delete":
        module, name = f"get_catalog_{kind}_delete_job_response", f"{camel}Response"
    else:
        module, name = f"get_catalog_{kind}_{action}_job_response_compound_document", f"{camel}ResponseCompoundDocument"
    return getattr(importlib.import_module(f"openapi_client.models.{module}"), name)


def _seed(client: httpx.Client) -> None:
    """Two categories, two items (SKU-1 in APPAREL), two variants of SKU-1, one of SKU-2."""
    _job(client, "category", "create", [category_entry("APPAREL"), category_entry("SALE")])
    _job(client, "item", "create", [item_entry("SKU-1", ("APPAREL",)), item_entry("SKU-2")])
    _job(client, "variant", "create", [variant_entry("SKU-1-S", "SKU-1"), variant_entry("SKU-1-M", "SKU-1"),
                                       variant_entry("SKU-2-S", "SKU-2")])


# --- jobs: valid bodies ------------------------------------------------------------------------


def test_create_jobs_answer_202_with_a_complete_job_in_klaviyos_shape_and_fill_the_stores(fake, klaviyo):
    response = _post_job(klaviyo, "category", "create", [category_entry("APPAREL", "Apparel")])
    assert response.status_code == 202
    assert response.headers["Content-Type"] == "application/vnd.api+json"
    assert response.headers["RateLimit-Limit"] == "75, 75;w=1, 750;w=60"
    job = response.json()["data"]
    assert job["type"] == "catalog-category-bulk-create-job"
    attributes = job["attributes"]
    assert (attributes["status"], attributes["total_count"], attributes["completed_count"],
            attributes["failed_count"], attributes["errors"]) == ("complete", 1, 1, 0, [])
    assert attributes["created_at"] and attributes["completed_at"] and attributes["expires_at"] > attributes["created_at"]
    _sdk_job_document("category", "create").from_dict(response.json())

    item = _job(klaviyo, "item", "create", [item_entry("SKU-1", ("APPAREL",))])
    variant = _job(klaviyo, "variant", "create", [variant_entry("SKU-1-S", "SKU-1")])
    assert (item["attributes"]["completed_count"], variant["attributes"]["completed_count"]) == (1, 1)

    stored = fake.klaviyo_catalog[catalog_id("SKU-1")]
    assert stored["attributes"]["external_id"] == "SKU-1" and stored["attributes"]["price"] == 9.99
    assert stored["attributes"]["integration_type"] == "$custom" and stored["attributes"]["published"] is True
    assert stored["categories"] == [catalog_id("APPAREL")]
    variant_record = fake.klaviyo_variants[catalog_id("SKU-1-S")]
    assert variant_record["item"] == catalog_id("SKU-1")
    assert variant_record["attributes"]["inventory_quantity"] == 3
    assert fake.klaviyo_categories[catalog_id("APPAREL")]["attributes"]["name"] == "Apparel"
    assert [j["type"] for j in fake.klaviyo_jobs] == [
        "catalog-category-bulk-create-job", "catalog-item-bulk-create-job", "catalog-variant-bulk-create-job"]
    assert fake.klaviyo_max_jobs_in_flight == 1


def test_update_and_delete_jobs_change_each_store(fake, klaviyo):
    _seed(klaviyo)
    _job(klaviyo, "item", "update", [{"type": "catalog-item", "id": catalog_id("SKU-1"),
                                      "attributes": {"price": 5, "title": None},
                                      "relationships": {"categories": {"data": [catalog_ref("category", "SALE")]}}}])
    _job(klaviyo, "variant", "update", [{"type": "catalog-variant", "id": catalog_id("SKU-1-S"),
                                         "attributes": {"inventory_quantity": 0}}])
    _job(klaviyo, "category", "update", [{"type": "catalog-category", "id": catalog_id("SALE"),
                                          "attributes": {"name": "On sale"}}])
    item = fake.klaviyo_catalog[catalog_id("SKU-1")]
    assert item["attributes"]["price"] == 5 and item["attributes"]["title"] == "Item SKU-1"  # null: unchanged
    assert item["categories"] == [catalog_id("SALE")]  # the relationship replaces the categories
    assert fake.klaviyo_variants[catalog_id("SKU-1-S")]["attributes"]["inventory_quantity"] == 0
    assert fake.klaviyo_categories[catalog_id("SALE")]["attributes"]["name"] == "On sale"

    deleted = _job(klaviyo, "variant", "delete", [{"type": "catalog-variant", "id": catalog_id("SKU-1-M")}])
    assert deleted["attributes"]["completed_count"] == 1
    _job(klaviyo, "category", "delete", [{"type": "catalog-category", "id": catalog_id("SALE")}])
    assert set(fake.klaviyo_variants) == {catalog_id("SKU-1-S"), catalog_id("SKU-2-S")}
    assert list(fake.klaviyo_categories) == [catalog_id("APPAREL")]
    assert item["categories"] == []  # a deleted category leaves its items


def test_deleting_an_item_deletes_its_variants_only(fake, klaviyo):
    _seed(klaviyo)
    job = _job(klaviyo, "item", "delete", [{"type": "catalog-item", "id": catalog_id("SKU-1")}])
    assert job["attributes"]["failed_count"] == 0
    assert list(fake.klaviyo_catalog) == [catalog_id("SKU-2")]
    assert list(fake.klaviyo_variants) == [catalog_id("SKU-2-S")]


def test_a_category_can_name_its_items_and_an_update_replaces_them(fake, klaviyo):
    _seed(klaviyo)
    entry = category_entry("NEW")
    entry["relationships"] = {"items": {"data": [catalog_ref("item", "SKU-1"), catalog_ref("item", "SKU-2")]}}
    _job(klaviyo, "category", "create", [entry])
    assert catalog_id("NEW") in fake.klaviyo_catalog[catalog_id("SKU-2")]["categories"]
    _job(klaviyo, "category", "update", [{"type": "catalog-category", "id": catalog_id("NEW"), "attributes": {},
                                          "relationships": {"items": {"data": [catalog_ref("item", "SKU-2")]}}}])
    assert fake.klaviyo_catalog[catalog_id("SKU-1")]["categories"] == [catalog_id("APPAREL")]
    assert fake.klaviyo_catalog[catalog_id("SKU-2")]["categories"] == [catalog_id("NEW")]


@pytest.mark.parametrize(("kind", "action"), sorted(JOB_PATHS))
def test_every_job_route_answers_in_the_sdk_response_shape_when_polled(fake, klaviyo, kind, action):
    _seed(klaviyo)
    entries = {"create": {"item": item_entry("SKU-9"), "variant": variant_entry("SKU-9-S", "SKU-2"),
                          "category": category_entry("KIDS")}[kind],
               "update": {"type": f"catalog-{kind}", "id": catalog_id({"item": "SKU-2", "variant": "SKU-2-S",
                                                                       "category": "SALE"}[kind]),
                          "attributes": {"name": "Sale"} if kind == "category" else {"title": "New"}},
               "delete": {"type": f"catalog-{kind}", "id": catalog_id("GONE")}}[action]
    job = _job(klaviyo, kind, action, [entries])
    document = klaviyo.get(f"{JOB_PATHS[kind, action]}/{job['id']}").json()
    parsed = _sdk_job_document(kind, action).from_dict(document)
    assert parsed.data.id == job["id"] and parsed.data.attributes.status == "complete"
    assert parsed.data.attributes.failed_count == (1 if action == "delete" else 0)
    assert document["data"]["links"]["self"].endswith(f"{JOB_PATHS[kind, action]}/{job['id']}")


# --- jobs: bodies refused as a whole -----------------------------------------------------------


def _set(body: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target = body
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


_DELETE = object()
_ITEMS = ["data", "attributes", "items", "data", 0]
_VARIANTS = ["data", "attributes", "variants", "data", 0]
_CATEGORIES = ["data", "attributes", "categories", "data", 0]
_ITEM_CREATE = catalog_job("item", "create", [item_entry("SKU-1")])
_VARIANT_CREATE = catalog_job("variant", "create", [variant_entry("SKU-1-S", "SKU-1")])
_CATEGORY_CREATE = catalog_job("category", "create", [category_entry("APPAREL")])
_ITEM_UPDATE = catalog_job("item", "update", [{"type": "catalog-item", "id": catalog_id("SKU-1"),
                                               "attributes": {"price": 5}}])
_VARIANT_UPDATE = catalog_job("variant", "update", [{"type": "catalog-variant", "id": catalog_id("SKU-1-S"),
                                                     "attributes": {"inventory_quantity": 1}}])
_ITEM_DELETE = catalog_job("item", "delete", [{"type": "catalog-item", "id": catalog_id("SKU-1")}])
_BIG = "x" * 53_000


@pytest.mark.parametrize(("kind", "action", "body", "pointer"), [
    ("item", "create", _set(_ITEM_CREATE, [*_ITEMS, "attributes", "title"], _DELETE),
     "/data/attributes/items/data/0/attributes/title"),
    ("item", "create", _set(_ITEM_CREATE, [*_ITEMS, "attributes", "price"], "9.99"),
     "/data/attributes/items/data/0/attributes/price"),
    ("item", "create", _set(_ITEM_CREATE, [*_ITEMS, "attributes", "integration_type"], "$shopify"),
     "/data/attributes/items/data/0/attributes/integration_type"),
    ("item", "create", _set(_ITEM_CREATE, [*_ITEMS, "attributes", "colour"], "red"),
     "/data/attributes/items/data/0/attributes/colour"),
    ("item", "create", _set(_ITEM_CREATE, [*_ITEMS, "relationships"], {"categories": {"data": [
        {"type": "catalog-item", "id": "x"}]}}), "/data/attributes/items/data/0/relationships/categories/data/0/type"),
    ("item", "create", _set(_ITEM_CREATE, [*_ITEMS, "attributes", "catalog_type"], "$other"),
     "/data/attributes/items/data/0/attributes/catalog_type"),
    ("item", "create", _set(_ITEM_CREATE, [*_ITEMS, "attributes", "custom_metadata"], {"blob": "x" * 110_000}),
     "/data/attributes/items/data/0/attributes/custom_metadata"),
    ("item", "create", catalog_job("item", "create", [item_entry(f"SKU-{i}") for i in range(101)]),
     "/data/attributes/items/data"),
    ("item", "create", catalog_job("item", "create", [
        _set(item_entry(f"SKU-{i}"), ["attributes", "description"], _BIG) for i in range(100)]), "/data"),
    ("item", "create", _set(_ITEM_CREATE, ["data", "type"], "catalog-variant-bulk-create-job"), "/data/type"),
    ("item", "create", {"data": {"type": "catalog-item-bulk-create-job",
                                 "attributes": {"variants": {"data": [item_entry("SKU-1")]}}}},
     "/data/attributes/items"),
    ("item", "update", _set(_ITEM_UPDATE, [*_ITEMS, "id"], _DELETE), "/data/attributes/items/data/0/id"),
    ("item", "update", _set(_ITEM_UPDATE, [*_ITEMS, "attributes", "external_id"], "SKU-2"),
     "/data/attributes/items/data/0/attributes/external_id"),
    ("item", "delete", _set(_ITEM_DELETE, [*_ITEMS, "attributes"], {"title": "x"}),
     "/data/attributes/items/data/0/attributes"),
    ("variant", "create", _set(_VARIANT_CREATE, [*_VARIANTS, "relationships"], _DELETE),
     "/data/attributes/variants/data/0/relationships"),
    ("variant", "create", _set(_VARIANT_CREATE, [*_VARIANTS, "relationships", "item", "data"], _DELETE),
     "/data/attributes/variants/data/0/relationships/item/data"),
    ("variant", "create", _set(_VARIANT_CREATE, [*_VARIANTS, "attributes", "sku"], _DELETE),
     "/data/attributes/variants/data/0/attributes/sku"),
    ("variant", "create", _set(_VARIANT_CREATE, [*_VARIANTS, "attributes", "inventory_quantity"], "3"),
     "/data/attributes/variants/data/0/attributes/inventory_quantity"),
    ("variant", "create", catalog_job("variant", "create", [variant_entry(f"V-{i}", "SKU-1") for i in range(101)]),
     "/data/attributes/variants/data"),
    ("variant", "update", _set(_VARIANT_UPDATE, [*_VARIANTS, "relationships"],
                               {"item": {"data": catalog_ref("item", "SKU-1")}}),
     "/data/attributes/variants/data/0/relationships"),
    ("category", "create", _set(_CATEGORY_CREATE, [*_CATEGORIES, "attributes", "name"], _DELETE),
     "/data/attributes/categories/data/0/attributes/name"),
    ("category", "create", catalog_job("category", "create", [category_entry(f"C-{i}") for i in range(101)]),
     "/data/attributes/categories/data"),
], ids=["item-no-title", "item-price-string", "item-integration-type", "item-unknown-key",
        "item-category-ref-type", "item-catalog-type", "item-metadata-over-100kb", "101-items", "body-over-5mb",
        "wrong-job-type", "wrong-entries-key", "update-no-id", "update-external-id", "delete-with-attributes",
        "variant-no-relationships", "variant-no-item-data", "variant-no-sku", "variant-quantity-string",
        "101-variants", "variant-update-relationships", "category-no-name", "101-categories"])
def test_invalid_job_bodies_answer_400_with_a_pointer_and_change_nothing(fake, klaviyo, kind, action, body,
                                                                        pointer):
    response = klaviyo.post(JOB_PATHS[kind, action], json=body)

    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["code"] == "invalid" and error["status"] == 400 and error["detail"]
    assert error["source"] == {"pointer": pointer}, error["detail"]
    assert fake.klaviyo_jobs == [] and fake.klaviyo_catalog == {} and fake.klaviyo_variants == {}
    assert fake.klaviyo_categories == {}


# --- jobs: per-entry failures ------------------------------------------------------------------


def _errors(job: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(code, pointer, detail) of each job error, after checking every error has Klaviyo's fields."""
    for error in job["attributes"]["errors"]:
        assert set(error) == {"id", "code", "title", "detail", "source"} and error["id"] and error["title"]
    return [(e["code"], e["source"]["pointer"], e["detail"]) for e in job["attributes"]["errors"]]


def test_failed_entries_are_reported_with_pointers_while_the_others_apply(fake, klaviyo):
    _seed(klaviyo)
    created = _job(klaviyo, "item", "create", [item_entry("SKU-1"), item_entry("SKU-3"), item_entry("SKU-3"),
                                               item_entry("SKU-4", ("NOPE",))])
    assert created["attributes"]["failed_count"] == 3 and created["attributes"]["completed_count"] == 1
    assert _errors(created) == [
        ("conflict", "/data/attributes/items/data/0", "A catalog item with id '$custom:::$default:::SKU-1' already exists."),
        ("conflict", "/data/attributes/items/data/2", "A catalog item with id '$custom:::$default:::SKU-3' already exists."),
        ("not_found", "/data/attributes/items/data/3",
         "Catalog category '$custom:::$default:::NOPE' named in relationships.categories does not exist."),
    ]
    assert catalog_id("SKU-3") in fake.klaviyo_catalog and catalog_id("SKU-4") not in fake.klaviyo_catalog
    assert fake.klaviyo_catalog[catalog_id("SKU-1")]["attributes"]["title"] == "Item SKU-1"

    updated = _job(klaviyo, "item", "update", [
        {"type": "catalog-item", "id": catalog_id("GONE"), "attributes": {"price": 1}},
        {"type": "catalog-item", "id": catalog_id("SKU-2"), "attributes": {"price": 2},
         "relationships": {"categories": {"data": [catalog_ref("category", "NOPE")]}}},
        {"type": "catalog-item", "id": catalog_id("SKU-3"), "attributes": {"price": 3}}])
    assert _errors(updated) == [
        ("not_found", "/data/attributes/items/data/0", "Catalog item '$custom:::$default:::GONE' does not exist."),
        ("not_found", "/data/attributes/items/data/1",
         "Catalog category '$custom:::$default:::NOPE' named in relationships.categories does not exist."),
    ]
    assert fake.klaviyo_catalog[catalog_id("SKU-2")]["attributes"]["price"] == 9.99  # a failed entry: untouched
    assert fake.klaviyo_catalog[catalog_id("SKU-3")]["attributes"]["price"] == 3


def test_variant_and_category_entries_fail_alone(fake, klaviyo):
    _seed(klaviyo)
    variants = _job(klaviyo, "variant", "create", [variant_entry("SKU-1-S", "SKU-1"), variant_entry("X-S", "X"),
                                                   variant_entry("SKU-2-M", "SKU-2")])
    assert _errors(variants) == [
        ("conflict", "/data/attributes/variants/data/0",
         "A catalog variant with id '$custom:::$default:::SKU-1-S' already exists."),
        ("not_found", "/data/attributes/variants/data/1",
         "Catalog item '$custom:::$default:::X' named in relationships.item does not exist."),
    ]
    assert catalog_id("SKU-2-M") in fake.klaviyo_variants
    missing_variants = _job(klaviyo, "variant", "update", [
        {"type": "catalog-variant", "id": catalog_id("NOPE"), "attributes": {"price": 1}}])
    assert _errors(missing_variants) == [("not_found", "/data/attributes/variants/data/0",
                                          "Catalog variant '$custom:::$default:::NOPE' does not exist.")]
    deleted = _job(klaviyo, "variant", "delete", [{"type": "catalog-variant", "id": catalog_id("NOPE")},
                                                  {"type": "catalog-variant", "id": catalog_id("SKU-2-M")}])
    assert [e[1] for e in _errors(deleted)] == ["/data/attributes/variants/data/0"]
    assert catalog_id("SKU-2-M") not in fake.klaviyo_variants

    entry = category_entry("NEW")
    entry["relationships"] = {"items": {"data": [catalog_ref("item", "GHOST")]}}
    categories = _job(klaviyo, "category", "create", [category_entry("APPAREL"), entry, category_entry("KIDS")])
    assert _errors(categories) == [
        ("conflict", "/data/attributes/categories/data/0",
         "A catalog category with id '$custom:::$default:::APPAREL' already exists."),
        ("not_found", "/data/attributes/categories/data/1",
         "Catalog item '$custom:::$default:::GHOST' named in relationships.items does not exist."),
    ]
    assert set(fake.klaviyo_categories) == {catalog_id("APPAREL"), catalog_id("SALE"), catalog_id("KIDS")}
    for action, body in (("update", {"attributes": {"name": "x"}}), ("delete", {})):
        job = _job(klaviyo, "category", action, [{"type": "catalog-category", "id": catalog_id("NOPE"), **body}])
        assert _errors(job) == [("not_found", "/data/attributes/categories/data/0",
                                 "Catalog category '$custom:::$default:::NOPE' does not exist.")]


# --- jobs: processing, then complete -----------------------------------------------------------


def test_a_job_answers_processing_for_the_configured_polls_and_applies_only_when_complete(fake, klaviyo):
    fake.set_klaviyo_job_polls(2)
    job = _job(klaviyo, "item", "create", [item_entry("SKU-1"), item_entry("SKU-1")])
    assert job["attributes"]["status"] == "processing"
    assert (job["attributes"]["completed_count"], job["attributes"]["failed_count"], job["attributes"]["errors"],
            job["attributes"]["completed_at"]) == (0, 0, [], None)
    assert fake.klaviyo_catalog == {} and list(fake.klaviyo_pending_jobs) == [job["id"]]

    for _ in range(2):
        polled = _poll(klaviyo, "item", "create", job["id"])
        assert polled["attributes"]["status"] == "processing" and polled["attributes"]["errors"] == []
        assert fake.klaviyo_catalog == {}
    done = _poll(klaviyo, "item", "create", job["id"])
    assert done["attributes"]["status"] == "complete" and done["attributes"]["completed_at"]
    assert (done["attributes"]["completed_count"], done["attributes"]["failed_count"]) == (1, 1)
    assert [e[1] for e in _errors(done)] == ["/data/attributes/items/data/1"]
    assert list(fake.klaviyo_catalog) == [catalog_id("SKU-1")] and fake.klaviyo_pending_jobs == {}
    assert _poll(klaviyo, "item", "create", job["id"]) == done  # stays complete, applied once


def test_entries_meet_the_catalog_as_it_is_when_their_job_runs(fake, klaviyo):
    fake.set_klaviyo_job_polls(1)
    items = _job(klaviyo, "item", "create", [item_entry("SKU-1")])
    variants = _job(klaviyo, "variant", "create", [variant_entry("SKU-1-S", "SKU-1")])
    assert fake.klaviyo_max_jobs_in_flight == 2
    _poll(klaviyo, "variant", "create", variants["id"])
    failed = _poll(klaviyo, "variant", "create", variants["id"])  # runs before the item job has
    assert [e[0] for e in _errors(failed)] == ["not_found"]
    _poll(klaviyo, "item", "create", items["id"])
    assert _poll(klaviyo, "item", "create", items["id"])["attributes"]["completed_count"] == 1
    assert fake.klaviyo_variants == {}


def test_job_status_is_404_for_unknown_ids_and_other_job_types(fake, klaviyo):
    job = _job(klaviyo, "item", "create", [item_entry("SKU-1")])
    assert klaviyo.get("/api/catalog-item-bulk-create-jobs/nope").status_code == 404
    other = klaviyo.get(f"/api/catalog-variant-bulk-create-jobs/{job['id']}")
    assert other.status_code == 404 and other.json()["errors"][0]["code"] == "not_found"
    assert klaviyo.get(f"/api/event-bulk-create-jobs/{job['id']}").status_code == 404


def test_500_jobs_in_progress_make_the_next_post_429_with_retry_after(fake, klaviyo):
    fake.set_klaviyo_job_polls(1)
    delete = [{"type": "catalog-item", "id": catalog_id("GONE")}]
    ids = [_job(klaviyo, "item", "delete", delete)["id"] for _ in range(500)]
    assert fake.klaviyo_max_jobs_in_flight == 500

    refused = _post_job(klaviyo, "variant", "create", [variant_entry("V", "SKU-1")])
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert "RateLimit-Limit" not in refused.headers
    assert refused.json()["errors"][0]["code"] == "throttled"
    assert len(fake.klaviyo_jobs) == 500

    for _ in range(2):
        _poll(klaviyo, "item", "delete", ids[0])
    assert _post_job(klaviyo, "item", "delete", delete).status_code == 202
    assert fake.klaviyo_max_jobs_in_flight == 500


# --- listings and single reads -----------------------------------------------------------------


def test_items_list_100_per_page_in_a_stable_order_with_an_opaque_next_cursor(fake, klaviyo):
    for start in (0, 100, 200):
        _job(klaviyo, "item", "create", [item_entry(f"SKU-{n:03}") for n in range(start, min(start + 100, 250))])
    _job(klaviyo, "variant", "create", [variant_entry("SKU-000-S", "SKU-000")])

    pages, url = [], "/api/catalog-items"
    while url:
        response = klaviyo.get(url)
        assert response.status_code == 200 and response.headers["RateLimit-Limit"].startswith("75,")
        document = response.json()
        GetCatalogItemResponseCollectionCompoundDocument.from_dict(document)
        pages.append(document["data"])
        url = document["links"]["next"]
        if url:
            assert url.startswith(fake.base_url("klaviyo") + "/api/catalog-items?page%5Bcursor%5D=")
            cursor = parse_qs(urlsplit(url).query)["page[cursor]"][0]
            assert "SKU" not in cursor  # opaque
    assert [len(page) for page in pages] == [100, 100, 50]
    ids = [resource["id"] for page in pages for resource in page]
    assert ids == sorted(fake.klaviyo_catalog) and len(set(ids)) == 250

    first = pages[0][0]
    assert first["type"] == "catalog-item" and first["id"] == catalog_id("SKU-000")
    assert first["attributes"]["external_id"] == "SKU-000" and first["attributes"]["price"] == 9.99
    assert first["attributes"]["image_full_url"] is None and first["attributes"]["created"]
    assert "integration_type" not in first["attributes"]
    assert first["relationships"]["variants"]["data"] == [catalog_ref("variant", "SKU-000-S")]
    assert first["links"]["self"].endswith("/api/catalog-items/$custom:::$default:::SKU-000")


def test_a_cursor_stays_valid_when_its_last_item_is_deleted(fake, klaviyo):
    _job(klaviyo, "item", "create", [item_entry(f"SKU-{n}") for n in range(5)])
    first = klaviyo.get("/api/catalog-items", params={"page[size]": 2}).json()
    assert [r["id"] for r in first["data"]] == [catalog_id("SKU-0"), catalog_id("SKU-1")]
    assert "page%5Bsize%5D=2" in first["links"]["next"]
    fake.forget_klaviyo_catalog_id(catalog_id("SKU-1"))
    second = klaviyo.get(first["links"]["next"]).json()
    assert [r["id"] for r in second["data"]] == [catalog_id("SKU-2"), catalog_id("SKU-3")]
    last = klaviyo.get(second["links"]["next"]).json()
    assert [r["id"] for r in last["data"]] == [catalog_id("SKU-4")] and last["links"]["next"] is None


def test_variants_and_categories_list_with_their_relationships(fake, klaviyo):
    _seed(klaviyo)
    variants = klaviyo.get("/api/catalog-variants").json()
    GetCatalogVariantResponseCollection.from_dict(variants)
    assert [v["id"] for v in variants["data"]] == sorted(fake.klaviyo_variants)
    small = variants["data"][0]
    assert small["type"] == "catalog-variant" and small["attributes"]["sku"] == "SKU-1-M"
    assert small["relationships"]["item"]["data"] == catalog_ref("item", "SKU-1")
    assert variants["links"]["next"] is None

    categories = klaviyo.get("/api/catalog-categories").json()
    GetCatalogCategoryResponseCollection.from_dict(categories)
    apparel = categories["data"][0]
    assert (apparel["type"], apparel["id"]) == ("catalog-category", catalog_id("APPAREL"))
    assert apparel["attributes"]["external_id"] == "APPAREL" and apparel["attributes"]["name"] == "APPAREL"
    assert apparel["relationships"]["items"]["data"] == [catalog_ref("item", "SKU-1")]


def test_an_empty_catalog_lists_nothing(klaviyo):
    document = klaviyo.get("/api/catalog-items").json()
    assert document["data"] == [] and document["links"]["next"] is None


@pytest.mark.parametrize(("params", "parameter"), [
    ({"page[cursor]": "not-a-cursor"}, "page[cursor]"),
    ({"page[size]": "0"}, "page[size]"),
    ({"page[size]": "101"}, "page[size]"),
    ({"filter": 'equals(published,true)'}, "filter"),
    ({"sort": "-created"}, "sort"),
    ({"include": "variants"}, "include"),
])
def test_listings_refuse_bad_cursors_and_parameters_the_fake_does_not_implement(klaviyo, params, parameter):
    response = klaviyo.get("/api/catalog-items", params=params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": parameter}


def test_one_resource_reads_200_and_unknown_ids_404(fake, klaviyo):
    _seed(klaviyo)
    item = klaviyo.get("/api/catalog-items/$custom:::$default:::SKU-1")
    assert item.status_code == 200 and item.headers["RateLimit-Limit"].startswith("75,")
    GetCatalogItemResponseCompoundDocument.from_dict(item.json())
    assert item.json()["data"]["attributes"]["title"] == "Item SKU-1"
    encoded = klaviyo.get("/api/catalog-variants/%24custom%3A%3A%3A%24default%3A%3A%3ASKU-1-S")
    assert encoded.status_code == 200 and encoded.json()["data"]["id"] == catalog_id("SKU-1-S")
    assert klaviyo.get(f"/api/catalog-categories/{catalog_id('SALE')}").json()["data"]["attributes"]["name"] == "SALE"
    for path in ("/api/catalog-items/$custom:::$default:::NOPE", "/api/catalog-variants/x",
                 "/api/catalog-categories/x", "/api/catalog-nothings"):
        missing = klaviyo.get(path)
        assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "not_found", path


def test_catalog_reads_need_the_key_and_a_revision(fake, klaviyo):
    assert klaviyo.get("/api/catalog-items", headers={"Authorization": "Klaviyo-API-Key nope"}).status_code == 401
    headers = {k: v for k, v in KLAVIYO_HEADERS.items() if k != "revision"}
    no_revision = httpx.get(f"{fake.base_url('klaviyo')}/api/catalog-items", headers=headers, timeout=5)
    assert no_revision.status_code == 400
    assert no_revision.json()["errors"][0]["source"] == {"parameter": "revision"}


# --- back in stock -----------------------------------------------------------------------------


def test_back_in_stock_answers_202_without_a_body_and_records_the_subscription(fake, klaviyo):
    _seed(klaviyo)
    by_email = klaviyo.post("/api/back-in-stock-subscriptions", json=bis_body("SKU-1-S"))
    by_phone = klaviyo.post("/api/back-in-stock-subscriptions",
                            json=bis_body("SKU-2-S", email=None, phone_number="+15005550006",
                                          channels=("SMS", "EMAIL")))
    assert (by_email.status_code, by_email.content, by_phone.status_code) == (202, b"", 202)
    assert by_email.headers["RateLimit-Limit"].startswith("350,")
    assert fake.klaviyo_bis == [
        {"profile": {"email": "john.smith@example.com"}, "channels": ["EMAIL"], "variant": catalog_id("SKU-1-S")},
        {"profile": {"phone_number": "+15005550006"}, "channels": ["SMS", "EMAIL"],
         "variant": catalog_id("SKU-2-S")},
    ]


def _bis_without_profile() -> dict[str, Any]:
    body = bis_body("SKU-1-S")
    del body["data"]["attributes"]["profile"]
    return body


@pytest.mark.parametrize(("body", "pointer"), [
    (bis_body("SKU-1-S", email=None), "/data/attributes/profile/data/attributes"),
    (bis_body("SKU-1-S", email=None, phone_number="5005550006"), "/data/attributes/profile/data/attributes/phone_number"),
    (bis_body("SKU-1-S", email="not-an-email"), "/data/attributes/profile/data/attributes/email"),
    (_bis_without_profile(), "/data/attributes/profile"),
    (bis_body("SKU-1-S", channels=()), "/data/attributes/channels"),
    (bis_body("SKU-1-S", channels=("EMAIL", "PUSH")), "/data/attributes/channels/1"),
    (bis_body("SKU-1-S", channels=("FAX",)), "/data/attributes/channels"),
    (bis_body("NOPE"), "/data/relationships/variant/data/id"),
    (_set(bis_body("SKU-1-S"), ["data", "relationships", "variant", "data"], _DELETE),
     "/data/relationships/variant/data/id"),
    (_set(bis_body("SKU-1-S"), ["data", "type"], "bis-subscription"), "/data/type"),
    (_set(bis_body("SKU-1-S"), ["data", "attributes", "list_id"], "Y6nRLr"), "/data/attributes/list_id"),
    (_set(bis_body("SKU-1-S"), ["data", "relationships", "variant", "data", "type"], "catalog-item"),
     "/data/relationships/variant/data/type"),
], ids=["no-identifier", "phone-not-e164", "bad-email", "no-profile", "no-channels", "push-channel",
        "unknown-channel", "unknown-variant", "no-variant", "wrong-type", "unknown-key", "variant-ref-type"])
def test_back_in_stock_refuses_invalid_subscriptions_with_a_pointer(fake, klaviyo, body, pointer):
    _seed(klaviyo)
    response = klaviyo.post("/api/back-in-stock-subscriptions", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["source"] == {"pointer": pointer}, response.json()["errors"][0]["detail"]
    assert fake.klaviyo_bis == []


# --- controls ----------------------------------------------------------------------------------


def test_forgetting_ids_makes_klaviyo_act_as_if_it_lost_them(fake, klaviyo):
    _seed(klaviyo)
    _job(klaviyo, "item", "update", [{"type": "catalog-item", "id": catalog_id("SKU-2"), "attributes": {},
                                      "relationships": {"categories": {"data": [catalog_ref("category", "SALE")]}}}])
    assert fake.forget_klaviyo_catalog_id(catalog_id("SKU-1")) == "item"
    assert fake.forget_klaviyo_catalog_id(catalog_id("SKU-2-S")) == "variant"
    assert fake.forget_klaviyo_catalog_id(catalog_id("SALE")) == "category"
    assert fake.forget_klaviyo_catalog_id(catalog_id("SKU-1")) is None
    assert fake.klaviyo_variants == {}  # a lost item's variants are lost with it
    assert fake.klaviyo_catalog[catalog_id("SKU-2")]["categories"] == []  # a lost category leaves its items

    assert klaviyo.get(f"/api/catalog-items/{catalog_id('SKU-1')}").status_code == 404
    update = _job(klaviyo, "item", "update", [{"type": "catalog-item", "id": catalog_id("SKU-1"),
                                               "attributes": {"price": 1}}])
    assert [e[0] for e in _errors(update)] == ["not_found"]
    refused = klaviyo.post("/api/back-in-stock-subscriptions", json=bis_body("SKU-2-S"))
    assert refused.json()["errors"][0]["source"] == {"pointer": "/data/relationships/variant/data/id"}
    recreated = _job(klaviyo, "item", "create", [item_entry("SKU-1")])
    assert recreated["attributes"]["failed_count"] == 0


def test_forgetting_an_id_that_is_an_item_and_its_variant_drops_both(fake, klaviyo):
    _job(klaviyo, "item", "create", [item_entry("LONE")])
    _job(klaviyo, "variant", "create", [variant_entry("LONE", "LONE")])
    assert fake.forget_klaviyo_catalog_id(catalog_id("LONE")) == "item"
    assert fake.klaviyo_catalog == {} and fake.klaviyo_variants == {}


def test_catalog_controls_over_http_under_fake(fake, klaviyo):
    _seed(klaviyo)
    control = f"{fake.url}/_fake"
    assert httpx.post(f"{control}/klaviyo-job-polls", json={"polls": 1}, timeout=5).status_code == 204
    assert fake.klaviyo_job_polls == 1
    for bad in ({"polls": -1}, {"polls": "2"}, {"polls": True}, {}):
        assert httpx.post(f"{control}/klaviyo-job-polls", json=bad, timeout=5).status_code == 400
    forgot = httpx.post(f"{control}/klaviyo-forget", json={"id": catalog_id("SKU-1-S")}, timeout=5)
    assert forgot.status_code == 200 and forgot.json() == {"forgotten": "variant"}
    assert httpx.post(f"{control}/klaviyo-forget", json={"id": catalog_id("SKU-1-S")}, timeout=5).status_code == 404
    assert httpx.post(f"{control}/klaviyo-forget", json={"id": 7}, timeout=5).status_code == 400
    assert catalog_id("SKU-1-S") not in fake.klaviyo_variants
    assert _job(klaviyo, "item", "create", [item_entry("SKU-9")])["attributes"]["status"] == "processing"
    assert not any(r.path.startswith("/_fake") for r in fake.requests)


def test_clear_state_empties_the_catalog_and_reset_restores_the_settings(fake, klaviyo):
    _seed(klaviyo)
    klaviyo.post("/api/back-in-stock-subscriptions", json=bis_body("SKU-1-S"))
    fake.set_klaviyo_job_polls(3)
    _job(klaviyo, "item", "create", [item_entry("SKU-9")])
    fake.clear_state()
    assert (fake.klaviyo_catalog, fake.klaviyo_variants, fake.klaviyo_categories, fake.klaviyo_bis,
            fake.klaviyo_jobs, fake.klaviyo_pending_jobs, fake.klaviyo_max_jobs_in_flight) == ({}, {}, {}, [], [], {}, 0)
    assert fake.klaviyo_job_polls == 3  # a setting, like a fault: only reset() drops it
    fake.reset()
    assert fake.klaviyo_job_polls == 0
    with pytest.raises(ValueError):
        fake.set_klaviyo_job_polls(-1)


@pytest.mark.slow
def test_catalog_controls_over_http_under_control_in_a_fake_process():
    process = subprocess.Popen([sys.executable, "-m", "tests.fakeplatform", "--port", "0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        with httpx.Client(base_url=f"{url}/klaviyo", headers=KLAVIYO_HEADERS, timeout=5) as client:
            assert httpx.post(f"{url}/_control/klaviyo-job-polls", json={"polls": 1}, timeout=5).status_code == 204
            job = _job(client, "item", "create", [item_entry("SKU-1")])
            assert job["attributes"]["status"] == "processing"
            assert _poll(client, "item", "create", job["id"])["attributes"]["status"] == "processing"
            assert _poll(client, "item", "create", job["id"])["attributes"]["status"] == "complete"
            forgot = httpx.post(f"{url}/_control/klaviyo-forget", json={"id": catalog_id("SKU-1")}, timeout=5)
            assert forgot.json() == {"forgotten": "item"}
            assert client.get(f"/api/catalog-items/{catalog_id('SKU-1')}").status_code == 404
            assert httpx.post(f"{url}/_control/reset", timeout=5).status_code == 204
            assert _job(client, "item", "create", [item_entry("SKU-2")])["attributes"]["status"] == "complete"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


"""Klaviyo's catalog kept equal to shoprelay's through the Catalog API, against the fake Klaviyo (every job body
validated with the SDK's models, jobs answered "processing" before they complete), on both databases."""

from __future__ import annotations

from decimal import Decimal

import orjson
import sqlalchemy as sa

from tests.conftest import both_databases
from tests.fakeplatform import FakePlatform
from tests.fixtures import WOOCOMMERCE_SAMPLE
from webapp.models import CatalogEntry, CatalogReconcile, Product
from webapp.schemas import responses as out
from webapp.schemas.sources import SourceCreate
from webapp.services.catalog.sources import create_source, save_upload
from webapp.services.catalog.sync import request_sync, run_sync

pytestmark = both_databases
PREFIX = "$custom:::$default:::"


def _woo_catalog(db) -> list[Product]:  # noqa: ANN001
    source = create_source(SourceCreate(name="Woo", kind="woocommerce", options={"store_url": "https://shop.test"}))
    with WOOCOMMERCE_SAMPLE.open("rb") as handle:
        save_upload(source, "export.csv", handle)
    run = run_sync(request_sync(source, enqueue=False).id)
    assert run.status == "succeeded", run.error
    return list(db.session.scalars(sa.select(Product)).all())


def _klaviyo(api, fake, **extra) -> dict:  # noqa: ANN001, ANN003
    response = api.post("/api/v1/destinations", json={
        "name": "Klaviyo", "kind": "klaviyo", "credentials": {"api_key": fake.klaviyo_key},
        "base_url": fake.base_url("klaviyo"), "catalog": "api", **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _job_entries(fake: FakePlatform, kind: str, action: str) -> list[list[dict]]:
    path = f"/klaviyo/api/catalog-{kind}-bulk-{action}-jobs"
    return [orjson.loads(r.body)["data"]["attributes"][{"item": "items", "variant": "variants",
                                                         "category": "categories"}[kind]]["data"]
            for r in fake.requests if r.method == "POST" and r.path == path]


def _forget_requests(fake: FakePlatform) -> None:
    with fake.lock:
        fake.requests.clear()


def _reconcile(api, worker, destination_id: int, full: bool = False) -> dict:  # noqa: ANN001
    response = api.post(f"/api/v1/destinations/{destination_id}/catalog/reconcile" + ("?full=1" if full else ""))
    assert response.status_code == 202, response.get_json()
    worker(["sync"])
    status = api.get(f"/api/v1/destinations/{destination_id}/catalog").get_json()
    out.DestinationCatalogOut.model_validate(status)
    return status


def test_first_reconcile_of_the_woocommerce_sample(api, db, fake, worker) -> None:  # noqa: ANN001
    products = _woo_catalog(db)
    destination = _klaviyo(api, fake)
    worker(["sync"])  # switching the catalog on queued a full reconcile
    status = api.get(f"/api/v1/destinations/{destination['id']}/catalog").get_json()
    out.DestinationCatalogOut.model_validate(status)
    assert status["state"] == "in_step", status
    sellable = [p for p in products if p.link and p.price is not None]
    groups = {p.item_group_id or p.external_id for p in sellable}
    categories = {name for p in sellable for name in p.categories or []}
    assert (status["items"], status["variants"], status["categories"]) == (len(groups), len(sellable),
                                                                         len(categories))
    assert len(fake.klaviyo_catalog) == len(groups) and len(fake.klaviyo_variants) == len(sellable)
    assert len(fake.klaviyo_categories) == len(categories) and status["pending_jobs"] == 0
    # Variations become variants of their variable parent's item, which carries the parent's name.
    variations = [p for p in sellable if p.item_group_id]
    assert variations
    parent = variations[0].item_group_id
    item = fake.klaviyo_catalog[PREFIX + parent]
    assert item["attributes"]["title"] == "V-Neck T-Shirt" if parent == "44" else item["attributes"]["title"]
    children = [v for v in fake.klaviyo_variants.values() if v["item"] == PREFIX + parent]
    assert len(children) == len([p for p in variations if p.item_group_id == parent])
    assert all(isinstance(v["attributes"]["inventory_quantity"], int) for v in children)
    # Nothing changed: a second reconcile sends no job.
    jobs = sum(1 for r in fake.requests if r.method == "POST")
    assert _reconcile(api, worker, destination["id"])["state"] == "in_step"
    assert sum(1 for r in fake.requests if r.method == "POST") == jobs
    page = api.get(f"/api/v1/destinations/{destination['id']}").get_json()
    assert page["catalog"] == "api"


def test_changes_go_out_as_the_difference(api, db, fake, worker) -> None:  # noqa: ANN001
    products = _woo_catalog(db)
    destination = _klaviyo(api, fake)
    worker(["sync"])
    _forget_requests(fake)
    changed = next(p for p in products if p.item_group_id and p.link and p.price is not None)
    changed.price = changed.price + Decimal("100")  # dearer: the item's lowest price stays
    removed = next(p for p in products if not p.item_group_id and p.link and p.price is not None)
    db.session.delete(removed)
    db.session.commit()
    status = _reconcile(api, worker, destination["id"])
    assert status["state"] == "in_step"
    updates = _job_entries(fake, "variant", "update")
    assert [[entry["id"] for entry in job] for job in updates] == [[PREFIX + changed.external_id]]
    assert fake.klaviyo_variants[PREFIX + changed.external_id]["attributes"]["price"] == float(changed.price)
    assert _job_entries(fake, "variant", "delete") == [[{"type": "catalog-variant",
                                                         "id": PREFIX + removed.external_id}]]
    assert PREFIX + removed.external_id not in fake.klaviyo_catalog
    assert not _job_entries(fake, "item", "create") and not _job_entries(fake, "variant", "create")


def test_what_the_platform_lost_is_created_again_by_a_full_reconcile(api, db, fake, worker) -> None:  # noqa: ANN001
    products = _woo_catalog(db)
    destination = _klaviyo(api, fake)
    worker(["sync"])
    lone = next(p for p in products if not p.item_group_id and p.link and p.price is not None)
    fake.forget_klaviyo_catalog_id(PREFIX + lone.external_id)  # the item (its variants go with it)
    assert _reconcile(api, worker, destination["id"])["state"] == "in_step"
    assert PREFIX + lone.external_id not in fake.klaviyo_catalog  # the ledger alone cannot know
    status = _reconcile(api, worker, destination["id"], full=True)
    assert status["state"] == "in_step" and status["last_reconcile"]["counts"]["item_lost"] == 1
    assert PREFIX + lone.external_id in fake.klaviyo_catalog
    assert PREFIX + lone.external_id in fake.klaviyo_variants


def test_an_update_of_an_unknown_entry_becomes_a_create(api, db, fake, worker) -> None:  # noqa: ANN001
    products = _woo_catalog(db)
    destination = _klaviyo(api, fake)
    worker(["sync"])
    lone = next(p for p in products if not p.item_group_id and p.link and p.price is not None)
    fake.forget_klaviyo_catalog_id(PREFIX + lone.external_id)
    _forget_requests(fake)
    lone.title = "Renamed"
    db.session.commit()
    status = _reconcile(api, worker, destination["id"])
    assert status["state"] == "in_step", status
    assert fake.klaviyo_catalog[PREFIX + lone.external_id]["attributes"]["title"] == "Renamed"
    assert [entry["id"] for job in _job_entries(fake, "item", "update") for entry in job] == [
        PREFIX + lone.external_id]
    assert [entry["attributes"]["external_id"] for job in _job_entries(fake, "item", "create")
            for entry in job] == [lone.external_id]


def test_refused_entries_are_shown_with_their_product(api, db, fake, worker, logged_in) -> None:  # noqa: ANN001
    products = _woo_catalog(db)
    destination = _klaviyo(api, fake)
    worker(["sync"])
    lone = next(p for p in products if not p.item_group_id and p.categories and p.link and p.price is not None)
    category = sorted(fake.klaviyo_categories)[0]
    # The ledger says the category exists; the platform lost it, so items naming it are refused.
    db.session.execute(sa.update(CatalogEntry).where(CatalogEntry.kind == "category").values(
        confirmed_digest=sa.func.coalesce(CatalogEntry.confirmed_digest, "x")))
    db.session.commit()
    for name in list(fake.klaviyo_categories):
        fake.forget_klaviyo_catalog_id(name)
    lone.title = "Needs its category"
    db.session.commit()
    status = _reconcile(api, worker, destination["id"])
    assert status["state"] == "errors", status
    refused = [error for error in status["errors"] if error["external_id"] == lone.external_id]
    assert refused and refused[0]["product"] == f"{lone.source_id}:{lone.external_id}" and refused[0]["message"]
    html = logged_in.get(f"/destinations/{destination['id']}").get_data(as_text=True)
    assert "Refused by Klaviyo" in html and lone.external_id in html
    overview = logged_in.get("/").get_data(as_text=True)
    assert "Klaviyo refused some of Klaviyo&#39;s catalog" in overview and "Catalog API" in overview
    # A full reconcile reads the platform back: the categories are created again and the items go through.
    healed = _reconcile(api, worker, destination["id"], full=True)
    assert healed["state"] == "in_step", healed
    assert category in fake.klaviyo_categories
    assert fake.klaviyo_catalog[PREFIX + lone.external_id]["attributes"]["title"] == "Needs its category"


def test_jobs_stay_within_the_limits(api, db, fake, worker) -> None:  # noqa: ANN001
    body = {"upserts": [{"external_id": f"P{n}", "title": f"Product {n}", "price": 5 + n,
                         "link": f"https://shop.test/p/{n}", "categories": [f"Cat {n % 3}"]} for n in range(250)]}
    assert api.post("/api/v1/products", json=body).status_code == 202
    destination = _klaviyo(api, fake)
    worker(["sync"])
    assert [len(job) for job in _job_entries(fake, "item", "create")] == [100, 100, 50]
    assert [len(job) for job in _job_entries(fake, "variant", "create")] == [100, 100, 50]
    assert len(fake.klaviyo_variants) == 250 and fake.klaviyo_max_jobs_in_flight <= 450
    run = db.session.scalars(sa.select(CatalogReconcile).where(
        CatalogReconcile.destination_id == destination["id"])).one()
    assert run.status == "succeeded" and run.trigger == "enabled" and run.full
    assert run.counts["sent"]["create"] == {"category": 3, "item": 250, "variant": 250}


def test_a_rate_limited_account_waits(api, db, fake, worker) -> None:  # noqa: ANN001
    _woo_catalog(db)
    fake.rate_limit_next(1, retry_after=1, platform="klaviyo")
    destination = _klaviyo(api, fake)
    worker(["sync"])
    status = api.get(f"/api/v1/destinations/{destination['id']}/catalog").get_json()
    assert status["state"] == "in_step"
    assert not fake.early_requests(platform="klaviyo")

"""Sendlane's catalog kept by the reconcile: one product-added per item with its variants and their inventory,
category-added for every category (parents first), only the difference after that, refused products listed,
removed products kept at Sendlane (it takes no removal) and counted; against the fake Sendlane (its required
fields and types from Sendlane's own OpenAPI export), on both databases."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from tests.conftest import both_databases
from tests.fakeplatform import FakePlatform
from tests.webapp.platform_catalogs.test_reconcile import _reconcile, _woo_catalog
from webapp.models import CatalogEntry, Event, Product
from webapp.schemas import responses as out
from webapp.services.platform_catalogs.plan import category_id

pytestmark = both_databases


def _sendlane(api, fake: FakePlatform) -> dict:  # noqa: ANN001
    """Sendlane's default window (4/s, of which the catalog takes half) would make each test wait minutes."""
    response = api.post("/api/v1/destinations", json={
        "name": "Sendlane", "kind": "sendlane", "base_url": fake.base_url("sendlane"), "catalog": "api",
        "rate_limits": {"burst_per_second": 200, "per_minute": 12000},
        "credentials": {"api_token": fake.sendlane_token, "integration_token": fake.sendlane_integration_token}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _tracked(fake: FakePlatform, kind: str) -> list[dict]:
    with fake.lock:
        return list(fake.sendlane_tracked.get(kind, []))


def _forget(fake: FakePlatform) -> None:
    with fake.lock:
        fake.sendlane_tracked.clear()
        fake.requests.clear()


def test_first_reconcile_sends_each_item_with_its_variants_and_every_category(api, db, fake, redis,  # noqa: ANN001
                                                                             worker) -> None:
    products = _woo_catalog(db)
    destination = _sendlane(api, fake)
    worker(["sync"])  # switching the catalog on queued the first reconcile
    status = api.get(f"/api/v1/destinations/{destination['id']}/catalog").get_json()
    out.DestinationCatalogOut.model_validate(status)
    assert status["state"] == "in_step", status
    sellable = [p for p in products if p.link and p.price is not None]
    groups: dict[str, list[Product]] = {}
    for product in sellable:
        groups.setdefault(product.item_group_id or product.external_id, []).append(product)
    with_image = {key for key, rows in groups.items() if any(row.image_link for row in rows)}
    sent = {body["product_id"]: body for body in _tracked(fake, "product-added")}
    assert set(sent) == with_image and status["items"] == len(with_image)
    # A variable product is one Sendlane product; its variations are its variants, with their inventory.
    parent = next(key for key in with_image if len(groups[key]) > 1)
    body = sent[parent]
    assert sorted(variant["id"] for variant in body["variants"]) == sorted(p.external_id for p in groups[parent])
    stocked = {p.external_id: int(p.inventory_quantity or 0) for p in groups[parent]}
    assert {variant["id"]: variant["inventory_level"] for variant in body["variants"]} == stocked
    assert body["product_url"].startswith("https://shop.test/") and body["image_url"]
    # Categories: each path's parents too, each parent sent before the categories under it.
    categories = _tracked(fake, "category-added")
    names = {name for p in sellable for name in p.categories or []}
    paths = {" > ".join(name.split(" > ")[:depth]) for name in names for depth in range(1, name.count(" > ") + 2)}
    assert {c["category_id"] for c in categories} == {category_id(path) for path in paths}
    order = [c["category_id"] for c in categories]
    assert all(order.index(c["parent_id"]) < order.index(c["category_id"]) for c in categories if "parent_id" in c)
    # Products without an image are counted per reason, not sent.
    if len(with_image) < len(groups):
        run = status["last_reconcile"]
        assert run["counts"]["skipped"]["no image URL (Sendlane needs one)"] == len(groups) - len(with_image)
    # Catalog data goes by the reconcile, not as product events through the outbox.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Event).where(
        Event.name.in_(("product_upsert", "product_delete")))) == 0
    # Every call took a slot of the catalog's own window (half the account's) and of the account's window
    # that order events use too.
    posts = sum(1 for r in fake.requests if r.method == "POST" and r.path.startswith("/sendlane/tracking/"))
    account = f"sendlane:{fake.base_url('sendlane')}"
    windows = {key.decode().rsplit(":", 1)[-1]: redis.zcard(key) for key in redis.scan_iter("shoprelay:rl:*")}
    assert windows.get("catalog") == posts and windows.get("single") == posts, (windows, account)
    # Nothing changed: a second reconcile sends nothing.
    _forget(fake)
    assert _reconcile(api, worker, destination["id"])["state"] == "in_step"
    assert [r for r in fake.requests if r.method == "POST"] == []


def test_changes_refusals_removals_and_sending_everything_again(api, db, fake, worker) -> None:  # noqa: ANN001
    products = _woo_catalog(db)
    destination = _sendlane(api, fake)
    worker(["sync"])
    _forget(fake)
    sellable = [p for p in products if p.link and p.price is not None and p.image_link]
    changed = next(p for p in sellable if p.item_group_id)
    changed.inventory_quantity = (changed.inventory_quantity or 0) + 7
    removed = next(p for p in sellable if not p.item_group_id)
    db.session.delete(removed)
    db.session.commit()
    status = _reconcile(api, worker, destination["id"])
    (body,) = _tracked(fake, "product-added")  # the changed variant's product, once, and nothing else
    assert body["product_id"] == changed.item_group_id
    assert {v["id"]: v["inventory_level"] for v in body["variants"]}[changed.external_id] == \
        changed.inventory_quantity
    assert _tracked(fake, "category-added") == []
    # Sendlane takes no removal: nothing sent for it, the ledger forgets it, the run says so.
    assert status["last_reconcile"]["counts"]["kept_at_platform"] == {"item": 1}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CatalogEntry).where(
        CatalogEntry.external_id == removed.external_id)) == 0
    # A product Sendlane refuses (422) is listed with why; the others still go out.
    _forget(fake)
    others = [p for p in sellable if p.item_group_id != changed.item_group_id and p is not removed][:2]
    for product in others:
        product.price = product.price + Decimal("1")
    db.session.commit()
    fake.reject_next(1, status=422, detail="The product url is not valid.", platform="sendlane")
    status = _reconcile(api, worker, destination["id"])
    assert status["state"] == "errors" and len(status["errors"]) == 1
    assert "not valid" in status["errors"][0]["message"] and status["errors"][0]["product"]
    assert len(_tracked(fake, "product-added")) == len({p.item_group_id or p.external_id for p in others}) - 1
    # The next run sends the refused one again (its change is still not confirmed) and clears the error.
    _forget(fake)
    assert _reconcile(api, worker, destination["id"])["state"] == "in_step"
    assert len(_tracked(fake, "product-added")) == 1
    # "Send everything again": Sendlane cannot say what it holds, so a full run sends every entry.
    _forget(fake)
    status = _reconcile(api, worker, destination["id"], full=True)
    assert status["state"] == "in_step"
    assert len(_tracked(fake, "product-added")) == status["items"]
    assert len(_tracked(fake, "category-added")) == status["categories"]


def test_refused_credentials_end_the_run_and_keep_the_ledger_true(api, db, fake, worker) -> None:  # noqa: ANN001
    _woo_catalog(db)
    fake.set_auth_failure("sendlane")
    destination = _sendlane(api, fake)
    worker(["sync"])
    status = api.get(f"/api/v1/destinations/{destination['id']}/catalog").get_json()
    assert status["state"] == "failed" and status["items"] == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CatalogEntry).where(
        CatalogEntry.action.is_not(None) | CatalogEntry.confirmed_digest.is_not(None))) == 0
    fake.set_auth_failure("sendlane", False)
    assert _reconcile(api, worker, destination["id"])["state"] == "in_step"

"""The destination's `catalog` setting: validated per platform, warned about when Klaviyo also fetches a feed,
routed (Klaviyo and Sendlane through reconciles, webhooks through product events), and run from the CLI."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import both_databases
from webapp.models import CatalogReconcile, Event, FeedFetch, Source
from webapp.schemas.feeds import FeedCreate
from webapp.services.publishing.feeds import create_feed

pytestmark = both_databases


def _destination(api, fake, kind: str = "klaviyo", **extra):  # noqa: ANN001, ANN003, ANN202
    credentials = {"klaviyo": {"api_key": fake.klaviyo_key},
                   "sendlane": {"api_token": fake.sendlane_token,
                                "integration_token": fake.sendlane_integration_token},
                   "esputnik": {"api_key": fake.esputnik_key},
                   "webhook": {"url": fake.base_url("webhook"), "secret": fake.webhook_secret}}[kind]
    body = {"name": kind, "kind": kind, "credentials": credentials, **extra}
    if kind != "webhook":
        body["base_url"] = fake.base_url(kind)
    return api.post("/api/v1/destinations", json=body)


def test_catalog_is_validated_and_defaults_to_off(api, fake) -> None:  # noqa: ANN001
    off = _destination(api, fake)
    assert off.status_code == 201 and off.get_json()["catalog"] == "off"
    refused = _destination(api, fake, "esputnik", catalog="api")
    assert refused.status_code == 422 and refused.get_json()["errors"][0]["path"] == "catalog"
    bad = _destination(api, fake, catalog="feed")
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["path"] == "catalog"
    not_kept = api.post(f"/api/v1/destinations/{off.get_json()['id']}/catalog/reconcile")
    assert not_kept.status_code == 409 and not_kept.get_json()["errors"][0]["path"] == "catalog"
    status = api.get(f"/api/v1/destinations/{off.get_json()['id']}/catalog").get_json()
    assert status["state"] == "off" and status["items"] == 0


def test_switching_on_queues_one_full_reconcile(api, db, fake) -> None:  # noqa: ANN001
    created = _destination(api, fake).get_json()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CatalogReconcile)) == 0
    api.patch(f"/api/v1/destinations/{created['id']}", json={"catalog": "api"})
    api.patch(f"/api/v1/destinations/{created['id']}", json={"name": "Renamed"})  # no second run
    runs = db.session.scalars(sa.select(CatalogReconcile)).all()
    assert [(run.trigger, run.full, run.status) for run in runs] == [("enabled", True, "queued")]
    again = api.post(f"/api/v1/destinations/{created['id']}/catalog/reconcile")
    assert again.status_code == 202 and again.get_json()["id"] == runs[0].id  # the queued run is reused


def test_a_fetched_klaviyo_feed_is_warned_about(api, db, fake) -> None:  # noqa: ANN001
    api.post("/api/v1/products", json={"upserts": [{"external_id": "P1", "title": "Tee", "price": 5}]})
    source_id = db.session.scalars(sa.select(Source.id)).one()
    feed = create_feed(FeedCreate(name="Klaviyo feed", slug="k", format="klaviyo_json", source_ids=[source_id]))
    db.session.add(FeedFetch(feed_id=feed.id, path="/x", status=200, user_agent="Klaviyo/1.0"))
    db.session.commit()
    created = _destination(api, fake, catalog="api")
    assert created.status_code == 201
    (warning,) = created.get_json()["warnings"]
    assert warning["path"] == "catalog" and "never both" in warning["message"]


def test_catalogs_go_by_reconcile_and_webhooks_get_product_events(api, db, fake) -> None:  # noqa: ANN001
    sendlane_on = _destination(api, fake, "sendlane", catalog="api").get_json()
    _destination(api, fake, "sendlane")  # off: no product data
    hook_on = _destination(api, fake, "webhook", catalog="api").get_json()
    klaviyo_on = _destination(api, fake, catalog="api").get_json()
    api.post("/api/v1/products", json={"upserts": [{"external_id": "P1", "title": "Tee", "price": 5,
                                                     "link": "https://shop.test/p1"}]})
    rows = db.session.execute(sa.select(Event.destination_id, Event.name)).all()
    assert rows == [(hook_on["id"], "product_upsert")]
    assert sorted(db.session.scalars(sa.select(CatalogReconcile.destination_id)).all()) == sorted(
        [sendlane_on["id"], klaviyo_on["id"]])


def test_the_cli_reconciles_now(api, db, fake, runner) -> None:  # noqa: ANN001
    api.post("/api/v1/products", json={"upserts": [{"external_id": f"P{n}", "title": "Tee", "price": 5,
                                                     "link": f"https://shop.test/p{n}"} for n in range(3)]})
    created = _destination(api, fake).get_json()
    api.patch(f"/api/v1/destinations/{created['id']}", json={"catalog": "api"})
    busy = runner.invoke(args=["destinations", "reconcile-catalog", str(created["id"])])
    assert busy.exit_code != 0 and "already queued" in busy.output
    db.session.execute(sa.update(CatalogReconcile).values(status="failed"))
    db.session.commit()
    result = runner.invoke(args=["destinations", "reconcile-catalog", str(created["id"]), "--full"])
    assert result.exit_code == 0, result.output
    assert "6 created, 0 updated, 0 deleted in 2 jobs" in result.output
    assert len(fake.klaviyo_variants) == 3
    missing = runner.invoke(args=["destinations", "reconcile-catalog", "999"])
    assert missing.exit_code != 0 and "no destination #999" in missing.output

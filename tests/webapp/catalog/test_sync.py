"""Catalog sync end to end: real local HTTP sources, real Redis + RQ worker, both databases."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases
from tests.fixtures import WOOCOMMERCE_SAMPLE
from webapp.models import Product, Source, SyncRun
from webapp.schemas.sources import SourceCreate
from webapp.services.catalog.dispatch import dispatch_due_syncs
from webapp.services.catalog.sources import create_source
from webapp.services.catalog.sync import SyncAlreadyRunning, request_sync, run_sync

HEADER = "id,title,description,price,link,image,stock\n"
WOO_SAMPLE = WOOCOMMERCE_SAMPLE


def _csv(rows):
    return HEADER + "".join(f"{i},{t},Nice {t},{p},https://s.example/p/{i},https://s.example/i/{i}.png,5\n"
                            for i, t, p in rows)


def _source(url, **extra):
    return create_source(SourceCreate(name="Store CSV", kind="csv", location=url, **extra))


def _sync(source, **kwargs):
    run = request_sync(source, enqueue=False, **kwargs)
    return run_sync(run.id)


def _titles(db, source):
    return {p.external_id: p.title for p in db.session.scalars(sa.select(Product).where(
        Product.source_id == source.id))}


@both_databases
def test_three_syncs_add_change_remove_and_conditional_get(app, db, http_server):
    url = http_server.route("/products.csv", _csv([(1, "Mug", "9.99"), (2, "Tee", "19.00"), (3, "Cap", "5")]),
                            etag='"v1"')
    source = _source(url)
    first = _sync(source)
    assert (first.status, first.added, first.updated, first.unchanged, first.removed) == ("succeeded", 3, 0, 0, 0)
    assert source.product_count == 3

    same = _sync(source)
    assert same.not_modified and same.status == "succeeded" and same.unchanged == 3
    assert http_server.requests[-1].headers.get("if-none-match") == '"v1"'

    http_server.route("/products.csv", _csv([(1, "Mug", "9.99"), (2, "Tee v2", "21.00"), (3, "Cap", "5"),
                                             (4, "Bag", "30")]), etag='"v2"')
    second = _sync(source)
    assert (second.added, second.updated, second.unchanged, second.removed) == (1, 1, 2, 0)

    http_server.route("/products.csv", _csv([(1, "Mug", "9.99"), (2, "Tee v2", "21.00"), (4, "Bag", "30")]),
                      etag='"v3"')
    third = _sync(source)
    assert (third.added, third.updated, third.unchanged, third.removed) == (0, 0, 3, 1)
    assert _titles(db, source) == {"1": "Mug", "2": "Tee v2", "4": "Bag"}
    price = db.session.scalar(sa.select(Product.price).where(Product.external_id == "2"))
    assert str(price.normalize()) == "21"


@both_databases
def test_mass_removal_is_held_until_confirmed(app, db, http_server):
    url = http_server.route("/p.csv", _csv([(i, f"T{i}", "1") for i in range(10)]))
    source = _source(url)
    _sync(source)
    http_server.route("/p.csv", _csv([(1, "T1", "1"), (2, "T2", "1")]))
    held = _sync(source)
    assert held.status == "held"
    assert "would remove 8 of 10" in held.error
    assert len(_titles(db, source)) == 10
    confirmed = _sync(source, confirm_removals=True)
    assert confirmed.status == "succeeded" and confirmed.removed == 8
    assert len(_titles(db, source)) == 2


@pytest.mark.parametrize(("route", "needle"), [
    ({"status": 500, "body": b"boom"}, "500"),
    ({"body": b"id,title\n1,\"unterminated\n2,x\n" * 3}, ""),
    ({"body": b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
              b"<items><item><id>1</id><title>&lol2;</title></item></items>"}, "entit"),
    ({"body": b"\xff\xfe\x00garbage" * 10}, ""),
])
def test_bad_sources_fail_clearly_and_keep_the_catalog(app, db, http_server, route, needle):
    url = http_server.route("/good.csv", _csv([(1, "Mug", "9.99"), (2, "Tee", "19")]))
    source = _source(url)
    assert _sync(source).status == "succeeded"
    kind = "xml" if route.get("body", b"").startswith(b"<?xml") else "csv"
    source.kind = kind
    source.mapping = None
    source.location = http_server.route("/bad", **route)
    source.http_etag = None
    db.session.commit()
    run = _sync(source)
    assert run.status in ("failed", "held"), run.error
    assert run.error and needle.lower() in run.error.lower()
    assert _titles(db, source) == {"1": "Mug", "2": "Tee"}


def test_a_long_sync_shows_an_estimated_total_while_it_reads(app, db, api, http_server, monkeypatch):
    """The progress the sources page polls and the API answers: rows read, and the file's estimated total (said
    to be one) long before the read ends; no progress once the run ended."""
    from webapp.services.catalog import sync as catalog_sync

    seen: list[tuple[int, int | None, str]] = []
    answers: list[dict] = []
    real = catalog_sync.set_progress

    def record(kind: str, item_id: int, done: int, total: int | None = None, note: str = "") -> None:
        seen.append((done, total, note))
        real(kind, item_id, done, total, note)
        if done == 10000 and note != "applying":  # what a store polling the API sees mid-read
            answers.append(api.get(f"/api/v1/sync-runs/{item_id}").get_json())

    monkeypatch.setattr(catalog_sync, "set_progress", record)
    source = _source(http_server.route("/big.csv", _csv((n, f"Item {n}", "5") for n in range(20000))))
    assert _sync(source).status == "succeeded"
    reading = [(done, total, note) for done, total, note in seen if note != "applying"]
    midway = [entry for entry in reading if 5000 <= entry[0] < 20000]
    assert midway and all(note == "total estimated from the share of the file read" and
                          abs(total - 20000) < 3000 for _, total, note in midway), reading
    (live,) = answers
    assert live["status"] == "running" and live["progress"]["phase"] == "reading"
    assert live["progress"]["done"] == 10000 and live["progress"]["total_estimated"] is True
    assert abs(live["progress"]["total"] - 20000) < 3000 and 40 < live["progress"]["percent"] < 60
    assert api.get(f"/api/v1/sync-runs/{live['id']}").get_json()["progress"] is None


@both_databases
def test_a_json_export_cut_short_fails_and_keeps_the_catalog(app, db, http_server):
    """A streamed JSON source yields its first items before the cut shows: the run still changes nothing."""
    import orjson

    def export(titles):
        return orjson.dumps({"products": [{"id": str(n), "title": title, "price": "9.99",
                                           "link": f"https://s.example/p/{n}"} for n, title in enumerate(titles)]})

    source = create_source(SourceCreate(name="Store JSON", kind="json",
                                        location=http_server.route("/p.json", export(["Mug", "Tee", "Cap"]))))
    assert _sync(source).status == "succeeded"
    source.location = http_server.route("/cut.json", export(["Mug 2", "Tee 2", "Cap 2", "Hat"])[:-30])
    source.http_etag = None
    db.session.commit()
    run = _sync(source)
    assert run.status == "failed" and "invalid JSON" in run.error and "premature EOF" in run.error, run.error
    assert _titles(db, source) == {"0": "Mug", "1": "Tee", "2": "Cap"}


def test_url_that_times_out_fails_with_a_clear_message(app, db, http_server):
    app.config["FETCH_TIMEOUT"] = 0.3
    source = _source(http_server.route("/slow.csv", _csv([(1, "Mug", "1")]), delay=1.5))
    run = _sync(source)
    assert run.status == "failed"
    assert "timed out" in run.error.lower() or "timeout" in run.error.lower()


def test_two_concurrent_requests_run_once(app, db, api, http_server, worker):
    source = _source(http_server.route("/p.csv", _csv([(1, "Mug", "1")])))
    first = api.post(f"/api/v1/sources/{source.id}/sync")
    second = api.post(f"/api/v1/sources/{source.id}/sync")
    assert first.status_code == 202 and second.status_code == 409
    assert second.get_json()["run"]["id"] == first.get_json()["id"]
    with pytest.raises(SyncAlreadyRunning):
        request_sync(source)
    worker(["sync"])
    run = api.get(f"/api/v1/sync-runs/{first.get_json()['id']}").get_json()
    assert run["status"] == "succeeded" and run["counts"]["added"] == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SyncRun)) == 1


def test_cron_dispatch_enqueues_exactly_the_due_sources(app, db, http_server, redis):
    due = _source(http_server.route("/a.csv", _csv([(1, "A", "1")])))
    later = _source(http_server.route("/b.csv", _csv([(1, "B", "1")])))
    disabled = _source(http_server.route("/c.csv", _csv([(1, "C", "1")])), enabled=False)
    now = datetime.now(UTC)
    due.next_run_at = now - timedelta(minutes=1)
    later.next_run_at = now + timedelta(hours=3)
    disabled.next_run_at = now - timedelta(minutes=1)
    db.session.commit()
    result = dispatch_due_syncs()
    runs = db.session.scalars(sa.select(SyncRun)).all()
    assert [r.source_id for r in runs] == [due.id] and result["started"] == [runs[0].id]
    assert redis.llen("rq:queue:sync") == 1
    again = dispatch_due_syncs()
    assert again["already_running"] == [due.id]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SyncRun)) == 1


def test_woocommerce_sample_through_the_cli(app, db, runner, tmp_path):
    source = create_source(SourceCreate(name="Woo", kind="woocommerce",
                                        options={"store_url": "https://shop.example"}))
    from webapp.services.catalog.sources import save_upload

    with WOO_SAMPLE.open("rb") as handle:
        save_upload(source, "export.csv", handle)
    result = runner.invoke(args=["sources", "sync", str(source.id)])
    assert result.exit_code == 0, result.output
    products = db.session.scalars(sa.select(Product).where(Product.source_id == source.id)).all()
    assert len(products) > 20
    variations = [p for p in products if p.item_group_id]
    assert variations and all(p.link and p.link.startswith("https://shop.example") for p in variations)
    again = runner.invoke(args=["sources", "sync", str(source.id)])
    assert "0 added, 0 updated" in again.output


def test_push_api_upserts_and_deletes(api, db):
    body = {"upserts": [{"external_id": "P1", "title": "Mug", "price": 9.5, "link": "https://s.example/p1"},
                        {"external_id": "P2", "title": "Tee", "price": 19}]}
    response = api.post("/api/v1/products", json=body)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["added"] == 2
    again = api.post("/api/v1/products", json={"upserts": [body["upserts"][0] | {"price": 10}],
                                                "deletes": ["P2"]})
    assert again.get_json() | {} == again.get_json() and again.get_json()["updated"] == 1
    assert again.get_json()["removed"] == 1
    source = db.session.scalars(sa.select(Source)).one()
    assert source.kind == "push" and source.product_count == 1
    bad = api.post("/api/v1/products", json={"upserts": [{"external_id": "X", "price": "ten"}]})
    assert bad.status_code == 422
    assert {e["path"] for e in bad.get_json()["errors"]} >= {"upserts.0.title", "upserts.0.price"}


def test_resync_recognises_unchanged_rows_without_mapping_them(app, db, http_server):
    from feeds.product import Unchanged
    from feeds.readers import read_products
    from webapp.services.catalog.diff import known_hash, stored_index

    rows = [(i, f"T{i}", "1") for i in range(20)]
    source = _source(http_server.route("/p.csv", _csv(rows)))
    _sync(source)
    rows[3] = (3, "T3 renamed", "1")
    http_server.route("/p.csv", _csv(rows))
    run = _sync(source)
    assert (run.added, run.updated, run.unchanged) == (0, 1, 19)
    stored = Path(app.config["UPLOADS_DIR"]) / f"source-{source.id}.download"
    items = list(read_products("csv", stored, known=known_hash(stored_index(source.id))))
    assert sum(isinstance(item, Unchanged) for item in items) == 20
    source.mapping = {"external_id": "id", "title": "description", "price": "price"}  # a new mapping
    db.session.commit()
    remapped = _sync(source)
    assert remapped.updated == 20 and _titles(db, source)["3"] == "Nice T3 renamed"


@both_databases
def test_a_stopping_worker_interrupts_a_sync_without_touching_the_catalog(app, db, http_server):
    """Warm shutdown: a long sync stops at its next progress report (every 1,000 rows) instead of holding the
    worker for minutes; nothing of it is committed, and the same sync is queued again for another worker."""
    from workers import shutdown

    url = http_server.route("/p.csv", _csv([(1, "Mug", "9.99"), (2, "Tee", "19")]))
    source = _source(url)
    assert _sync(source).status == "succeeded"
    source.location = http_server.route("/big.csv", _csv([(i, f"Item {i}", "3") for i in range(5000)]))
    db.session.commit()
    shutdown.request()
    try:
        run = _sync(source, trigger="schedule")
    finally:
        shutdown.reset()
    assert run.status == "failed" and "worker was shutting down" in run.error and "queued again" in run.error
    assert _titles(db, source) == {"1": "Mug", "2": "Tee"}
    again = db.session.scalars(sa.select(SyncRun).where(SyncRun.source_id == source.id)
                               .order_by(SyncRun.id.desc())).first()
    assert (again.status, again.trigger) == ("queued", "schedule") and again.id != run.id
    assert run_sync(again.id).status == "succeeded" and len(_titles(db, source)) == 5000

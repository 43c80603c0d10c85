"""Browser: upload a CSV as a source, map its columns with a live preview, sync it, browse its products."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import screenshot

CSV = ("code;name;cost;picture;group;maker;qty\n"
       "A-1;Blue Mug;12,50;https://shop.example/i/a1.jpg;Kitchen > Mugs;Potter;4\n"
       "A-2;Red Mug;9,90;;Kitchen > Mugs;Potter;0\n"
       "A-3;Teapot;39,00;;Kitchen > Tea;Kettle & Co;2\n"
       "A-4;;5;;Kitchen;;1\n")


def test_upload_map_sync_and_browse(logged_in_page, tmp_path: Path, worker, db) -> None:  # noqa: ANN001
    page = logged_in_page
    page.goto("/sources/")
    page.get_by_role("heading", name="No sources yet").wait_for()
    page.get_by_role("link", name="Upload a file").click()
    assert not page.locator("#location").is_visible()  # URL fields stay hidden while "upload" is chosen

    source_file = tmp_path / "mugs.csv"
    source_file.write_text(CSV)
    page.fill("#name", "Mug shop")
    page.set_input_files("#upload", str(source_file))
    page.get_by_text("Advanced: reader options").click()
    page.fill("#opt-currency", "EUR")
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url("**/sources/1/mapping")
    page.get_by_text("Not mapped yet: ID").wait_for()

    page.select_option("#map-external_id", "code")
    page.locator(".preview-table").get_by_text("Blue Mug").wait_for()  # a change refreshes the preview
    page.select_option("#map-price", "cost")
    page.select_option("#map-brand", "maker")
    page.select_option("#map-categories", "group")
    page.get_by_role("button", name="Preview").click()
    page.locator(".preview-table").get_by_text("12.50 EUR").wait_for()
    assert page.locator(".preview-table tbody tr").count() == 3
    assert page.locator(".problems").get_by_text("no title").is_visible()
    screenshot(page, "sources-mapping-preview")

    page.get_by_role("button", name="Save and sync now").click()
    page.wait_for_url("**/sources/1")
    page.get_by_text("Waiting for a worker").wait_for()
    worker()
    page.get_by_role("link", name="Reload the page").click()  # the progress fragment stopped polling
    page.get_by_text("3 products").first.wait_for()
    assert page.locator(".runs tbody tr").count() == 1
    screenshot(page, "sources-detail")

    page.goto("/sources/")
    page.get_by_text("daily at 02:00 UTC").wait_for()
    screenshot(page, "sources-list")

    page.get_by_role("link", name="Browse products").click()
    page.get_by_role("link", name="Teapot").wait_for()
    page.get_by_role("link", name="Kettle & Co").click()
    page.wait_for_url("**brand=Kettle*")
    assert page.locator("#product-rows tbody tr").count() == 1 and page.input_value("#brand") == "Kettle & Co"
    page.get_by_role("link", name="Teapot").click()
    page.locator("#product-panel").get_by_text("39.00 EUR").wait_for()
    screenshot(page, "sources-products")


def test_held_sync_and_live_progress(logged_in_page, tmp_path: Path, worker, db) -> None:  # noqa: ANN001
    import io

    from webapp.models import SyncRun, utcnow
    from webapp.schemas.sources import SourceCreate
    from webapp.services.catalog.sources import create_source, save_upload
    from webapp.services.catalog.sync import request_sync
    from webapp.services.platform.progress import set_progress

    page = logged_in_page
    page.goto("/sources/new")
    screenshot(page, "sources-form")
    source = create_source(SourceCreate(name="Seasonal", kind="csv"))
    save_upload(source, "a.csv", io.BytesIO(b"id,title\n" + b"".join(b"%d,Item %d\n" % (i, i) for i in range(8))))
    request_sync(source)
    worker()
    save_upload(source, "b.csv", io.BytesIO(b"id,title\n1,Item 1\n"))  # 7 of 8 products gone
    request_sync(source)
    worker()
    page.goto(f"/sources/{source.id}")
    page.get_by_role("button", name="Sync and allow removals").wait_for()
    screenshot(page, "sources-detail-held")

    run = SyncRun(source_id=source.id, status="running", trigger="schedule", started_at=utcnow(), problems=[])
    db.session.add(run)
    db.session.commit()
    set_progress("sync", run.id, 2500, 10000)
    page.reload()
    page.get_by_text("2,500 of 10,000 rows read").wait_for()
    screenshot(page, "sources-detail-running")
    set_progress("sync", run.id, 7500, 10000)
    page.get_by_text("7,500 of 10,000 rows read").wait_for()  # the fragment polls itself
    run.status, run.finished_at, run.rows_read, run.unchanged = "succeeded", utcnow(), 10000, 10000
    db.session.commit()
    page.get_by_text("Finished").wait_for()
    assert page.locator("#sync-progress[hx-trigger]").count() == 0

"""An erasure whose worker dies at the same chunk again and again ends failed after SHOPRELAY_CHUNK_ATTEMPTS deaths,
with a reason naming the chunk and saying the person's data from there on is still stored; a retry (API, CLI)
finishes it from its phase and cursor and asks the destinations that refused again.

Real `shoprelay worker` processes killed with SIGKILL inside a chunk, blocked on a row lock the test holds
(PostgreSQL, as tests/workers/test_chunk_deaths.py); the counting and the retry rules on both databases.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import REDIS_URL, both_databases
from tests.factories import make_order
from tests.workers.test_chunk_deaths import _kill_blocked_worker, _no_wait
from tests.workers.test_erasure import CANARY_EMAIL, _canary_order, _traces
from webapp.models import Erasure, Event, Order
from webapp.schemas.erasures import ErasureOut
from webapp.services.contacts import erasure as erasures
from webapp.services.contacts import erasure_outside, erasure_recovery, erasure_steps
from webapp.services.platform.row_jobs import Deaths, deaths_in
from workers.queue import connect, get_queue

postgres_only = pytest.mark.parametrize(
    "app", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
ORDERS = 450  # three chunks of erasure_steps.CHUNK (200): 200, 200, 50


def _orders(api, count: int, prefix: str = "k") -> None:  # noqa: ANN001
    batch = [_canary_order(f"{prefix}-{n}") for n in range(count)]
    assert api.post("/api/v1/orders", json={"orders": batch}).status_code == 202


def _order_ids(db) -> list[int]:  # noqa: ANN001
    ids = list(db.session.scalars(sa.select(Order.id).order_by(Order.id)))
    db.session.commit()
    return ids


def _died(db, record: Erasure) -> None:  # noqa: ANN001
    """The job recover queued was taken by a worker, which marked the erasure running and then died."""
    db.session.execute(sa.update(Erasure).where(Erasure.id == record.id).values(status="running"))
    db.session.commit()
    get_queue("default", connect(REDIS_URL)).empty()


def _recover() -> dict[str, int]:
    return erasure_recovery.recover(grace=timedelta(0), wait=_no_wait)


# --- the count and the retry rules, both databases, no processes ------------------------------------------

@both_databases
def test_recover_fails_an_erasure_whose_runner_died_at_the_same_chunk(app, api, db, redis,  # noqa: ANN001
                                                                      monkeypatch) -> None:
    monkeypatch.setattr(erasure_steps, "CHUNK", 2)
    _orders(api, 5)
    ids = _order_ids(db)
    record = erasures.start_erasure(CANARY_EMAIL)
    assert record.status == "queued" and deaths_in(record.job_id) is None
    for death in (1, 2):
        _died(db, record)
        assert _recover() == {"finished": 0, "resumed": 1}
        assert deaths_in(erasures.get_erasure(record.id).job_id) == Deaths("orders_0", death)
    get_queue("default", redis).empty()  # a flushed Redis loses the queued job: requeued, not a death
    assert _recover() == {"finished": 0, "resumed": 1}
    assert deaths_in(erasures.get_erasure(record.id).job_id) == Deaths("orders_0", 2)
    work = erasures.work_of(erasures.get_erasure(record.id))
    erasure_steps.run_chunk(record.id, work)  # a chunk commits: it got further, the next death is the first
    _died(db, record)
    assert _recover() == {"finished": 0, "resumed": 1}
    assert deaths_in(erasures.get_erasure(record.id).job_id) == Deaths(f"orders_{ids[1]}", 1)
    for _ in (2, 3):
        _died(db, record)
        counts = _recover()
    assert counts == {"finished": 0, "resumed": 0, "failed": 1}
    failed = erasures.get_erasure(record.id)
    assert (failed.status, failed.phase, failed.cursor, failed.done) == ("failed", "orders", ids[1], 2)
    assert failed.finished_at is not None and failed.pending_values is not None  # kept for the retry
    assert failed.error.startswith(
        f"stopped after 3 attempts at orders {ids[2]}–{ids[3]} of the orders phase (the chunk after order {ids[1]}): "
        "the worker died each time (killed, or out of memory) without getting past them; the person's personal "
        "data from there on is still stored here (its orders from that chunk on, checkouts, events with their "
        "delivery logs, events tied to no contact, back-in-stock subscriptions and import problems, uploaded import "
        "files and onsite identities; 2 of 5 rows were cleaned before")
    assert f"POST /api/v1/erasures/{record.id}/retry" in failed.error
    assert CANARY_EMAIL not in failed.error
    assert api.get(f"/api/v1/erasures/{record.id}").get_json()["error"] == failed.error
    assert _recover() == {"finished": 0, "resumed": 0}  # over for good

    retried = api.post(f"/api/v1/erasures/{record.id}/retry")
    assert retried.status_code == 202, retried.get_json()
    body = retried.get_json()
    ErasureOut.model_validate(body)
    assert (body["status"], body["phase"], body["error"], body["finished_at"]) == ("queued", "orders", None, None)
    row = erasures.get_erasure(record.id)
    assert row.job_id and deaths_in(row.job_id) is None and row.cursor == ids[1]  # a new job, deaths reset
    assert get_queue("default", redis).get_job_ids() == [row.job_id]


@both_databases
def test_the_retry_rules(app, api, db, redis, worker) -> None:  # noqa: ANN001
    _orders(api, 3)
    record = erasures.start_erasure(CANARY_EMAIL)
    with pytest.raises(LookupError):
        erasure_recovery.retry_erasure("nope")
    with pytest.raises(erasure_recovery.NotRetryable, match=f"^erasure {record.id} is queued: only a failed erasure"):
        erasure_recovery.retry_erasure(record.id)
    db.session.execute(sa.update(Erasure).values(status="failed", error="OperationalError: boom"))
    db.session.commit()
    get_queue("default", redis).empty()
    assert erasure_recovery.retry_erasure(record.id).status == "queued"
    with pytest.raises(erasure_recovery.NotRetryable, match="is queued"):  # twice: the first one runs
        erasure_recovery.retry_erasure(record.id)
    worker(["default"])
    done = erasures.get_erasure(record.id)
    assert (done.status, done.done, done.total, done.error) == ("succeeded", 3, 3, None)
    assert _traces(db) == []
    with pytest.raises(erasure_recovery.NotRetryable, match="succeeded: there is nothing left to retry"):
        erasure_recovery.retry_erasure(record.id)
    db.session.execute(sa.update(Erasure).values(status="failed", error="Hooks: HTTP 400"))
    db.session.commit()  # what a refused deletion leaves: the local part done, the request scrubbed
    with pytest.raises(erasure_recovery.NotRetryable, match="after its local part was done"):
        erasure_recovery.retry_erasure(record.id)


@both_databases
def test_a_failure_after_the_last_chunk_is_retried_too(app, api, db, redis, worker, monkeypatch) -> None:  # noqa: ANN001
    """The last step (import files, onsite identities) failed after every chunk was done: the erasure still holds
    what to remove, so a retry runs that step again instead of answering that the local part is done."""
    import os
    import time
    from pathlib import Path

    from tests.workers.test_erasure import _file_traces

    _orders(api, 3)
    imports = Path(app.config["UPLOADS_DIR"]) / "imports"
    imports.mkdir(parents=True, exist_ok=True)
    upload = imports / "orders-2026.jsonl"
    upload.write_text(f'{{"id": "x1", "customer": {{"email": "{CANARY_EMAIL}"}}}}\n')
    os.utime(upload, (time.time() - 60, time.time() - 60))  # uploaded before the request
    real = erasure_outside._clean_import_files
    calls = []

    def failing_once(work):  # noqa: ANN001, ANN202 - a disk error on the first pass
        calls.append(1)
        if len(calls) == 1:
            raise OSError("No space left on device")
        return real(work)

    monkeypatch.setattr(erasure_outside, "_clean_import_files", failing_once)
    record = erasures.start_erasure(CANARY_EMAIL)
    worker(["default"])
    failed = erasures.get_erasure(record.id)
    assert failed.status == "failed" and failed.local_done_at is not None and "No space left" in failed.error
    assert _file_traces(imports)  # the file still names the person
    assert erasure_recovery.retry_refusal(failed) is None
    assert erasure_recovery.retry_erasure(record.id).status == "queued"
    worker(["default"])
    done = erasures.get_erasure(record.id)
    assert (done.status, done.error) == ("succeeded", None)
    assert _file_traces(imports) == [] and _traces(db) == []


@both_databases
def test_a_retry_asks_the_refusing_destinations_again_and_finishes(app, api, db, fake, make_destination,  # noqa: ANN001
                                                                   redis, worker) -> None:
    make_destination("webhook")
    off = make_destination("webhook", name="Off")
    _orders(api, 2)
    worker(["delivery"])
    record = erasures.start_erasure(CANARY_EMAIL)
    api.patch(f"/api/v1/destinations/{off['id']}", json={"enabled": False})
    # The local part died half-way (an error), and both platforms refused the deletion meanwhile.
    db.session.execute(sa.update(Event).where(Event.name == "contact_erased")
                       .values(state="rejected", last_error="HTTP 400: try later"))
    db.session.execute(sa.update(Erasure).values(status="failed", error="OperationalError: boom"))
    db.session.commit()
    get_queue("default", redis).empty()
    before = {d["name"]: d["status"] for d in erasures.erasure_json(erasures.get_erasure(record.id))["destinations"]}
    assert before == {"webhook test": "failed", "Off": "failed"}

    assert erasure_recovery.retry_erasure(record.id).status == "queued"
    states = {d["name"]: d["status"] for d in erasures.erasure_json(erasures.get_erasure(record.id))["destinations"]}
    assert states == {"webhook test": "pending", "Off": "failed"}  # a disabled destination is not asked again
    worker(["default"])
    worker(["delivery"])
    erasures.finish_ready()
    done = erasures.erasure_json(erasures.get_erasure(record.id))
    assert done["status"] == "failed" and done["error"] == "Off: HTTP 400: try later"  # the disabled one's refusal
    assert {d["name"]: d["status"] for d in done["destinations"]} == {"webhook test": "succeeded", "Off": "failed"}
    erased = [doc for doc in fake.webhook_deliveries.values() if doc.get("event") == "contact.erased"]
    assert len(erased) == 1 and erased[0]["data"]["erasure"]["id"] == record.id
    assert _traces(db) == []


def test_the_cli_retries_a_failed_erasure_here(app, api, db, runner) -> None:  # noqa: ANN001
    _orders(api, 2)
    record = erasures.start_erasure(CANARY_EMAIL)
    assert runner.invoke(args=["contacts", "erase", "--retry", record.id]).exit_code == 1  # still queued
    db.session.execute(sa.update(Erasure).values(status="failed", error="OperationalError: boom"))
    db.session.commit()
    result = runner.invoke(args=["contacts", "erase", "--retry", record.id])
    assert result.exit_code == 0, result.output
    assert f"erasure {record.id} succeeded: 1 contact(s), 2 orders" in result.output
    assert _traces(db) == []
    both = runner.invoke(args=["contacts", "erase", CANARY_EMAIL, "--retry", record.id])
    assert both.exit_code == 2 and "not both" in both.output
    assert runner.invoke(args=["contacts", "erase", "--retry", "nope"]).exit_code == 1


# --- real workers, killed mid-chunk -----------------------------------------------------------------------

@postgres_only
def test_an_erasure_killed_at_the_same_chunk_ends_failed_and_a_retry_finishes_it(app, api, db, redis,  # noqa: ANN001
                                                                                  worker) -> None:
    _orders(api, ORDERS)
    api.post("/api/v1/orders", json=make_order(id="other-1"))
    ids = _order_ids(db)[:ORDERS]
    assert _traces(db)
    response = api.delete(f"/api/v1/contacts/{CANARY_EMAIL}")
    assert response.status_code == 202, response.get_json()
    erasure_id = response.get_json()["id"]
    poison = ids[300]  # in the second chunk: the first (200 orders) goes through
    for death in (1, 2, 3):
        _kill_blocked_worker(app, db, "default", "orders", poison, lambda: erasures.get_erasure(erasure_id).job_id)
        row = erasures.get_erasure(erasure_id)
        assert (row.status, row.phase, row.cursor, row.done) == ("running", "orders", ids[199], 200)
        counts = _recover()
        if death < 3:
            assert counts == {"finished": 0, "resumed": 1}
            assert deaths_in(erasures.get_erasure(erasure_id).job_id) == Deaths(f"orders_{ids[199]}", death)
    assert counts == {"finished": 0, "resumed": 0, "failed": 1}
    body = api.get(f"/api/v1/erasures/{erasure_id}").get_json()
    assert (body["status"], body["phase"], body["done"]) == ("failed", "orders", 200)
    assert body["error"].startswith(f"stopped after 3 attempts at orders {ids[200]}–{ids[399]} of the orders phase "
                                    f"(the chunk after order {ids[199]}): the worker died each time")
    assert "personal data from there on is still stored here" in body["error"]
    assert f"POST /api/v1/erasures/{erasure_id}/retry" in body["error"]
    left = _traces(db)
    assert left and all(trace.startswith("orders:") for trace in left)  # the rest of the orders keep the person
    assert _recover() == {"finished": 0, "resumed": 0}  # no worker is killed again

    retried = api.post(f"/api/v1/erasures/{erasure_id}/retry")  # the poison row's lock is gone now
    assert retried.status_code == 202, retried.get_json()
    assert retried.get_json()["status"] == "queued"
    worker(["default"])
    done = api.get(f"/api/v1/erasures/{erasure_id}").get_json()
    assert (done["status"], done["done"], done["total"], done["error"]) == ("succeeded", ORDERS, ORDERS, None)
    assert done["counts"]["orders"] == ORDERS
    assert _traces(db) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == ORDERS + 1

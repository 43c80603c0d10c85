"""A large erasure works in chunks with progress, and one whose worker died goes on from its cursor."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from tests.factories import make_order
from webapp.models import Erasure, Order, utcnow
from webapp.services.contacts import erasure as erasures
from webapp.services.contacts import erasure_recovery, erasure_steps

EMAIL = "many.orders@example.org"


def _orders(api, count: int) -> None:  # noqa: ANN001
    batch = []
    for number in range(count):
        order = make_order(id=f"m-{number}")
        order["customer"].update(email=EMAIL, id="cust-many")
        batch.append(order)
    assert api.post("/api/v1/orders", json={"orders": batch}).status_code == 202


def test_a_lost_erasure_resumes_from_its_cursor_in_a_new_job(app, api, db, worker, monkeypatch) -> None:
    monkeypatch.setattr(erasure_steps, "CHUNK", 3)
    _orders(api, 7)
    record = erasures.start_erasure(EMAIL)  # queued as an RQ job
    assert record.status == "queued" and record.total == 7  # seven orders, no destination: no events
    work = erasure_steps.Work(record.contact_ids, EMAIL, {EMAIL}, record.created_at)
    erasure_steps.run_chunk(record.id, work)  # a worker cleans one chunk, then dies
    db.session.execute(sa.update(Erasure).values(status="running", job_id="erasure-lost",
                                                 progressed_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    from workers.queue import connect

    connect(app.config["REDIS_URL"]).delete("rq:queue:default")  # its job is gone with the worker
    assert erasure_recovery.recover(wait=lambda seconds: None)["resumed"] == 1
    worker(["default"])
    done = erasures.get_erasure(record.id)
    assert done.status == "succeeded" and done.done == done.total == 7, (done.__dict__)
    assert done.counts["orders"] == 7 and done.pending_values is None
    assert db.session.scalars(sa.select(Order.email).where(Order.email.is_not(None))).all() == []
    assert all("customer" not in o.data or "email" not in o.data["customer"]
               for o in db.session.scalars(sa.select(Order)))


def test_a_repeat_while_running_answers_the_running_erasure(app, api, db) -> None:
    _orders(api, 1)
    first = erasures.start_erasure(EMAIL)
    assert erasures.start_erasure(EMAIL.upper()).id == first.id
    assert erasures.erasures_of(EMAIL)[0].id == first.id
    assert EMAIL not in str(erasures.erasure_json(first))


def test_a_refused_deletion_fails_the_erasure_and_a_disabled_destination_is_not_asked(app, api, db, worker) -> None:
    from webapp.models import Destination, Event

    for name, enabled in (("Hooks", True), ("Off", False)):
        created = api.post("/api/v1/destinations", json={
            "name": name, "kind": "webhook", "enabled": enabled,
            "credentials": {"url": "http://127.0.0.1:9/hook", "secret": "s3cret"}})
        assert created.status_code == 201, created.get_json()
    _orders(api, 1)
    record = erasures.start_erasure(EMAIL, run_here=True)
    assert record.status == "running" and record.local_done_at is not None  # waiting for the webhook's answer
    assert erasures.finish_ready() == {"finished": 0}
    db.session.execute(sa.update(Event).where(Event.name == "contact_erased")
                       .values(state="rejected", last_error=f"HTTP 400: unknown customer {EMAIL}"))
    db.session.commit()
    assert erasures.finish_ready() == {"finished": 1}
    done = erasures.erasure_json(erasures.get_erasure(record.id))
    assert done["status"] == "failed" and done["error"] == "Hooks: HTTP 400: unknown customer [erased]"
    states = {d["name"]: d["status"] for d in done["destinations"]}
    assert states == {"Hooks": "failed", "Off": "not_asked"}
    assert db.session.scalars(sa.select(Event.payload).where(Event.name == "contact_erased")).all() == [
        {"erasure": {"id": record.id}}]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Destination)) == 2

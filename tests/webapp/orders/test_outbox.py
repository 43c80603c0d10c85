"""The outbox writers: the PostgreSQL COPY path writes exactly what the executemany path writes."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases
from webapp.models import Destination, Event
from webapp.services.orders import outbox
from webapp.services.orders.outbox import NewEvent, Target, write_events
from webapp.services.platform.bulk_rows import json_text

WHEN = datetime(2026, 11, 20, 10, 15, tzinfo=UTC)


def _targets(db) -> list[Target]:
    for name in ("a", "b"):
        db.session.add(Destination(name=name, kind="webhook", credentials_encrypted="x", mode="realtime",
                                   enabled=True))
    db.session.commit()
    return outbox.active_targets()


def _events(count: int) -> list[NewEvent]:
    shared = {"order": {"id": "1", "total": 29.98, "note": "ünïcode"}, "contact": {"email": "a@example.com"}}
    events = [NewEvent("placed_order", f"o{n}", shared, WHEN + timedelta(seconds=n), historical=n % 2 == 0)
              for n in range(count)]
    events.append(NewEvent("placed_order", "o0", {"other": True}, WHEN))  # same key again: ignored
    events.append(NewEvent("profile_upsert", "p1", {"contact": {"id": 7}}, WHEN))
    return events


def _stored(db) -> list[tuple]:
    rows = db.session.execute(sa.select(Event).order_by(Event.id)).scalars().all()
    return [(e.destination_id, e.name, e.unique_id, e.payload, e.state, e.sequence, e.historical, e.attempts,
             e.occurred_at, e.order_id, e.contact_id) for e in rows]


@both_databases
@pytest.mark.parametrize("copy_from", [1, 10**9], ids=["copy-on-postgresql", "executemany"])
def test_rows_written_are_the_same_whichever_way(app, db, monkeypatch, copy_from):
    monkeypatch.setattr(outbox, "COPY_FROM_ROWS", copy_from)
    targets = _targets(db)
    touched = write_events(_events(150), targets)
    db.session.commit()
    stored = _stored(db)
    assert touched == {t.id for t in targets}
    assert len(stored) == 2 * 151  # 150 orders + 1 profile per destination; the repeated key is skipped
    first = stored[0]
    assert first[:3] == (targets[0].id, "placed_order", "o0")
    assert first[3] == {"order": {"id": "1", "total": 29.98, "note": "ünïcode"}, "contact": {"email": "a@example.com"}}
    assert first[4:9] == ("pending", 1, True, 0, WHEN)
    # Ids follow the order of the events (delivery claims by next_attempt_at, then id).
    assert [row[2] for row in stored[:4:2]] == ["o0", "o1"]
    assert all(e.next_attempt_at == e.created_at for e in db.session.scalars(sa.select(Event)))


@both_databases
@pytest.mark.parametrize("copy_from", [1, 10**9], ids=["copy-on-postgresql", "executemany"])
def test_existing_rows_are_left_alone_and_a_rollback_leaves_nothing(app, db, monkeypatch, copy_from):
    monkeypatch.setattr(outbox, "COPY_FROM_ROWS", copy_from)
    targets = _targets(db)
    write_events(_events(3), targets)
    db.session.commit()
    before = _stored(db)
    write_events([NewEvent("placed_order", "o1", {"changed": True}, WHEN)], targets)
    db.session.commit()
    assert _stored(db) == before
    write_events(_events(50)[10:], targets)
    db.session.rollback()
    assert _stored(db) == before
    # The next transaction writes normally (on PostgreSQL: the staging table starts empty again).
    write_events([NewEvent("placed_order", "o99", {}, WHEN)], targets)
    db.session.commit()
    assert len(_stored(db)) == len(before) + 2


@both_databases
def test_staging_table_is_empty_after_commit(app, db, monkeypatch):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    monkeypatch.setattr(outbox, "COPY_FROM_ROWS", 1)
    write_events(_events(5), _targets(db))
    db.session.commit()
    assert db.session.execute(sa.text("SELECT count(*) FROM shoprelay_new_events")).scalar_one() == 0


@both_databases
def test_active_targets_follow_destination_changes_at_once(app, db):
    targets = _targets(db)
    assert [t.id for t in targets] == sorted(t.id for t in targets)
    first = db.session.get(Destination, targets[0].id)
    first.enabled = False
    db.session.commit()
    assert [t.id for t in outbox.active_targets()] == [targets[1].id]
    db.session.delete(db.session.get(Destination, targets[1].id))
    db.session.commit()
    assert outbox.active_targets() == []


def test_json_text_reads_back_as_the_same_value():
    import json

    value = {"a": [1, 2.5, None, True], "ü": "ß", 3: "int key", "big": 2**70}
    assert json.loads(json_text(value)) == json.loads(json.dumps(value))

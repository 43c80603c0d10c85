"""The claim: never more than its limit, locks only the rows it takes, checks blocking per candidate (issue 6)."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.models import utcnow

postgres_only = pytest.mark.parametrize("app", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                                        indirect=True)


def _params(destination_id: int, limit: int) -> dict:
    now = utcnow()
    return {"for_destination": destination_id, "now": now, "worker": "test-worker",
            "lease_until": now + timedelta(seconds=60), "limit": limit}


@postgres_only
def test_a_claim_locks_only_the_rows_it_takes(app, api, db, make_destination):
    """Another worker's claim skips locked rows: rows locked but not taken would shrink its batch for nothing."""
    from workers.delivery.claim import _lease_statements

    dest = make_destination("webhook", events=["placed_order"])
    api.post("/api/v1/orders", json={"orders": [make_order(id=f"k{i}") for i in range(6)]})
    _, due = _lease_statements()
    with db.engine.connect() as first, db.engine.connect() as second:
        taken = first.execute(due, _params(dest["id"], 2)).all()  # not committed: its locks stay
        free = second.execute(sa.text("SELECT id FROM events WHERE state = 'pending' FOR UPDATE SKIP LOCKED")).all()
        assert len(taken) == 2 and len(free) == 4
        first.rollback()


@postgres_only
def test_the_blocking_check_probes_each_candidate(app, api, db, make_destination):
    """NOT EXISTS as an anti-join hashed every blocking row of the table (a sequential scan, growing with
    the backlog); the claim must probe the order's events per candidate instead, whatever the planner's
    costs say (hash joins are the only join left to it here)."""
    from workers.delivery.claim import _lease_statements

    dest = make_destination("webhook", events=["placed_order"])
    api.post("/api/v1/orders", json=make_order(id="p1"))
    sent = []
    with db.engine.connect() as connection:
        sa.event.listen(connection, "before_cursor_execute",
                        lambda _c, _cursor, sql, parameters, *_: sent.append((sql, parameters)))
        connection.exec_driver_sql("SET LOCAL enable_nestloop = off")
        for statement in _lease_statements():
            connection.execute(statement, _params(dest["id"], 10))
        for sql, parameters in sent[1:]:  # each claim statement as the driver received it
            plan = "\n".join(connection.exec_driver_sql("EXPLAIN " + sql, parameters).scalars())
            assert "Anti Join" not in plan and "SubPlan" in plan, plan
        connection.rollback()


@postgres_only
def test_the_claim_never_waits_for_jit_compilation(app, api, db, make_destination):
    """At 10M events the planner's estimate of the claim passes `jit_above_cost` and every claim compiled its
    expressions first (25-30 ms of a 55 ms claim). The app's sessions run without JIT, also after the pool's
    reset (a SET inside the reset transaction would be rolled back): the claim has no JIT work even when the
    planner is told that everything is worth compiling."""
    from workers.delivery.claim import _lease_statements

    dest = make_destination("webhook", events=["placed_order"])
    api.post("/api/v1/orders", json=make_order(id="j1"))
    for _ in range(2):  # a fresh connection, then the same one back from the pool
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW jit").scalar() == "off"
            connection.rollback()
    sent = []
    with db.engine.connect() as connection:
        sa.event.listen(connection, "before_cursor_execute",
                        lambda _c, _cursor, sql, parameters, *_: sent.append((sql, parameters)))
        connection.exec_driver_sql("SET LOCAL jit_above_cost = 0")
        _, due = _lease_statements()
        connection.execute(due, _params(dest["id"], 10))
        sql, parameters = sent[-1]
        plan = connection.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, parameters).scalar()
        assert "JIT" not in plan[0], plan[0].get("JIT")
        connection.rollback()


@postgres_only
def test_array_parameters_sent_as_text_read_back_the_same(app, db):
    from webapp.models.base import UtcDateTime
    from workers.delivery.claim import pg_array

    ids = [1, 2, 9_007_199_254_740_993]
    times = [datetime(2026, 11, 23, 13, 0, 0, 123456, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)]
    assert db.session.scalars(sa.select(sa.func.unnest(pg_array(ids, sa.BigInteger)))).all() == ids
    read = db.session.scalars(sa.select(sa.func.unnest(pg_array(times, UtcDateTime())))).all()
    assert [t.astimezone(UTC) for t in read] == times


@both_databases
def test_a_claim_never_takes_more_than_its_limit(app, api, db, make_destination):
    """As a plain subquery the locked pick could be rescanned per row on PostgreSQL, each rescan skipping the
    rows the statement had just updated and taking new ones: 6 claimed for a limit of 2."""
    from workers.delivery.claim import claim_due

    dest = make_destination("webhook", events=["placed_order"])
    api.post("/api/v1/orders", json={"orders": [make_order(id=f"m{i}") for i in range(6)]})
    taken = [claim_due(dest["id"], 2, "test-worker", 60, utcnow()) for _ in range(4)]
    assert [len(batch) for batch in taken] == [2, 2, 2, 0]
    assert sorted(e.unique_id for batch in taken for e in batch) == [f"m{i}" for i in range(6)]


@both_databases
def test_leases_that_ran_out_are_taken_only_when_asked_for(app, api, db, make_destination):
    """A busy run skips the look for a dead worker's events between looks (the engine looks at the start
    of a run and then every EXPIRED_LEASE_SECONDS); asked for, they are taken again."""
    from workers.delivery.claim import claim_due

    dest = make_destination("webhook", events=["placed_order"])
    api.post("/api/v1/orders", json={"orders": [make_order(id=f"e{i}") for i in range(3)]})
    start = utcnow()
    assert len(claim_due(dest["id"], 10, "dead-worker", 60, start)) == 3
    later = start + timedelta(seconds=61)
    assert claim_due(dest["id"], 10, "survivor", 60, later, expired=False) == []
    taken = claim_due(dest["id"], 10, "survivor", 60, later)
    assert sorted(e.unique_id for e in taken) == ["e0", "e1", "e2"]


@both_databases
def test_a_run_looks_for_leases_that_ran_out_when_it_starts(app, api, db, make_destination, fake):
    """Events left in flight by a killed worker go out with the next run, before its first new claim."""
    from workers.delivery import engine
    from workers.delivery.claim import claim_due

    dest = make_destination("webhook", events=["placed_order"])
    api.post("/api/v1/orders", json={"orders": [make_order(id=f"d{i}") for i in range(2)]})
    assert len(claim_due(dest["id"], 10, "dead-worker", 0.001, utcnow())) == 2  # a lease already run out
    report = engine.deliver_destination(dest["id"])
    assert report.counts == {"delivered": 2}

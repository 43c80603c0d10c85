"""The per-request parts of ingest kept light: API-key check, destinations, cached email checks, signals."""

from datetime import timedelta

import sqlalchemy as sa
from rq import Queue

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.models import ApiKey, Destination, Event, utcnow

pytestmark = both_databases


def _destination(db, name="hook", **extra):
    destination = Destination(**{"name": name, "kind": "webhook", "credentials_encrypted": "x",
                                 "mode": "realtime", "enabled": True} | extra)
    db.session.add(destination)
    db.session.commit()
    return destination


def _post(client, key, order):
    return client.post("/api/v1/orders", json=order, headers={"Authorization": f"Bearer {key}"})


def test_a_revoked_key_stops_working_on_the_next_request(client, api_key, db):
    from webapp.security import revoke_api_key

    assert _post(client, api_key, make_order(id="1")).status_code == 202
    stored = db.session.scalars(sa.select(ApiKey)).one()
    assert stored.last_used_at is not None
    revoke_api_key(stored.id)
    response = _post(client, api_key, make_order(id="2"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="shoprelay"'


def test_last_used_at_is_written_at_most_once_a_minute(client, api_key, db):
    assert _post(client, api_key, make_order(id="1")).status_code == 202
    first = db.session.scalars(sa.select(ApiKey)).one().last_used_at
    assert _post(client, api_key, make_order(id="2")).status_code == 202
    db.session.expire_all()
    assert db.session.scalars(sa.select(ApiKey)).one().last_used_at == first
    db.session.execute(sa.update(ApiKey).values(last_used_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    assert _post(client, api_key, make_order(id="3")).status_code == 202
    db.session.expire_all()
    assert db.session.scalars(sa.select(ApiKey)).one().last_used_at > first


def test_destination_changes_count_from_the_next_request(client, api_key, db):
    hook = _destination(db)
    assert _post(client, api_key, make_order(id="1")).status_code == 202
    hook.enabled = False
    db.session.commit()
    assert _post(client, api_key, make_order(id="2")).status_code == 202
    other = _destination(db, name="second")
    assert _post(client, api_key, make_order(id="3")).status_code == 202
    placed = db.session.execute(sa.select(Event.destination_id, Event.unique_id)
                                .where(Event.name == "placed_order").order_by(Event.id)).all()
    assert [tuple(row) for row in placed] == [(hook.id, "1"), (other.id, "3")]


def test_signals_go_to_every_realtime_destination_once(client, api_key, db, redis):
    first, second = _destination(db), _destination(db, name="second")
    _destination(db, name="batched", mode="batch")
    for number in range(3):
        assert _post(client, api_key, make_order(id=str(number))).status_code == 202
    queued = sorted(job.args for job in Queue("delivery", connection=redis).jobs)
    assert queued == [(first.id,), (second.id,)]


def test_an_invalid_email_is_refused_every_time(client, api_key, db):
    bad = make_order(id="1", customer={"email": "not an email"})
    for _ in range(2):  # the check is cached for valid addresses only
        response = _post(client, api_key, bad)
        assert response.status_code == 422
        assert response.get_json()["errors"][0]["path"] == "customer.email"
    good = make_order(id="1", customer={"email": " Ann@Example.COM "})
    for number in range(2):
        assert _post(client, api_key, good | {"id": str(number)}).status_code == 202
    assert set(db.session.scalars(sa.select(sa.text("email")).select_from(sa.table("orders")))) == {"ann@example.com"}

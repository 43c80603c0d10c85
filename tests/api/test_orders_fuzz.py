"""Property tests through the real API: valid orders always produce valid platform payloads,
junk never produces a 5xx."""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import make_order
from tests.workers.destinations.klaviyo_sdk import assert_request_accepted
from webapp.models import Event

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=20))
junk = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=5)), max_leaves=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=junk)
def test_junk_never_5xx(api, body):
    response = api.post("/api/v1/orders", json=body)
    assert response.status_code in (202, 400, 422), response.get_data(as_text=True)[:500]


mutations = st.fixed_dictionaries({
    "id": st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=20),
    "total": st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda v: round(v, 2)),
    "status": st.sampled_from(["pending", "placed", "fulfilled", "cancelled", "refunded"]),
    "name": st.text(min_size=1, max_size=40).filter(lambda s: s.strip()),
    "quantity": st.integers(min_value=1, max_value=50),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(change=mutations)
def test_random_valid_orders_give_valid_klaviyo_payloads(api, db, change):
    from workers.delivery.engine import _outbound, build_adapter

    if not api.get("/api/v1/destinations").get_json()["destinations"]:
        api.post("/api/v1/destinations", json={"name": "k", "kind": "klaviyo", "credentials": {"api_key": "pk_test"}})
    order = make_order(id=change["id"], total=change["total"], status=change["status"],
                       fulfilled_at="2026-11-21T00:00:00Z", cancelled_at="2026-11-21T00:00:00Z",
                       refunded_at="2026-11-22T00:00:00Z")
    order["items"][0].update(name=change["name"], quantity=change["quantity"])
    response = api.post("/api/v1/orders", json=order)
    assert response.status_code == 202, response.get_json()
    events = db.session.scalars(db.select(Event).where(Event.state == "pending")).all()
    adapter = build_adapter(events[0].destination) if events else None
    for event in events:
        built = adapter.build_requests([_outbound(event)])
        for request in built.requests:
            assert_request_accepted(request)
        event.state = "delivered"
    db.session.commit()

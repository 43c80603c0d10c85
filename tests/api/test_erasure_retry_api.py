"""POST /api/v1/erasures/<id>/retry: admin keys only, 202 with the erasure, 409 in the error shape when it is not
failed or its local part is done, 404 unknown; documented (webapp/api/erasures.py)."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.extensions import db as _db
from webapp.models import Erasure
from webapp.schemas.erasures import ErasureOut

pytestmark = both_databases
EMAIL = "john.smith@example.com"


def _erasure(api) -> str:  # noqa: ANN001
    assert api.post("/api/v1/orders", json=make_order()).status_code == 202
    response = api.delete(f"/api/v1/contacts/{EMAIL}")
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def _fail(db, **values) -> None:  # noqa: ANN001, ANN003
    db.session.execute(sa.update(Erasure).values(status="failed", error="OperationalError: boom", **values))
    db.session.commit()


def test_retry_puts_a_failed_erasure_back_to_work(api, db) -> None:  # noqa: ANN001
    erasure_id = _erasure(api)
    conflict = api.post(f"/api/v1/erasures/{erasure_id}/retry")
    assert conflict.status_code == 409
    assert conflict.get_json() == {"errors": [{"path": "", "message": f"erasure {erasure_id} is queued: only a "
                                                                      "failed erasure can be retried"}]}
    _fail(db)
    response = api.post(f"/api/v1/erasures/{erasure_id}/retry")
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    ErasureOut.model_validate(body)
    assert (body["id"], body["status"], body["error"]) == (erasure_id, "queued", None)
    assert api.get(f"/api/v1/erasures/{erasure_id}").get_json()["status"] == "queued"


def test_a_failed_erasure_whose_local_part_is_done_is_409(api, db) -> None:  # noqa: ANN001
    from webapp.models import utcnow

    erasure_id = _erasure(api)
    _fail(db, local_done_at=utcnow(), pending_values=None)
    response = api.post(f"/api/v1/erasures/{erasure_id}/retry")
    assert response.status_code == 409
    message = response.get_json()["errors"][0]["message"]
    assert "after its local part was done" in message and "own dashboard" in message


def test_unknown_is_404_and_only_admin_keys_retry(app, api, client, db) -> None:  # noqa: ANN001
    from webapp.security import create_api_key

    assert api.post("/api/v1/erasures/nope/retry").status_code == 404
    erasure_id = _erasure(api)
    _fail(db)
    for scope in ("read", "ingest"):
        _, key = create_api_key(f"{scope} key", scope=scope)
        _db.session.commit()
        response = client.post(f"/api/v1/erasures/{erasure_id}/retry", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 403, scope
    assert db.session.scalar(sa.select(Erasure.status)) == "failed"


def test_the_retry_is_documented(api) -> None:  # noqa: ANN001
    doc = api.get("/api/v1/openapi.json").get_json()
    operation = doc["paths"]["/api/v1/erasures/{id}/retry"]["post"]
    assert {"202", "404", "409"} <= set(operation["responses"])
    assert operation["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErasureOut")
    links = doc["paths"]["/api/v1/contacts/{email}"]["delete"]["responses"]["202"]["links"]
    assert {"get_erasures_id", "post_erasures_id_retry"} <= set(links)

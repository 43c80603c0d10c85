"""POST /api/v1/destinations/<id>/replay and GET /api/v1/replays/<id>: the contract (422 naming the field,
404s, the OpenAPI document's models)."""

from __future__ import annotations

import pytest

from webapp.schemas import responses as out

SINCE, UNTIL = "2026-11-20T10:00:00Z", "2026-11-20T12:00:00+02:00"


@pytest.fixture()
def destination(api) -> int:  # noqa: ANN001
    response = api.post("/api/v1/destinations", json={"name": "hook", "kind": "webhook", "credentials": {
        "url": "http://127.0.0.1:9/h", "secret": "plain-secret"}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.mark.parametrize(("body", "path"), [
    ({"since": "2026-11-20T12:00:00Z", "until": "2026-11-20T10:00:00Z"}, "since"),
    ({"since": "2026-11-20T10:00:00", "until": UNTIL}, "since"),  # naive: which zone?
    ({"since": SINCE, "until": "2026-11-20 12:00"}, "until"),
    ({"since": SINCE}, "until"),
    ({"since": "yesterday", "until": UNTIL}, "since"),
    ({"since": SINCE, "until": UNTIL, "events": ["placed_orders"]}, "events"),
    ({"since": SINCE, "until": UNTIL, "events": []}, "events"),
    ({"since": SINCE, "until": UNTIL, "states": ["lost"]}, "states"),
    ({"since": SINCE, "until": UNTIL, "states": ["pending"]}, "states"),
    ({"since": SINCE, "until": UNTIL, "new_ids": "sometimes"}, "new_ids"),
    ({"since": SINCE, "until": UNTIL, "window": "1h"}, "window"),
], ids=["since-after-until", "naive-since", "naive-until", "missing-until", "not-a-time", "unknown-event",
        "no-events", "unknown-state", "waiting-state", "bad-flag", "unknown-field"])
def test_bad_input_is_a_422_naming_the_field(api, destination, body, path) -> None:  # noqa: ANN001
    response = api.post(f"/api/v1/destinations/{destination}/replay", json=body)
    assert response.status_code == 422, response.get_json()
    errors = out.ErrorResponse.model_validate(response.get_json()).errors
    assert [error.path for error in errors] == [path], errors


def test_a_dry_run_answers_the_documented_count(api, destination) -> None:  # noqa: ANN001
    response = api.post(f"/api/v1/destinations/{destination}/replay",
                        json={"since": SINCE, "until": UNTIL, "states": ["failed", "skipped"], "dry_run": True})
    assert response.status_code == 200
    body = out.ReplayCount.model_validate(response.get_json())
    assert (body.count, body.breakdown, body.states) == (0, [], ["rejected", "dead", "skipped"])
    assert (body.since, body.until) == ("2026-11-20T10:00:00Z", "2026-11-20T10:00:00Z")  # +02:00 in UTC


def test_unknown_destination_and_replay_are_404(api) -> None:  # noqa: ANN001
    assert api.post("/api/v1/destinations/999/replay", json={"since": SINCE, "until": UNTIL}).status_code == 404
    assert api.get("/api/v1/replays/abc").status_code == 404


def test_an_empty_window_replays_nothing_and_is_tracked(api, destination) -> None:  # noqa: ANN001
    response = api.post(f"/api/v1/destinations/{destination}/replay", json={"since": SINCE, "until": UNTIL})
    assert response.status_code == 202
    record = out.ReplayOut.model_validate(response.get_json())
    assert (record.status, record.total, record.done, record.destination_id) == ("succeeded", 0, 0, destination)
    fetched = api.get(f"/api/v1/replays/{record.id}")
    assert out.ReplayOut.model_validate(fetched.get_json()).id == record.id


def test_the_openapi_document_describes_the_replay(client) -> None:  # noqa: ANN001
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/destinations/{id}/replay"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReplayWindow")
    assert set(operation["responses"]) >= {"200", "202", "404", "422"}
    schemas = document["components"]["schemas"]
    assert {"since", "until", "events", "states", "new_ids", "dry_run"} <= set(schemas["ReplayWindow"]["properties"])
    assert "ReplayOut" in schemas and "ReplayCount" in schemas
    assert "/api/v1/replays/{id}" in document["paths"]

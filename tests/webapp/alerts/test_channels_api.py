"""/api/v1/alerts: channels validated by apprise itself (a 422 names the field), URLs encrypted and never
returned, the test endpoint against real local services, and the documented response models."""

import sqlalchemy as sa

from webapp.models import AlertChannel
from webapp.schemas import alerts as out
from webapp.schemas.alerts import ALERT_EVENTS
from webapp.schemas.responses import ErrorResponse

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#alerts"


def _paths(response):
    return [error["path"] for error in response.get_json()["errors"]]


def test_create_list_get_patch_delete(api, db, receiver):
    created = api.post("/api/v1/alerts", json={"name": "Ops Slack", "url": SLACK, "events": ["destination_paused"]})
    assert created.status_code == 201, created.get_json()
    body = out.AlertChannelOut.model_validate(created.get_json())
    assert body.service == "Slack" and body.events == ["destination_paused"] and body.enabled
    assert body.url_hint.startswith("slack://") and "T1JJ3T3L2" not in body.url_hint
    assert "url" not in created.get_json()
    # The URL is a secret: stored encrypted, in no answer.
    stored = db.session.scalar(sa.select(AlertChannel.url_encrypted))
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in stored
    listed = api.get("/api/v1/alerts")
    out.AlertChannelList.model_validate(listed.get_json())
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in listed.get_data(as_text=True)

    channel_id = body.id
    renamed = api.patch(f"/api/v1/alerts/{channel_id}", json={"name": "Slack #alerts", "enabled": False})
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "Slack #alerts"
    assert renamed.get_json()["url_hint"] == body.url_hint  # no url in the body: the saved one stays
    moved = api.patch(f"/api/v1/alerts/{channel_id}", json={"url": receiver.url})
    assert moved.get_json()["service"] == "JSON" and moved.get_json()["url_hint"].startswith("json://127.0.0.1:")
    assert api.get(f"/api/v1/alerts/{channel_id}").get_json()["events"] == ["destination_paused"]
    assert api.delete(f"/api/v1/alerts/{channel_id}").status_code == 204
    assert api.get(f"/api/v1/alerts/{channel_id}").status_code == 404


def test_events_default_to_all(make_channel, receiver):
    assert make_channel(receiver.url)["events"] == list(ALERT_EVENTS)


def test_422s_name_the_field(api):
    cases = [
        ({"name": "x", "url": "nonsense://whatever"}, "url", "apprise cannot use this nonsense:// URL"),
        ({"name": "x", "url": "mailto://127.0.0.1?to=ops@example.com&from=not-an-address"}, "url", "apprise cannot"),
        ({"name": "x", "url": "hooks.example.com/path"}, "url", "Apprise URL"),
        ({"name": "x", "url": "json://a.example/x json://b.example/y"}, "url", "one URL per channel"),
        ({"name": "x", "url": "   "}, "url", "must not be empty"),
        ({"name": "x"}, "url", "field required"),
        ({"name": "", "url": SLACK}, "name", "must not be empty"),
        ({"name": "x", "url": SLACK, "events": ["order_placed"]}, "events", "unknown event(s): order_placed"),
        ({"name": "x", "url": SLACK, "events": []}, "events", "at least one event"),
        ({"name": "x", "url": SLACK, "colour": "red"}, "colour", "unknown field"),
    ]
    for body, path, message in cases:
        response = api.post("/api/v1/alerts", json=body)
        assert response.status_code == 422, (body, response.get_json())
        ErrorResponse.model_validate(response.get_json())
        errors = response.get_json()["errors"]
        assert [e["path"] for e in errors] == [path], (body, errors)
        assert message in errors[0]["message"], (body, errors)
    assert api.get("/api/v1/alerts").get_json()["channels"] == []


def test_patch_validates_the_new_url(api, make_channel, receiver):
    channel = make_channel(receiver.url)
    response = api.patch(f"/api/v1/alerts/{channel['id']}", json={"url": "nonsense://x"})
    assert response.status_code == 422 and _paths(response) == ["url"]
    assert api.get(f"/api/v1/alerts/{channel['id']}").get_json()["url_hint"] == channel["url_hint"]


def test_test_endpoint_sends_through_the_channel(api, make_channel, receiver, smtp):
    json_channel = make_channel(receiver.url)
    answer = api.post(f"/api/v1/alerts/{json_channel['id']}/test")
    assert answer.status_code == 200
    assert out.AlertTestOut.model_validate(answer.get_json()).ok
    assert receiver.titles() == ["[shoprelay] Test notice"]
    assert api.get(f"/api/v1/alerts/{json_channel['id']}").get_json()["last_sent_at"] is not None

    mail_channel = make_channel(smtp.url, name="ops email")
    assert api.post(f"/api/v1/alerts/{mail_channel['id']}/test").get_json()["ok"]
    assert smtp.subjects() == ["[shoprelay] Test notice"]
    assert smtp.messages[0]["To"] == "ops@example.com"


def test_a_failing_test_says_why_and_is_recorded(api, make_channel, receiver):
    receiver.status = 500
    channel = make_channel(receiver.url)
    answer = api.post(f"/api/v1/alerts/{channel['id']}/test").get_json()
    assert answer["ok"] is False and "500" in answer["message"]
    refused = make_channel("json://127.0.0.1:1/hook", name="nobody listens")
    answer = api.post(f"/api/v1/alerts/{refused['id']}/test").get_json()
    assert answer["ok"] is False and "onnection" in answer["message"]
    shown = api.get(f"/api/v1/alerts/{refused['id']}").get_json()
    assert "onnection" in shown["last_error"] and shown["last_error_at"] is not None


def test_secrets_in_a_failure_are_redacted(api, make_channel):
    channel = make_channel("json://alerts:s3cr3t-pass@127.0.0.1:1/hook-token-123456")
    answer = api.post(f"/api/v1/alerts/{channel['id']}/test").get_json()
    assert not answer["ok"]
    text = str(answer) + str(api.get(f"/api/v1/alerts/{channel['id']}").get_json())
    assert "s3cr3t-pass" not in text and "hook-token-123456" not in text


def test_unknown_channel_is_404(api):
    for method, path in (("get", "/api/v1/alerts/99"), ("patch", "/api/v1/alerts/99"),
                         ("delete", "/api/v1/alerts/99"), ("post", "/api/v1/alerts/99/test")):
        response = getattr(api, method)(path, json={}) if method == "patch" else getattr(api, method)(path)
        assert response.status_code == 404, (method, path)


def test_routes_are_documented(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert set(paths["/api/v1/alerts"]) == {"get", "post"}
    assert set(paths["/api/v1/alerts/{id}"]) == {"get", "patch", "delete"}
    assert "post" in paths["/api/v1/alerts/{id}/test"]
    assert [p["name"] for p in paths["/api/v1/alerts/incidents"]["get"]["parameters"]] == ["state", "limit"]
    assert paths["/api/v1/alerts"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"] \
        == "#/components/schemas/ChannelCreate"


def test_incidents_state_is_checked(api):
    response = api.get("/api/v1/alerts/incidents?state=resolved")
    assert response.status_code == 422 and _paths(response) == ["state"]
    assert api.get("/api/v1/alerts/incidents?limit=0").status_code == 422
    assert api.get("/api/v1/alerts/incidents").get_json() == {"incidents": []}

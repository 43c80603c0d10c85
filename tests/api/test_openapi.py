"""The OpenAPI document is generated from the same models the responses are checked against."""

from tests.factories import make_order
from webapp.schemas import responses as out


def test_document_lists_every_api_route(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    documented = {(path.replace("{id}", "<>").replace("{email}", "<>"), method.upper())
                  for path, methods in document["paths"].items() for method in methods}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint in ("api.openapi", "api.ping"):
            continue
        path = "/".join("<>" if part.startswith("<") else part for part in rule.rule.split("/"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method == "PUT":
                continue  # PUT mirrors PATCH
            assert (path, method) in documented, (rule.rule, method)
    assert "CanonicalOrder" in document["components"]["schemas"]


def test_real_responses_match_the_documented_models(api):
    created = api.post("/api/v1/destinations", json={"name": "hook", "kind": "webhook", "credentials": {
        "url": "http://127.0.0.1:9/h", "secret": "abcdefgh"}})
    out.DestinationOut.model_validate(created.get_json())
    out.DestinationList.model_validate(api.get("/api/v1/destinations").get_json())
    out.IngestResponse.model_validate(api.post("/api/v1/orders", json=make_order()).get_json())
    out.OrderOut.model_validate(api.get("/api/v1/orders/1234").get_json())
    out.ContactOut.model_validate(api.get("/api/v1/contacts/john.smith@example.com").get_json())
    out.ErrorResponse.model_validate(api.post("/api/v1/orders", json={"id": 1}).get_json())
    pushed = api.post("/api/v1/products", json={"upserts": [{"external_id": "A", "title": "Mug"}]}).get_json()
    out.PushResult.model_validate(pushed)
    out.SourceList.model_validate(api.get("/api/v1/sources").get_json())
    feed = api.post("/api/v1/feeds", json={"name": "F", "slug": "f", "format": "klaviyo_json",
                                           "source_ids": [pushed["source_id"]]})
    assert feed.status_code == 201, feed.get_json()
    out.FeedOut.model_validate(feed.get_json())
    out.FeedBuildOut.model_validate(api.post(f"/api/v1/feeds/{feed.get_json()['id']}/build").get_json())
    checkout = api.post("/api/v1/checkouts", json={
        "id": "c1", "started_at": "2026-11-20T10:00:00Z", "currency": "USD", "total": 9.99,
        "customer": {"email": "a@example.com"}, "items": [{"name": "Mug", "quantity": 1, "price": 9.99}]})
    out.CheckoutResult.model_validate(checkout.get_json())

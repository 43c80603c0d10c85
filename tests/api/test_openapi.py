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


def test_every_operation_declares_security_and_its_errors_in_the_one_shape(client):
    document = client.get("/api/v1/openapi.json").get_json()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            where = f"{method.upper()} {path}"
            assert operation["security"] == [{"apiKey": []}], where
            assert operation["operationId"], where
            statuses = set(operation["responses"])
            assert {"401", "403", "503"} <= statuses, where
            if "{" in path:
                assert "404" in statuses, where
            if "requestBody" in operation:
                assert {"400", "409", "413", "422"} <= statuses, where
            for status, response in operation["responses"].items():
                if status >= "400":
                    assert response["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


def test_int_ids_are_documented_as_the_integers_the_routes_take(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    source_id = paths["/api/v1/sources/{id}"]["get"]["parameters"][0]["schema"]
    assert source_id == {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}
    assert paths["/api/v1/orders/{id}"]["get"]["parameters"][0]["schema"]["type"] == "string"


def test_creating_operations_link_to_what_reads_their_result(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    links = paths["/api/v1/sources"]["post"]["responses"]["201"]["links"]
    assert links["get_sources_id"] == {"operationId": "get_sources_id", "parameters": {"id": "$response.body#/id"}}
    operation_ids = {operation["operationId"] for methods in paths.values() for operation in methods.values()}
    for path, methods in paths.items():
        for operation in methods.values():
            for response in operation["responses"].values():
                for link in response.get("links", {}).values():
                    assert link["operationId"] in operation_ids, (path, link)


def test_request_schemas_carry_the_constraints_the_api_checks(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert schemas["OrderItem"]["properties"]["quantity"]["minimum"] == 1
    assert {tuple(option["required"]) for option in schemas["Customer"]["anyOf"]} == {("id",), ("email",),
                                                                                     ("phone",)}
    assert schemas["FeedCreate"]["properties"]["source_ids"]["maxItems"] == 100
    assert schemas["SourceCreate"]["properties"]["name"]["minLength"] == 1
    assert any(rule["if"]["properties"]["kind"]["const"] == "webhook" for rule in schemas["DestinationCreate"]["allOf"])


def test_a_method_a_path_does_not_take_answers_405_with_allow(api):
    response = api.delete("/api/v1/sources")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert response.get_json()["errors"][0]["path"] == ""
    traced = api.open("/api/v1/feeds/1", method="TRACE")
    assert traced.status_code == 405 and "PATCH" in traced.headers["Allow"]


def test_ids_beyond_the_database_range_are_unknown_not_errors(api):
    assert api.get(f"/api/v1/sources/{2**64}").status_code == 404
    assert api.delete(f"/api/v1/feeds/{10**18}").status_code == 404
    response = api.post("/api/v1/feeds", json={"name": "F", "slug": "f", "format": "klaviyo_json",
                                               "source_ids": [2**64]})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["path"] == "source_ids.0"


def test_json_bodies_are_typed_exactly(api):
    response = api.post("/api/v1/sources", json={"name": "S", "kind": "push", "enabled": 1})
    assert response.status_code == 422
    assert response.get_json()["errors"] == [{"path": "enabled", "message": "must be true or false"}]
    assert api.post("/api/v1/sources", data="not json").status_code == 400


def test_a_body_that_conflicts_with_what_is_stored_is_409(api):
    response = api.post("/api/v1/feeds", json={"name": "F", "slug": "f", "format": "klaviyo_json",
                                               "source_ids": [12345]})
    assert response.status_code == 409
    assert response.get_json()["errors"][0]["path"] == "source_ids"


def test_a_value_less_rule_ignores_whatever_value_it_carries(api):
    """The document lets is_true/is_false/empty/not_empty carry any `value` (they ignore it): even a number
    beyond 64 bits is accepted there, and not stored; elsewhere such a number is a 422 naming `rules`."""
    source = api.post("/api/v1/sources", json={"name": "Push", "kind": "push"}).get_json()
    rules = [{"action": "include", "field": "mpn", "op": "is_false", "value": 2**70}]
    created = api.post("/api/v1/feeds", json={"name": "F", "slug": "f", "format": "klaviyo_xml",
                                              "source_ids": [source["id"]], "rules": rules})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["rules"] == [{"action": "include", "field": "mpn", "op": "is_false"}]
    refused = api.post("/api/v1/feeds", json={"name": "G", "slug": "g", "format": "klaviyo_xml",
                                              "source_ids": [source["id"]],
                                              "rules": [{"action": "include", "field": "price", "op": "gt",
                                                         "value": 2**70}]})
    assert refused.status_code == 422 and refused.get_json()["errors"][0]["path"] == "rules"

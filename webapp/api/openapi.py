"""GET /api/v1/openapi.json: the OpenAPI 3.1 document of /api/v1, generated from the pydantic models."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import current_app, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from webapp import __version__
from webapp.api import bp
from webapp.converters import MAX_ID
from webapp.schemas import responses as out
from webapp.schemas.canonical.back_in_stock import BackInStockRequest
from webapp.schemas.canonical.checkouts import CanonicalCheckout
from webapp.schemas.canonical.orders import CanonicalOrder, OrderBatch
from webapp.schemas.canonical.products import ProductPush
from webapp.schemas.destinations import EVENT_NAMES, DestinationCreate, DestinationUpdate
from webapp.schemas.feeds import FeedCreate, FeedUpdate
from webapp.schemas.replays import OrderReplayRequest
from webapp.schemas.sources import SourceCreate, SourceUpdate
from webapp.services.delivery.replay_windows import REPLAYABLE_STATES, STATE_ALIASES
from webapp.services.delivery.replays import ReplayWindow

TIMESTAMP = {"type": "string", "format": "date-time"}

# (method, path, summary, request model, {status: response model | None},
#  query parameters: (name, description) or (name, description, JSON schema the route checks))
ROUTES: list[tuple[str, str, str, Any, dict[int, Any], list[tuple[str, ...]]]] = [
    ("get", "/ping", "Check a key (any scope)", None, {200: out.Pong}, []),
    ("post", "/orders", "Upsert one order or a batch of up to 1000 (the store sends current state)",
     "orders", {202: out.IngestResponse, 413: out.ErrorResponse, 422: out.ErrorResponse},
     [("historical", "1 marks a backfill: events keep their time and do not trigger flows")]),
    ("get", "/orders/{id}", "An order, its events per destination and their delivery state", None,
     {200: out.OrderOut, 404: out.ErrorResponse}, []),
    ("post", "/orders/{id}/replay", "Send an order's events to a destination again", OrderReplayRequest,
     {202: out.Replayed, 409: out.ErrorResponse}, []),
    ("get", "/contacts/{email}", "A contact and its lifetime value per currency and RFM", None,
     {200: out.ContactOut, 404: out.ErrorResponse}, []),
    ("post", "/checkouts", "A server-side Started Checkout", CanonicalCheckout,
     {202: out.CheckoutResult, 422: out.ErrorResponse}, []),
    ("post", "/products", "Push-source product upserts and deletes (≤ 1000)", ProductPush,
     {202: out.PushResult, 422: out.ErrorResponse}, []),
    ("post", "/back-in-stock", "A shopper waiting for a sold-out variant: Klaviyo's back-in-stock subscription, "
     "and a back_in_stock webhook event when a sync brings it back", BackInStockRequest,
     {202: out.BackInStockOut, 422: out.ErrorResponse}, []),
    ("get", "/sources", "List sources", None, {200: out.SourceList}, []),
    ("post", "/sources", "Create a source", SourceCreate, {201: out.SourceOut, 422: out.ErrorResponse}, []),
    ("get", "/sources/{id}", "A source", None, {200: out.SourceOut, 404: out.ErrorResponse}, []),
    ("patch", "/sources/{id}", "Update a source", SourceUpdate, {200: out.SourceOut, 422: out.ErrorResponse}, []),
    ("delete", "/sources/{id}", "Delete a source and its products", None, {204: None}, []),
    ("post", "/sources/{id}/sync", "Queue a sync (409 when one is queued or running)", None,
     {202: out.SyncRunOut, 409: out.ErrorResponse},
     [("confirm_removals", "1 lets the sync remove more products than the guard allows")]),
    ("get", "/sync-runs/{id}", "A sync run with its counts", None, {200: out.SyncRunOut}, []),
    ("get", "/feeds", "List feeds", None, {200: out.FeedList}, []),
    ("post", "/feeds", "Create a feed", FeedCreate, {201: out.FeedOut, 422: out.ErrorResponse}, []),
    ("get", "/feeds/{id}", "A feed with its public URL", None, {200: out.FeedOut, 404: out.ErrorResponse}, []),
    ("patch", "/feeds/{id}", "Update a feed", FeedUpdate, {200: out.FeedOut, 422: out.ErrorResponse}, []),
    ("delete", "/feeds/{id}", "Delete a feed", None, {204: None}, []),
    ("post", "/feeds/{id}/build", "Queue a build (409 when one is queued or running)", None,
     {202: out.FeedBuildOut, 409: out.ErrorResponse}, []),
    ("post", "/feeds/{id}/rotate-token", "New unguessable URL; the old one stops working", None,
     {200: out.FeedOut}, []),
    ("get", "/feed-builds/{id}", "A feed build with its validation report", None, {200: out.FeedBuildOut}, []),
    ("get", "/destinations", "List destinations (credentials are never returned)", None,
     {200: out.DestinationList}, []),
    ("post", "/destinations", "Create a destination", DestinationCreate,
     {201: out.DestinationOut, 422: out.ErrorResponse}, []),
    ("get", "/destinations/{id}", "A destination", None, {200: out.DestinationOut, 404: out.ErrorResponse}, []),
    ("patch", "/destinations/{id}", "Update a destination (credentials only when given)", DestinationUpdate,
     {200: out.DestinationOut, 422: out.ErrorResponse}, []),
    ("delete", "/destinations/{id}", "Delete a destination", None, {204: None}, []),
    ("post", "/destinations/{id}/pause", "Pause delivery (events keep accumulating)", None,
     {200: out.DestinationOut}, []),
    ("post", "/destinations/{id}/resume", "Resume; the backlog drains at the rate limit", None,
     {200: out.DestinationOut}, []),
    ("post", "/destinations/{id}/test", "Check the credentials with a harmless call", None, {200: None}, []),
    ("post", "/destinations/{id}/retry", "Retry failed/dead events created in a time range", None,
     {200: out.RetryCount, 422: out.ErrorResponse},
     [("since", "ISO 8601 with offset", TIMESTAMP), ("until", "ISO 8601 with offset", TIMESTAMP),
      ("dry_run", "1 only counts")]),
    ("post", "/destinations/{id}/replay", "Replay a time window: send again what the destination was sent (or "
     "failed to get), filtered by event name and state; a dry run answers the count first", ReplayWindow,
     {200: out.ReplayCount, 202: out.ReplayOut, 404: out.ErrorResponse, 422: out.ErrorResponse}, []),
    ("get", "/replays/{id}", "A window replay's status and progress", None,
     {200: out.ReplayOut, 404: out.ErrorResponse}, []),
    ("get", "/destinations/{id}/catalog", "The platform's catalog as shoprelay keeps it: items, variants and "
     "categories confirmed, jobs in flight, the last reconcile, refused entries", None,
     {200: out.DestinationCatalogOut, 404: out.ErrorResponse}, []),
    ("post", "/destinations/{id}/catalog/reconcile", "Queue a reconcile of the platform's catalog now", None,
     {202: out.CatalogReconcileOut, 404: out.ErrorResponse, 409: out.ErrorResponse},
     [("full", "1 reads the platform's catalog back first")]),
    ("post", "/events/{id}/retry", "Retry one failed or waiting event now", None,
     {200: out.EventOut, 409: out.ErrorResponse}, []),
]


def document(*routes: tuple[str, str, str, Any, dict[int, Any], list[tuple[str, ...]]]) -> None:
    """An API module documents its own routes here, beside their code (the document is built per request)."""
    ROUTES.extend(routes)


ERROR_SCHEMA = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
UNAVAILABLE = {
    "description": "The database is busy (e.g. SQLite's write lock held past SHOPRELAY_DB_WAIT_SECONDS) or "
                   "unreachable; nothing was stored. Send the same request again after Retry-After seconds.",
    "headers": {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}},
    "content": ERROR_SCHEMA,
}
# What any operation may answer besides its own statuses: (status, description, applies to (operation)).
STANDARD_ERRORS: list[tuple[int, str, Callable[[dict[str, Any]], bool]]] = [
    (400, "The body is not JSON (or no body was sent; send Content-Type: application/json)",
     lambda operation: "requestBody" in operation),
    (401, "Missing, unknown or revoked API key", lambda operation: True),
    (403, "The API key's scope does not allow this call; the message names the scope needed",
     lambda operation: True),
    (404, "Nothing has this id", lambda operation: any(p["in"] == "path" for p in operation.get("parameters", []))),
    (409, "The body is valid but conflicts with what the server holds: an id that names nothing, a slug already "
          "taken, a run already going; on a destination's PATCH (its body does not carry the kind) a credential "
          "another kind takes but the stored destination's kind does not (a name it has no use for, another "
          "kind's key shape), an event or catalog it does not take",
     lambda operation: "requestBody" in operation),
    (413, "The body is larger than SHOPRELAY_API_MAX_BYTES", lambda operation: "requestBody" in operation),
    (422, "Invalid input; each entry's path names the field and its message says why (nothing was stored)",
     lambda operation: "requestBody" in operation or any(p["in"] == "query" for p in operation.get("parameters", []))),
]
PATH_PARAMETER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
DOC_PARAMETER = re.compile(r"\{(\w+)\}")
ID_SCHEMA = {"type": "integer", "minimum": 0, "maximum": MAX_ID}

# Creating operations → the operations that read (or act on) what they created: OpenAPI links, so a client
# (and Schemathesis' stateful phase) can follow them. (method, path, status) → [(target method, target path,
# where the new id is in the answer)].
LINKS: dict[tuple[str, str, int], list[tuple[str, str, str]]] = {
    ("post", "/sources", 201): [(method, path, "$response.body#/id") for method, path in (
        ("get", "/sources/{id}"), ("patch", "/sources/{id}"), ("delete", "/sources/{id}"),
        ("post", "/sources/{id}/sync"))],
    ("post", "/sources/{id}/sync", 202): [("get", "/sync-runs/{id}", "$response.body#/id")],
    ("post", "/products", 202): [("get", "/sources/{id}", "$response.body#/source_id"),
                                 ("get", "/sync-runs/{id}", "$response.body#/run_id")],
    ("post", "/feeds", 201): [(method, path, "$response.body#/id") for method, path in (
        ("get", "/feeds/{id}"), ("patch", "/feeds/{id}"), ("delete", "/feeds/{id}"), ("post", "/feeds/{id}/build"),
        ("post", "/feeds/{id}/rotate-token"))],
    ("post", "/feeds/{id}/build", 202): [("get", "/feed-builds/{id}", "$response.body#/id")],
    ("post", "/destinations", 201): [(method, path, "$response.body#/id") for method, path in (
        ("get", "/destinations/{id}"), ("patch", "/destinations/{id}"), ("delete", "/destinations/{id}"),
        ("post", "/destinations/{id}/pause"), ("post", "/destinations/{id}/resume"),
        ("post", "/destinations/{id}/retry"), ("post", "/destinations/{id}/replay"),
        ("get", "/destinations/{id}/catalog"))],
    ("post", "/destinations/{id}/replay", 202): [("get", "/replays/{id}", "$response.body#/id")],
    ("delete", "/contacts/{email}", 202): [("get", "/erasures/{id}", "$response.body#/id"),
                                           ("post", "/erasures/{id}/retry", "$response.body#/id")],
    ("post", "/alerts", 201): [(method, path, "$response.body#/id") for method, path in (
        ("get", "/alerts/{id}"), ("patch", "/alerts/{id}"), ("delete", "/alerts/{id}"))],
    ("post", "/orders", 202): [(method, path, "$response.body#/results/0/id") for method, path in (
        ("get", "/orders/{id}"), ("post", "/orders/{id}/replay"))],
}


# ReplayWindow (webapp/services/delivery/replay_windows.py) checks its lists in validators: the names it takes.
REPLAY_WINDOW_LISTS = {
    "events": {"anyOf": [{"type": "array", "minItems": 1, "items": {"enum": list(EVENT_NAMES)}}, {"type": "null"}],
               "description": "Event names (null: every event)."},
    "states": {"anyOf": [{"type": "array", "minItems": 1, "items": {"enum": [*REPLAYABLE_STATES, *STATE_ALIASES]}},
                         {"type": "null"}],
               "description": "delivered, rejected, dead, skipped, or failed (rejected and dead). Null: delivered, "
                              "rejected and dead. since must not be after until."},
}


def build_document() -> dict[str, Any]:
    """The whole document: every route in ROUTES with its parameters, body, answers, security and links."""
    converters = route_converters()
    paths: dict[str, Any] = {}
    for method, path, summary, request, responses, query in ROUTES:
        operation: dict[str, Any] = {"operationId": operation_id(method, path), "summary": summary,
                                     "security": [{"apiKey": []}]}
        parameters = path_parameters(path, converters) + [query_parameter(*entry) for entry in query]
        if parameters:
            operation["parameters"] = parameters
        if request is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": request_schema(request)}}}
        operation["responses"] = answers(method, path, operation, responses)
        paths.setdefault(f"/api/v1{path}", {})[method] = operation
    schemas = component_schemas()
    schemas["ReplayWindow"]["properties"].update(REPLAY_WINDOW_LISTS)
    return {
        "openapi": "3.1.0",
        "info": {"title": "shoprelay API", "version": __version__,
                 "description": "Orders in, catalog management, delivery operations. Errors always have the "
                                "shape {\"errors\": [{\"path\", \"message\"}]}; a method a path does not take "
                                "answers 405 with an Allow header."},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": (
                           "shoprelay apikeys create NAME [--scope ingest|read|admin]. Scopes: ingest may POST "
                           "orders, checkouts, products and back-in-stock and GET orders/{id}; read may make every "
                           "GET; admin may make every call.")}}},
    }


def component_schemas() -> dict[str, Any]:
    """JSON schemas of every request and response model, as validated (constraints included)."""
    models: list[type[BaseModel]] = [CanonicalOrder, OrderBatch]
    for _, _, _, request, responses, _ in ROUTES:
        if isinstance(request, type):
            models.append(request)
        models += [model for model in responses.values() if model is not None]
    unique = list(dict.fromkeys(models))
    _, schemas = models_json_schema([(m, "validation") for m in unique],
                                    ref_template="#/components/schemas/{model}")
    return schemas["$defs"]


def request_schema(request: Any) -> dict[str, Any]:
    if request == "orders":
        return {"oneOf": [{"$ref": "#/components/schemas/CanonicalOrder"},
                          {"$ref": "#/components/schemas/OrderBatch"}]}
    return {"$ref": f"#/components/schemas/{request.__name__}"}


def answers(method: str, path: str, operation: dict[str, Any], responses: dict[int, Any]) -> dict[str, Any]:
    """The route's own answers, then every standard error it can meet, each with the one error shape."""
    found: dict[str, Any] = {}
    for status, model in responses.items():
        response: dict[str, Any] = {"description": "No content" if status == 204 else str(status)}
        if model is not None:
            response["content"] = {"application/json": {"schema": {
                "$ref": f"#/components/schemas/{model.__name__}"}}}
        links = LINKS.get((method, path, status))
        if links:
            response["links"] = {operation_id(target_method, target_path): {
                "operationId": operation_id(target_method, target_path), "parameters": {"id": where}}
                for target_method, target_path, where in links}
        found[str(status)] = response
    for status, description, applies in STANDARD_ERRORS:
        if applies(operation):
            found.setdefault(str(status), {"description": description, "content": ERROR_SCHEMA})
    found["503"] = UNAVAILABLE
    return dict(sorted(found.items()))


def operation_id(method: str, path: str) -> str:
    """`post /sources/{id}/sync` → `post_sources_id_sync`: stable, readable, unique per route."""
    words = re.sub(r"[^a-z0-9]+", "_", DOC_PARAMETER.sub(r"\1", path.lower())).strip("_")
    return f"{method}_{words}"


def route_converters() -> dict[str, list[str]]:
    """Each /api/v1 route's path (parameters blanked) → its converters, so an `<int:...>` id is documented as
    the integer it is and any other parameter as text."""
    found: dict[str, list[str]] = {}
    for rule in current_app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            key = PATH_PARAMETER.sub("{}", rule.rule.removeprefix("/api/v1"))
            found[key] = [converter or "default" for converter, _ in PATH_PARAMETER.findall(rule.rule)]
    return found


def path_parameters(path: str, converters: dict[str, list[str]]) -> list[dict[str, Any]]:
    kinds = converters.get(DOC_PARAMETER.sub("{}", path), [])
    parameters = []
    for index, name in enumerate(DOC_PARAMETER.findall(path)):
        integer = index < len(kinds) and kinds[index] == "int"
        text = {"type": "string", "format": "email"} if name == "email" else {"type": "string", "minLength": 1}
        parameters.append({"name": name, "in": "path", "required": True,
                           "schema": dict(ID_SCHEMA) if integer else text})
    return parameters


def query_parameter(name: str, text: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Optional query parameters: plain text unless the route gives the schema it checks against."""
    return {"name": name, "in": "query", "required": False, "description": text,
            "schema": schema or {"type": "string"}}


@bp.get("/openapi.json")
def openapi():  # noqa: ANN201
    """Public: the document describes the API, it does not open it."""
    return jsonify(build_document())

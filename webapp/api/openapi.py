"""GET /api/v1/openapi.json: the OpenAPI 3.1 document of /api/v1, generated from the pydantic models."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from webapp import __version__
from webapp.api import bp
from webapp.schemas import responses as out
from webapp.schemas.back_in_stock import BackInStockRequest
from webapp.schemas.checkouts import CanonicalCheckout
from webapp.schemas.destinations import DestinationCreate, DestinationUpdate
from webapp.schemas.feeds import FeedCreate, FeedUpdate
from webapp.schemas.orders import CanonicalOrder, OrderBatch
from webapp.schemas.products import ProductPush
from webapp.schemas.sources import SourceCreate, SourceUpdate
from webapp.services.delivery.replays import ReplayWindow

# (method, path, summary, request model, {status: response model | None}, query parameters)
ROUTES: list[tuple[str, str, str, Any, dict[int, Any], list[tuple[str, str]]]] = [
    ("post", "/orders", "Upsert one order or a batch of up to 1000 (the store sends current state)",
     "orders", {202: out.IngestResponse, 413: out.ErrorResponse, 422: out.ErrorResponse},
     [("historical", "1 marks a backfill: events keep their time and do not trigger flows")]),
    ("get", "/orders/{id}", "An order, its events per destination and their delivery state", None,
     {200: out.OrderOut, 404: out.ErrorResponse}, []),
    ("post", "/orders/{id}/replay", "Send an order's events to a destination again", None,
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
     [("since", "ISO 8601 with offset"), ("until", "ISO 8601 with offset"), ("dry_run", "1 only counts")]),
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


def document(*routes: tuple[str, str, str, Any, dict[int, Any], list[tuple[str, str]]]) -> None:
    """An API module documents its own routes here, beside their code (the document is built per request)."""
    ROUTES.extend(routes)


UNAVAILABLE = {
    "description": "The database is busy (e.g. SQLite's write lock held past SHOPRELAY_DB_WAIT_SECONDS) or "
                   "unreachable; nothing was stored. Send the same request again after Retry-After seconds.",
    "headers": {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


def build_document() -> dict[str, Any]:
    models: list[type[BaseModel]] = [CanonicalOrder, OrderBatch]
    for _, _, _, request, responses, _ in ROUTES:
        if isinstance(request, type):
            models.append(request)
        models += [model for model in responses.values() if model is not None]
    unique = list(dict.fromkeys(models))
    _, schemas = models_json_schema([(m, "validation") for m in unique],
                                    ref_template="#/components/schemas/{model}")
    paths: dict[str, Any] = {}
    for method, path, summary, request, responses, query in ROUTES:
        operation: dict[str, Any] = {"summary": summary, "security": [{"apiKey": []}], "responses": {}}
        params = [{"name": "id" if "{id}" in path else "email", "in": "path", "required": True,
                   "schema": {"type": "string"}}] if "{" in path else []
        params += [{"name": name, "in": "query", "required": False, "description": text,
                    "schema": {"type": "string"}} for name, text in query]
        if params:
            operation["parameters"] = params
        if request == "orders":
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                {"$ref": "#/components/schemas/CanonicalOrder"}, {"$ref": "#/components/schemas/OrderBatch"}]}}}}
        elif request is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{request.__name__}"}}}}
        for status, model in responses.items():
            response: dict[str, Any] = {"description": "No content" if status == 204 else str(status)}
            if model is not None:
                response["content"] = {"application/json": {"schema": {
                    "$ref": f"#/components/schemas/{model.__name__}"}}}
            operation["responses"][str(status)] = response
        operation["responses"].setdefault("401", {"description": "Missing, unknown or revoked API key",
                                                  "content": {"application/json": {"schema": {
                                                      "$ref": "#/components/schemas/ErrorResponse"}}}})
        operation["responses"].setdefault("403", {
            "description": "The API key's scope does not allow this call; the message names the scope needed",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}})
        if method != "get":
            operation["responses"]["503"] = UNAVAILABLE
        paths.setdefault(f"/api/v1{path}", {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "shoprelay API", "version": __version__,
                 "description": "Orders in, catalog management, delivery operations. Errors always have the "
                                "shape {\"errors\": [{\"path\", \"message\"}]}."},
        "paths": paths,
        "components": {"schemas": schemas["$defs"],
                       "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": (
                           "shoprelay apikeys create NAME [--scope ingest|read|admin]. Scopes: ingest may POST "
                           "orders, checkouts, products and back-in-stock and GET orders/{id}; read may make every "
                           "GET; admin may make every call.")}}},
    }


@bp.get("/openapi.json")
def openapi():  # noqa: ANN201
    """Public: the document describes the API, it does not open it."""
    return jsonify(build_document())

"""Validate request bodies with the official Klaviyo SDK's pydantic models.

The models silently drop keys they do not know, so validation alone would pass a misspelt field;
`assert_sdk_accepts` also checks that every key we send survives `from_dict(...).to_dict()`.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

import orjson
from openapi_client.models.catalog_category_create_job_create_query import CatalogCategoryCreateJobCreateQuery
from openapi_client.models.catalog_category_delete_job_create_query import CatalogCategoryDeleteJobCreateQuery
from openapi_client.models.catalog_category_update_job_create_query import CatalogCategoryUpdateJobCreateQuery
from openapi_client.models.catalog_item_create_job_create_query import CatalogItemCreateJobCreateQuery
from openapi_client.models.catalog_item_delete_job_create_query import CatalogItemDeleteJobCreateQuery
from openapi_client.models.catalog_item_update_job_create_query import CatalogItemUpdateJobCreateQuery
from openapi_client.models.catalog_variant_create_job_create_query import CatalogVariantCreateJobCreateQuery
from openapi_client.models.catalog_variant_delete_job_create_query import CatalogVariantDeleteJobCreateQuery
from openapi_client.models.catalog_variant_update_job_create_query import CatalogVariantUpdateJobCreateQuery
from openapi_client.models.data_privacy_create_deletion_job_query import DataPrivacyCreateDeletionJobQuery
from openapi_client.models.event_create_query_v2 import EventCreateQueryV2
from openapi_client.models.events_bulk_create_job import EventsBulkCreateJob
from openapi_client.models.profile_upsert_query import ProfileUpsertQuery
from openapi_client.models.subscription_create_job_create_query import SubscriptionCreateJobCreateQuery
from openapi_client.models.subscription_delete_job_create_query import SubscriptionDeleteJobCreateQuery

from workers.destinations.base import PreparedRequest, parse_time

MODEL_BY_PATH = {
    "/api/events": EventCreateQueryV2,
    "/api/event-bulk-create-jobs": EventsBulkCreateJob,
    "/api/profile-import": ProfileUpsertQuery,
    "/api/profile-subscription-bulk-create-jobs": SubscriptionCreateJobCreateQuery,
    "/api/profile-subscription-bulk-delete-jobs": SubscriptionDeleteJobCreateQuery,
    "/api/data-privacy-deletion-jobs": DataPrivacyCreateDeletionJobQuery,
    "/api/catalog-item-bulk-create-jobs": CatalogItemCreateJobCreateQuery,
    "/api/catalog-item-bulk-update-jobs": CatalogItemUpdateJobCreateQuery,
    "/api/catalog-item-bulk-delete-jobs": CatalogItemDeleteJobCreateQuery,
    "/api/catalog-variant-bulk-create-jobs": CatalogVariantCreateJobCreateQuery,
    "/api/catalog-variant-bulk-update-jobs": CatalogVariantUpdateJobCreateQuery,
    "/api/catalog-variant-bulk-delete-jobs": CatalogVariantDeleteJobCreateQuery,
    "/api/catalog-category-bulk-create-jobs": CatalogCategoryCreateJobCreateQuery,
    "/api/catalog-category-bulk-update-jobs": CatalogCategoryUpdateJobCreateQuery,
    "/api/catalog-category-bulk-delete-jobs": CatalogCategoryDeleteJobCreateQuery,
}


def dropped_keys(sent: Any, kept: Any, path: str = "") -> list[str]:
    """Paths of values in `sent` that the SDK's round trip lost or changed."""
    if isinstance(kept, Enum):
        kept = kept.value
    if isinstance(sent, dict):
        if not isinstance(kept, dict):
            return [path or "/"]
        problems = []
        for key, value in sent.items():
            if value is None:
                continue
            if key not in kept:
                problems.append(f"{path}/{key}")
            else:
                problems += dropped_keys(value, kept[key], f"{path}/{key}")
        return problems
    if isinstance(sent, list):
        if not isinstance(kept, list) or len(kept) != len(sent):
            return [path]
        return [problem for index, (mine, theirs) in enumerate(zip(sent, kept, strict=True))
                for problem in dropped_keys(mine, theirs, f"{path}/{index}")]
    if isinstance(kept, datetime):
        return [] if parse_time(sent, datetime.min) == kept else [path]
    same = sent == kept and isinstance(sent, bool) == isinstance(kept, bool)
    return [] if same else [path]


def assert_sdk_accepts(model: type, body: dict[str, Any]) -> None:
    """The SDK model validates `body` (raises pydantic.ValidationError otherwise) and keeps every key."""
    parsed = model.from_dict(body)
    lost = dropped_keys(body, parsed.to_dict())
    assert not lost, f"{model.__name__} dropped or changed: {lost}"


def body_json(request: PreparedRequest) -> Any:
    """The request's body as JSON values, whether the adapter built it as values or as bytes."""
    return request.json if request.content is None else orjson.loads(request.content)


def assert_request_accepted(request: PreparedRequest) -> None:
    """Pick the SDK model by the request's endpoint and check its body with it."""
    path = urlsplit(request.url).path
    assert path in MODEL_BY_PATH, f"no SDK model known for {path}"
    assert_sdk_accepts(MODEL_BY_PATH[path], body_json(request))

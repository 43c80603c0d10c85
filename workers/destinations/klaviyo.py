"""Klaviyo: current JSON:API Events API (single and bulk), profile import, subscriptions, Catalog API jobs.

Property names follow Klaviyo's "integrate a custom ecommerce platform" guide so its built-in
flows, CLV and product blocks work unchanged. Fulfilled/Cancelled/Refunded Order reuse the order
id as unique_id, like Placed Order, which is what Klaviyo's CLV needs to net them off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from workers.destinations import register
from workers.destinations.base import (
    BuildResult,
    Classification,
    DestinationAdapter,
    OutboundEvent,
    PreparedRequest,
    chunked,
    classify_with_platform_message,
    collapse_latest,
    event_contact,
    parse_time,
    text_or_none,
)
from workers.destinations.klaviyo_payloads import (
    METRICS,
    NOT_TAKEN,
    catalog_attributes,
    catalog_item_id,
    event_attributes,
    event_profile,
    identifiers,
    profile_attributes,
)

REVISION = "2026-10-15"
BULK_EVENTS_PER_REQUEST = 1000
# Klaviyo refuses a bulk body over 5 MB; requests are cut below it, with room for the JSON:API envelope.
BULK_MAX_BYTES = 5_000_000
_BULK_ENVELOPE_BYTES = 200  # {"data": {"type": "event-bulk-create-job", ...}} around the entries
_ENTRY_ENVELOPE_BYTES = 150  # {"type": "event-bulk-create", "attributes": {"profile": ..., "events": ...}}
CATALOG_ITEMS_PER_JOB = 100
PROFILES_PER_SUBSCRIPTION_JOB = 1000


@dataclass
class _BulkRequest:
    """One bulk-create request being filled: entries per (profile, historical)."""

    entries: dict[tuple[str, bool], dict[str, Any]] = field(default_factory=dict)
    event_ids: list[int] = field(default_factory=list)
    size: int = _BULK_ENVELOPE_BYTES  # serialised bytes so far (an upper bound)

    def full(self) -> bool:
        return len(self.event_ids) >= BULK_EVENTS_PER_REQUEST

    def fits(self, size: int) -> bool:
        """Room for `size` more bytes; an empty request takes any event, however large."""
        return not self.event_ids or self.size + size <= BULK_MAX_BYTES

    def body(self) -> dict[str, Any]:
        data = []
        for (_, historical), entry in self.entries.items():
            profile = {"data": {"type": "profile", "attributes": entry["profile"]}}
            attributes: dict[str, Any] = {"profile": profile, "events": {"data": entry["events"]}}
            if historical:
                attributes["backfill"] = True
            data.append({"type": "event-bulk-create", "attributes": attributes})
        job = {"events-bulk-create": {"data": data}}
        return {"data": {"type": "event-bulk-create-job", "attributes": job}}


@register
class KlaviyoAdapter(DestinationAdapter):
    kind = "klaviyo"
    label = "Klaviyo"
    default_base_url = "https://a.klaviyo.com"
    supported_events = frozenset(METRICS) | {"profile_upsert", "consent_change", "product_upsert",
                                             "product_delete"}
    credential_fields = ("api_key",)
    default_rate_limits = {"burst_per_second": 350, "per_minute": 3500}
    bulk_rate_limits: ClassVar[dict[str, float]] = {"burst_per_second": 10, "per_minute": 150}
    max_events_per_request = BULK_EVENTS_PER_REQUEST

    def _request(self, method: str, path: str, event_ids: list[int], body: Any = None) -> PreparedRequest:
        headers = {"Authorization": f"Klaviyo-API-Key {self.credentials['api_key']}", "revision": REVISION,
                   "Accept": "application/vnd.api+json"}
        if body is not None:
            headers["Content-Type"] = "application/vnd.api+json"
        return PreparedRequest(method, f"{self.base_url}{path}", event_ids, json=body, headers=headers)

    def build_requests(self, events: list[OutboundEvent], *, bulk: bool = False) -> BuildResult:
        result = BuildResult(requests=[])
        metric_events, consents, products = [], [], []
        profiles: dict[int, dict[str, Any]] = {}  # built once per event: it is the costliest part
        for event in events:
            if event.name in METRICS:
                profile = profiles[event.id] = event_profile(event)
                if identifiers(profile):
                    metric_events.append(event)
                else:
                    result.skipped[event.id] = "no email, E.164 phone or customer id to attach the event to"
            elif event.name == "profile_upsert":
                profile = profile_attributes(event_contact(event.payload))
                if identifiers(profile):
                    body = {"data": {"type": "profile", "attributes": profile}}
                    result.requests.append(self._request("POST", "/api/profile-import", [event.id], body))
                else:
                    result.skipped[event.id] = "no email, E.164 phone or customer id to identify the profile"
            elif event.name == "consent_change":
                consents.append(event)
            elif event.name in ("product_upsert", "product_delete"):
                products.append(event)
            else:
                result.skipped[event.id] = NOT_TAKEN.get(event.name, f"Klaviyo does not take {event.name}")
        if bulk:
            result.requests += self._bulk_event_requests(metric_events, profiles)
        else:
            for event in metric_events:
                attributes = event_attributes(event)
                attributes["profile"] = {"data": {"type": "profile", "attributes": profiles[event.id]}}
                body = {"data": {"type": "event", "attributes": attributes}}
                result.requests.append(self._request("POST", "/api/events", [event.id], body))
        result.requests += self._consent_requests(consents, result.skipped)
        result.requests += self._catalog_requests(products, result.skipped)
        return result

    def _bulk_event_requests(self, events: list[OutboundEvent],
                             profiles: dict[int, dict[str, Any]]) -> list[PreparedRequest]:
        """Requests of ≤ 1000 events and ≤ 5 MB grouped per profile. A repeat of (profile, metric, unique_id)
        waits for a later request, because Klaviyo fails the whole bulk job on such a repeat.

        Each event goes to the first request with room that does not hold its keys yet; `holders` maps a key
        to the requests holding it, so that is a dict look-up, not a scan of every open request.
        """
        batches: list[_BulkRequest] = []
        holders: dict[tuple[str, str, str], set[int]] = {}
        profile_sizes: dict[str, int] = {}
        first_open = 0  # requests fill in order: all before this one are full
        for event in events:
            profile = profiles[event.id]
            keys = [(who, METRICS[event.name], event.unique_id) for who in identifiers(profile)]
            taken = set().union(*(holders[key] for key in keys if key in holders))
            entry_key = (repr(sorted(profile.items())), event.historical)
            item = {"type": "event", "attributes": event_attributes(event)}
            item_size = len(orjson.dumps(item)) + 1
            if entry_key[0] not in profile_sizes:
                profile_sizes[entry_key[0]] = len(orjson.dumps(profile)) + _ENTRY_ENVELOPE_BYTES
            while first_open < len(batches) and batches[first_open].full():
                first_open += 1
            index = first_open
            while index < len(batches):
                candidate = batches[index]
                size = item_size + (0 if entry_key in candidate.entries else profile_sizes[entry_key[0]])
                if index not in taken and not candidate.full() and candidate.fits(size):
                    break
                index += 1
            if index == len(batches):
                batches.append(_BulkRequest())
            batch = batches[index]
            if entry_key not in batch.entries:
                batch.entries[entry_key] = {"profile": profile, "events": []}
                batch.size += profile_sizes[entry_key[0]]
            batch.entries[entry_key]["events"].append(item)
            batch.size += item_size
            for key in keys:
                holders.setdefault(key, set()).add(index)
            batch.event_ids.append(event.id)
        return [self._request("POST", "/api/event-bulk-create-jobs", batch.event_ids, batch.body())
                for batch in batches]

    def _consent_requests(self, events: list[OutboundEvent],
                          skipped: dict[int, str]) -> list[PreparedRequest]:
        """Email marketing consent as subscribe / unsubscribe bulk jobs (latest change per email wins)."""
        with_email = []
        for event in events:
            if text_or_none(event_contact(event.payload).get("email")):
                with_email.append(event)
            else:
                skipped[event.id] = "email consent needs an email address"
        latest = collapse_latest(with_email, lambda e: str(event_contact(e.payload)["email"]).lower())
        requests = []
        for subscribe, job in ((True, "create"), (False, "delete")):
            wanted = [pair for pair in latest
                      if bool(event_contact(pair[0].payload).get("accepts_marketing")) is subscribe]
            for chunk in chunked(wanted, PROFILES_PER_SUBSCRIPTION_JOB):
                ids = [event_id for _, chain in chunk for event_id in chain]
                body = self._subscription_body([event for event, _ in chunk], subscribe=subscribe)
                path = f"/api/profile-subscription-bulk-{job}-jobs"
                requests.append(self._request("POST", path, ids, body))
        return requests

    def _subscription_body(self, events: list[OutboundEvent], *, subscribe: bool) -> dict[str, Any]:
        historical = subscribe and all(event.historical for event in events)
        profiles = []
        for event in events:
            marketing: dict[str, Any] = {"consent": "SUBSCRIBED" if subscribe else "UNSUBSCRIBED"}
            if historical:  # Klaviyo wants the original consent time for imported consent
                marketing["consented_at"] = parse_time(None, event.occurred_at).isoformat()
            profiles.append({"type": "profile", "attributes": {
                "email": str(event_contact(event.payload)["email"]),
                "subscriptions": {"email": {"marketing": marketing}}}})
        attributes: dict[str, Any] = {"profiles": {"data": profiles}}
        if subscribe:
            attributes["custom_source"] = "shoprelay"
            if historical:
                attributes["historical_import"] = True
        job = "profile-subscription-bulk-create-job" if subscribe else "profile-subscription-bulk-delete-job"
        data: dict[str, Any] = {"type": job, "attributes": attributes}
        if self.settings.get("list_id"):
            data["relationships"] = {"list": {"data": {"type": "list", "id": str(self.settings["list_id"])}}}
        return {"data": data}

    def _catalog_requests(self, events: list[OutboundEvent],
                          skipped: dict[int, str]) -> list[PreparedRequest]:
        """Catalog API jobs of ≤ 100 items; payload "change" == "updated" selects the update job."""
        jobs: dict[str, list[tuple[dict[str, Any], list[int]]]] = {"create": [], "update": [], "delete": []}
        for event, ids in collapse_latest(events, lambda e: str(e.payload["product"]["external_id"])):
            product = event.payload["product"]
            if event.name == "product_delete":
                jobs["delete"].append(({"type": "catalog-item", "id": catalog_item_id(product)}, ids))
            elif not product.get("link") or not product.get("title"):
                for event_id in ids:
                    skipped[event_id] = "a Klaviyo catalog item needs a title and a product URL"
            elif event.payload.get("change") == "updated":
                jobs["update"].append(({"type": "catalog-item", "id": catalog_item_id(product),
                                        "attributes": catalog_attributes(product)}, ids))
            else:
                attributes = {"external_id": str(product["external_id"]), "integration_type": "$custom",
                              "catalog_type": "$default", **catalog_attributes(product)}
                jobs["create"].append(({"type": "catalog-item", "attributes": attributes}, ids))
        requests = []
        for job, entries in jobs.items():
            for chunk in chunked(entries, CATALOG_ITEMS_PER_JOB):
                body = {"data": {"type": f"catalog-item-bulk-{job}-job",
                                 "attributes": {"items": {"data": [item for item, _ in chunk]}}}}
                ids = [event_id for _, chain in chunk for event_id in chain]
                requests.append(self._request("POST", f"/api/catalog-item-bulk-{job}-jobs", ids, body))
        return requests

    def classify(self, status: int | None, headers: dict[str, str], body: bytes,
                 error: str | None = None) -> Classification:
        return classify_with_platform_message(status, headers, body, error)  # JSON:API errors[].detail

    def test_request(self) -> PreparedRequest:
        return self._request("GET", "/api/accounts", [])

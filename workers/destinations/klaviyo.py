"""Klaviyo: current JSON:API Events API (single and bulk), profile import, subscriptions, Catalog API jobs.

Property names follow Klaviyo's "integrate a custom ecommerce platform" guide so its built-in
flows, CLV and product blocks work unchanged. Fulfilled/Cancelled/Refunded Order reuse the order
id as unique_id, like Placed Order, which is what Klaviyo's CLV needs to net them off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

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
)
from workers.destinations.klaviyo_catalog import back_in_stock_body
from workers.destinations.klaviyo_consent import (
    consent_of,
    consent_person,
    consent_problem,
    deletion_body,
    profile_entries,
)
from workers.destinations.klaviyo_payloads import (
    METRICS,
    NOT_TAKEN,
    event_attributes,
    identifiers,
    profile_attributes,
    profile_inputs,
)

REVISION = "2026-10-15"
BULK_EVENTS_PER_REQUEST = 1000
# Klaviyo refuses a bulk body over 5 MB; requests are cut below it (the body's size is counted exactly).
BULK_MAX_BYTES = 5_000_000
PROFILES_PER_SUBSCRIPTION_JOB = 1000


# A bulk body is assembled from pieces serialised once per event and once per profile (orjson), not built
# as nested dicts and serialised again: the size cap is then counted exactly, and the sending thread gets bytes.
_JOB_HEAD = b'{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":['
_JOB_TAIL = b"]}}}}"
_ENTRY_HEAD = b'{"type":"event-bulk-create","attributes":{"profile":{"data":{"type":"profile","attributes":'
_ENTRY_EVENTS = b'}},"events":{"data":['
_ENTRY_TAIL = {False: b"]}}}", True: b']},"backfill":true}}'}
_ENTRY_BYTES = len(_ENTRY_HEAD) + len(_ENTRY_EVENTS) + len(_ENTRY_TAIL[True]) + 1  # + the comma before it
_EVENT_HEAD = b'{"type":"event","attributes":'
# The request log keeps a shorter form of a bulk body (its first entries, still valid JSON).
LOGGED_BYTES = 32_000


def _entry(profile: bytes, events: list[bytes], backfill: bool) -> bytes:
    return _ENTRY_HEAD + profile + _ENTRY_EVENTS + b",".join(events) + _ENTRY_TAIL[backfill]


@dataclass
class _BulkRequest:
    """One bulk-create request being filled: serialised events per (serialised profile, backfill)."""

    entries: dict[tuple[bytes, bool], list[bytes]] = field(default_factory=dict)
    event_ids: list[int] = field(default_factory=list)
    size: int = len(_JOB_HEAD) + len(_JOB_TAIL)  # the body's bytes so far (at most a comma per entry over)

    def full(self) -> bool:
        return len(self.event_ids) >= BULK_EVENTS_PER_REQUEST

    def fits(self, size: int) -> bool:
        """Room for `size` more bytes; an empty request takes any event, however large."""
        return not self.event_ids or self.size + size <= BULK_MAX_BYTES

    def add(self, event_id: int, entry_key: tuple[bytes, bool], item: bytes) -> None:
        if entry_key not in self.entries:
            self.entries[entry_key] = []
            self.size += len(entry_key[0]) + _ENTRY_BYTES
        self.entries[entry_key].append(item)
        self.size += len(item) + 1
        self.event_ids.append(event_id)

    def body(self, limit: int | None = None) -> bytes:
        """The JSON body. With a `limit`, only the leading entries and events that fit in about that many
        bytes (at least one event): a shorter body that is still valid JSON, for the request log."""
        room = float("inf") if limit is None else limit - len(_JOB_HEAD) - len(_JOB_TAIL)
        data = []
        for (profile, backfill), events in self.entries.items():
            room -= len(profile) + _ENTRY_BYTES
            kept = []
            for item in events:
                room -= len(item) + 1
                if room < 0 and (data or kept):
                    break
                kept.append(item)
            if kept:
                data.append(_entry(profile, kept, backfill))
            if room < 0:
                break
        return _JOB_HEAD + b",".join(data) + _JOB_TAIL


@dataclass(frozen=True, slots=True)
class _Profile:
    """An event's profile as the requests need it, built once per distinct contact and address."""

    attributes: dict[str, Any]
    who: list[str]  # the identifiers Klaviyo may merge it by (an event needs one)
    json: bytes     # serialised once: the bulk entry's key and its body piece


def _profiles(events: list[OutboundEvent]) -> dict[int, _Profile]:
    """Each event's profile. The events of one order (and a repeat customer's orders) share contact and
    address, and building a profile was a quarter of building a batch, so equal inputs (compared as JSON:
    exact, and only those) share one profile."""
    built: dict[bytes, _Profile] = {}
    profiles = {}
    for event in events:
        inputs = profile_inputs(event)
        key = orjson.dumps(inputs, default=str)
        profile = built.get(key)
        if profile is None:
            attributes = profile_attributes(*inputs)
            profile = built[key] = _Profile(attributes, identifiers(attributes), orjson.dumps(attributes))
        profiles[event.id] = profile
    return profiles


@register
class KlaviyoAdapter(DestinationAdapter):
    kind = "klaviyo"
    label = "Klaviyo"
    default_base_url = "https://a.klaviyo.com"
    # Catalog data goes through the reconcile of its Catalog API (workers/catalogs), not through events.
    supported_events = frozenset(METRICS) | {"profile_upsert", "consent_change", "back_in_stock_subscription",
                                             "contact_erased"}
    credential_fields = ("api_key",)
    default_rate_limits = {"burst_per_second": 350, "per_minute": 3500}
    bulk_rate_limits: ClassVar[dict[str, float]] = {"burst_per_second": 10, "per_minute": 150}
    max_events_per_request = BULK_EVENTS_PER_REQUEST

    def _request(self, method: str, path: str, event_ids: list[int], body: Any = None,
                 content: bytes | None = None, logged: bytes | None = None) -> PreparedRequest:
        headers = {"Authorization": f"Klaviyo-API-Key {self.credentials['api_key']}", "revision": REVISION,
                   "Accept": "application/vnd.api+json"}
        if body is not None or content is not None:
            headers["Content-Type"] = "application/vnd.api+json"
        return PreparedRequest(method, f"{self.base_url}{path}", event_ids, json=body, headers=headers,
                               content=content, logged=logged)

    def catalog_request(self, method: str, path: str, content: bytes | None = None) -> PreparedRequest:
        """A Catalog API call (reconcile jobs, job status, listings). A listing's next-page link is followed only
        on this destination's own host: its path and query go to `base_url`."""
        if path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            base = urlsplit(self.base_url)
            if base.path and path.startswith(base.path):
                path = path[len(base.path.rstrip("/")):]
        request = self._request(method, path, [], content=content)
        if content is None:
            request.headers.pop("Content-Type", None)
        return request

    def build_requests(self, events: list[OutboundEvent], *, bulk: bool = False) -> BuildResult:
        result = BuildResult(requests=[])
        metric_events, consents = [], []
        profiles = _profiles([event for event in events if event.name in METRICS])
        for event in events:
            if event.name in METRICS:
                if profiles[event.id].who:
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
            elif event.name == "contact_erased":
                body = deletion_body(event.payload["erasure"])
                if body is None:
                    result.skipped[event.id] = "no email or E.164 phone to name the profile to delete"
                else:
                    result.requests.append(self._request("POST", "/api/data-privacy-deletion-jobs", [event.id],
                                                         body))
            elif event.name == "back_in_stock_subscription":
                result.requests.append(self._request("POST", "/api/back-in-stock-subscriptions", [event.id],
                                                     back_in_stock_body(event.payload["subscription"])))
            else:
                result.skipped[event.id] = NOT_TAKEN.get(event.name, f"Klaviyo does not take {event.name}")
        if bulk:
            result.requests += self._bulk_event_requests(metric_events, profiles)
        else:
            for event in metric_events:
                attributes = event_attributes(event)
                attributes["profile"] = {"data": {"type": "profile", "attributes": profiles[event.id].attributes}}
                body = {"data": {"type": "event", "attributes": attributes}}
                result.requests.append(self._request("POST", "/api/events", [event.id], body))
        result.requests += self._consent_requests(consents, result.skipped)
        return result

    def _bulk_event_requests(self, events: list[OutboundEvent],
                             profiles: dict[int, _Profile]) -> list[PreparedRequest]:
        """Requests of ≤ 1000 events and ≤ 5 MB grouped per profile. A repeat of (profile, metric, unique_id)
        waits for a later request, because Klaviyo fails the whole bulk job on such a repeat.

        Each event goes to the first request with room that does not hold its keys yet; `holders` maps a key
        to the requests holding it, so that is a dict look-up, not a scan of every open request.
        """
        batches: list[_BulkRequest] = []
        holders: dict[tuple[str, str, str], set[int]] = {}
        first_open = 0  # requests fill in order: all before this one are full
        for event in events:
            profile = profiles[event.id]
            keys = [(name, METRICS[event.name], event.unique_id) for name in profile.who]
            held = [holders[key] for key in keys if key in holders]
            taken = set().union(*held) if held else ()
            entry_key = (profile.json, event.historical)  # equal profiles serialise equally
            item = _EVENT_HEAD + orjson.dumps(event_attributes(event)) + b"}"
            while first_open < len(batches) and batches[first_open].full():
                first_open += 1
            index = first_open
            while index < len(batches):
                candidate = batches[index]
                size = len(item) + 1 + (0 if entry_key in candidate.entries else len(entry_key[0]) + _ENTRY_BYTES)
                if index not in taken and not candidate.full() and candidate.fits(size):
                    break
                index += 1
            if index == len(batches):
                batches.append(_BulkRequest())
            batches[index].add(event.id, entry_key, item)
            for key in keys:
                holders.setdefault(key, set()).add(index)
        return [self._request("POST", "/api/event-bulk-create-jobs", batch.event_ids, content=batch.body(),
                              logged=batch.body(LOGGED_BYTES))
                for batch in batches]

    def _consent_requests(self, events: list[OutboundEvent],
                          skipped: dict[int, str]) -> list[PreparedRequest]:
        """Marketing consent as subscribe / unsubscribe bulk jobs: the latest change per person and channel
        wins, and one person's channels that move the same way share one profile entry (email + SMS)."""
        usable = []
        for event in events:
            why = consent_problem(event)
            if why:
                skipped[event.id] = why
            else:
                usable.append(event)
        latest = collapse_latest(usable, lambda e: (consent_person(e), consent_of(e).channel))
        requests = []
        for subscribe, historical, job in ((True, False, "create"), (True, True, "create"),
                                           (False, False, "delete")):
            wanted = [pair for pair in latest if consent_of(pair[0]).subscribed is subscribe
                      and (not subscribe or pair[0].historical is historical)]
            entries = profile_entries(wanted, historical=historical)
            for chunk in chunked(entries, PROFILES_PER_SUBSCRIPTION_JOB):
                ids = [event_id for _, chain in chunk for event_id in chain]
                body = self._subscription_body([profile for profile, _ in chunk], subscribe=subscribe,
                                               historical=historical)
                requests.append(self._request("POST", f"/api/profile-subscription-bulk-{job}-jobs", ids, body))
        return requests

    def _subscription_body(self, profiles: list[dict[str, Any]], *, subscribe: bool,
                           historical: bool) -> dict[str, Any]:
        attributes: dict[str, Any] = {"profiles": {"data": profiles}}
        if subscribe:
            attributes["custom_source"] = "shoprelay"
            if historical:  # consent given in the past: no double opt-in, no "added to list" flows
                attributes["historical_import"] = True
        job = "profile-subscription-bulk-create-job" if subscribe else "profile-subscription-bulk-delete-job"
        data: dict[str, Any] = {"type": job, "attributes": attributes}
        if self.settings.get("list_id"):
            data["relationships"] = {"list": {"data": {"type": "list", "id": str(self.settings["list_id"])}}}
        return {"data": data}

    def classify(self, status: int | None, headers: dict[str, str], body: bytes,
                 error: str | None = None) -> Classification:
        return classify_with_platform_message(status, headers, body, error)  # JSON:API errors[].detail

    def test_request(self) -> PreparedRequest:
        return self._request("GET", "/api/accounts", [])

"""What the fake platforms remember, and the questions tests ask about it.

One lock guards everything (requests, stores, faults): requests are short, so one
lock is cheaper than several and rules out ordering bugs.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

from tests.fakeplatform.records import KlaviyoEvent, PendingJob, Recorded, UpsertedOrder


class PlatformState:
    """Recorded requests and the accepted data of every fake platform."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.internal_errors: list[str] = []  # tracebacks of bugs in the fake itself
        # Klaviyo
        self.klaviyo_events: list[KlaviyoEvent] = []
        self.klaviyo_duplicates = 0
        self._klaviyo_keys: set[tuple[tuple[str, str], str, str]] = set()
        self.klaviyo_profiles: dict[tuple[str, str], dict[str, Any]] = {}
        self.klaviyo_subscriptions: list[dict[str, Any]] = []
        self.klaviyo_deletions: list[dict[str, str]] = []  # data-privacy deletion jobs: {"email"|"phone_number"}
        # catalog records by compound id `$custom:::$default:::<external_id>`:
        # items {"attributes", "categories": [category ids], "created", "updated"},
        # variants {"attributes", "item": item id, "created", "updated"}, categories {"attributes", "created", "updated"}
        self.klaviyo_catalog: dict[str, dict[str, Any]] = {}
        self.klaviyo_variants: dict[str, dict[str, Any]] = {}
        self.klaviyo_categories: dict[str, dict[str, Any]] = {}
        self.klaviyo_bis: list[dict[str, Any]] = []  # back in stock: {"profile", "channels", "variant"}
        self.klaviyo_jobs: list[dict[str, Any]] = []
        self.klaviyo_pending_jobs: dict[str, PendingJob] = {}  # catalog jobs still "processing", by job id
        self.klaviyo_max_jobs_in_flight = 0  # most catalog jobs in progress at once (each counted at its POST)
        self.klaviyo_job_polls = 0  # setting: GETs of a catalog job that answer "processing" before it completes
        self.klaviyo_window: dict[str, tuple[int, int]] = {}  # path → (second, requests) for RateLimit-*
        # Sendlane
        self.sendlane_orders: dict[str, UpsertedOrder] = {}
        self.sendlane_tracked: dict[str, list[dict[str, Any]]] = {}
        # eSputnik
        self.esputnik_orders: dict[str, UpsertedOrder] = {}
        self.esputnik_contacts: dict[str, dict[str, Any]] = {}  # "<channel type>:<value>" -> the contact sent
        self.esputnik_unsubscribed: list[str] = []
        # webhook
        self.webhook_deliveries: dict[str, Any] = {}
        self.webhook_duplicates = 0

    def clear_state(self) -> None:
        """Forget everything received (in place, so references tests hold stay live)."""
        with self.lock:
            for container in (
                self.requests, self.internal_errors, self.klaviyo_events, self._klaviyo_keys,
                self.klaviyo_profiles, self.klaviyo_subscriptions, self.klaviyo_deletions, self.klaviyo_catalog, self.klaviyo_variants,
                self.klaviyo_categories, self.klaviyo_bis, self.klaviyo_jobs, self.klaviyo_pending_jobs,
                self.klaviyo_window,
                self.sendlane_orders, self.sendlane_tracked, self.esputnik_orders, self.esputnik_contacts,
                self.esputnik_unsubscribed, self.webhook_deliveries,
            ):
                container.clear()
            self.klaviyo_duplicates = 0
            self.klaviyo_max_jobs_in_flight = 0
            self.webhook_duplicates = 0

    # --- Klaviyo catalog controls ----------------------------------------------------------------

    def set_klaviyo_job_polls(self, polls: int) -> None:
        """Catalog jobs posted from now on answer "processing" to that many GETs, then complete (0: at once)."""
        if isinstance(polls, bool) or not isinstance(polls, int) or polls < 0:
            raise ValueError(f"polls must be an integer >= 0, not {polls!r}")
        with self.lock:
            self.klaviyo_job_polls = polls

    def forget_klaviyo_catalog_id(self, catalog_id: str) -> str | None:
        """Drop one item, variant or category without a job, as if Klaviyo lost it: a lost item takes its
        variants with it, a lost category leaves its items. Items are looked up first (an item and its
        only variant often share an id).

        Returns which store held it ("item", "variant", "category"), None when none did.
        """
        with self.lock:
            if self.klaviyo_catalog.pop(catalog_id, None) is not None:
                for variant_id in [v for v, variant in self.klaviyo_variants.items() if variant["item"] == catalog_id]:
                    del self.klaviyo_variants[variant_id]
                return "item"
            if self.klaviyo_variants.pop(catalog_id, None) is not None:
                return "variant"
            if self.klaviyo_categories.pop(catalog_id, None) is not None:
                for item in self.klaviyo_catalog.values():
                    if catalog_id in item["categories"]:
                        item["categories"].remove(catalog_id)
                return "category"
        return None

    # --- stores, called by the platform handlers with the lock held ---------------------------

    def keep_klaviyo_event(self, event: KlaviyoEvent) -> bool:
        """Keep the first event per (profile, metric, unique_id), as Klaviyo does; count the rest."""
        key = (event.identity, event.metric, event.unique_id)
        if key in self._klaviyo_keys:
            self.klaviyo_duplicates += 1
            return False
        self._klaviyo_keys.add(key)
        self.klaviyo_events.append(event)
        return True

    def forget_klaviyo_person(self, name: str, value: str) -> None:
        """A privacy deletion: the profile, its events and its subscriptions, by email or phone_number."""
        def names_them(attributes: dict[str, Any]) -> bool:
            return attributes.get(name) == value

        for identity in [key for key, profile in self.klaviyo_profiles.items()
                         if key == (name, value) or names_them(profile.get("attributes") or {})]:
            del self.klaviyo_profiles[identity]
        self.klaviyo_events[:] = [event for event in self.klaviyo_events
                                  if event.identity != (name, value) and not names_them(event.profile)]
        self.klaviyo_subscriptions[:] = [record for record in self.klaviyo_subscriptions
                                         if not names_them(record["profile"])]

    @staticmethod
    def upsert_order(orders: dict[str, UpsertedOrder], order_id: str, state: dict[str, Any]) -> None:
        """Store the latest state of an order and append it to its history."""
        order = orders.get(order_id)
        if order is None:
            orders[order_id] = UpsertedOrder(latest=state, history=[state])
        else:
            order.latest = state
            order.history.append(state)

    # --- questions tests ask --------------------------------------------------------------------

    def klaviyo_events_named(self, metric: str) -> list[KlaviyoEvent]:
        with self.lock:
            return [event for event in self.klaviyo_events if event.metric == metric]

    def klaviyo_revenue(self, metric: str = "Placed Order") -> float:
        """Σ value of the kept events of a metric: what Klaviyo would attribute as revenue."""
        return sum(event.value or 0 for event in self.klaviyo_events_named(metric))

    def delivered_by_unique_id(self) -> Counter[tuple[str, str, str]]:
        """How often each (platform, event, unique id) was kept, across platforms: 1 is exactly once in
        effect, 2 is a double the platform could not absorb (a resend it de-duplicated is not kept again;
        `resent_count` counts those). Webhook deliveries are keyed by their body's event name and id."""
        with self.lock:
            kept: Counter[tuple[str, str, str]] = Counter(
                ("klaviyo", event.metric, event.unique_id) for event in self.klaviyo_events)
            for body in self.webhook_deliveries.values():
                if isinstance(body, dict):
                    kept["webhook", str(body.get("event")), str(body.get("id"))] += 1
        return kept

    def resent_count(self) -> int:
        """Re-sends the platforms recognised and absorbed (same unique id / delivery id again)."""
        with self.lock:
            return self.klaviyo_duplicates + self.webhook_duplicates

    def requests_for(self, platform: str | None = None, path: str | None = None) -> list[Recorded]:
        """Recorded requests, optionally only one platform's and/or one full path's."""
        with self.lock:
            return [
                r for r in self.requests
                if (platform is None or r.platform == platform) and (path is None or r.path == path)
            ]

    def requests_before(self, at: float, platform: str | None = None) -> list[Recorded]:
        """Requests that arrived before `at` (time.time() clock)."""
        return [r for r in self.requests_for(platform) if r.at < at]

    def requests_after(self, at: float, platform: str | None = None) -> list[Recorded]:
        """Requests that arrived at or after `at` (time.time() clock)."""
        return [r for r in self.requests_for(platform) if r.at >= at]

    def max_requests_in_window(self, platform: str | None, window_seconds: float, path: str | None = None) -> int:
        """The most requests that arrived within any window of that length (a sliding window)."""
        times = sorted(r.at for r in self.requests_for(platform, path))
        window: deque[float] = deque()
        best = 0
        for at in times:
            window.append(at)
            while at - window[0] >= window_seconds:
                window.popleft()
            best = max(best, len(window))
        return best

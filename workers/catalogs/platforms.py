"""How each platform takes a catalog, for the reconcile: which entries it holds, whether it works in bulk jobs
(polled to completion) or answers each call at once, whether it lists what it holds and takes removals, and
the rate-limit windows its catalog calls draw from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workers.destinations import klaviyo_catalog, sendlane_catalog
from workers.destinations.klaviyo_catalog import Entity


@dataclass(frozen=True)
class Window:
    """A rate-limit window a call takes a slot from: its key after the account's, and its limits. A share
    below 1 scales the limits (the account's delivery window, of which the catalog may take only part)."""

    suffix: str
    limits: dict[str, float] | None  # None: the destination's own delivery limits
    share: float = 1.0


@dataclass(frozen=True)
class CatalogPlatform:
    kinds: tuple[str, ...]  # ledger kinds in the order they are created (removed in reverse)
    jobs: bool  # bulk jobs polled until done (Klaviyo); else one call per entry, answered at once (Sendlane)
    reads_back: bool  # lists what it holds: a full reconcile aligns the ledger with it
    removes: bool  # takes deletions
    windows: dict[str, tuple[Window, ...]]  # per HTTP method, in the order slots are taken
    categories: Callable[[list[Entity], Callable[[str], str]], list[Entity]]
    # a plan page → the entries this platform holds for it (category names by id, a skip callback)
    entries: Callable[[list[Entity], dict[str, str], Callable[[str, str], None]], list[Entity]]
    request: Callable[[Entity], tuple[str, dict[str, Any]]] | None = None  # one call per entry (not jobs)


def _as_planned(planned: list[Entity], _category_id: Callable[[str], str]) -> list[Entity]:
    return planned


def _page_as_planned(page: list[Entity], _names: dict[str, str], _skip: Callable[[str, str], None]) -> list[Entity]:
    return page


KLAVIYO = CatalogPlatform(
    kinds=klaviyo_catalog.KINDS, jobs=True, reads_back=True, removes=True,
    windows={"POST": (Window("catalog", klaviyo_catalog.RATE_LIMITS),),
             "GET": (Window("catalog-read", klaviyo_catalog.READ_RATE_LIMITS),)},
    categories=_as_planned, entries=_page_as_planned)

SENDLANE = CatalogPlatform(
    kinds=sendlane_catalog.KINDS, jobs=False, reads_back=False, removes=False,
    # its own window at half the account's rate, then the account's window shared with order events
    windows={"POST": (Window("catalog", None, sendlane_catalog.SHARE_OF_ACCOUNT), Window("single", None))},
    categories=sendlane_catalog.categories, entries=sendlane_catalog.products, request=sendlane_catalog.request)

PLATFORMS = {"klaviyo": KLAVIYO, "sendlane": SENDLANE}

"""One reconcile: make the platform's catalog equal to shoprelay's, sending only the difference.

Klaviyo takes the catalog in bulk jobs, polled until done; Sendlane answers one call per entry at once and
neither lists nor removes anything (platforms.py says which platform does what).

Order matters to the platform: categories before the items that name them, items before their variants,
variants deleted before their items, items before the categories they name. Each page of products is
compared with the ledger; its changed items go out as jobs, and once those completed, its variants.
A refused update of an entry the platform lost becomes a create, a refused create of an entry it already
has becomes an update (once each), so the platform converges whatever it lost or kept. A full reconcile
(switching the catalog on, nightly) first reads the platform's own listing into the ledger, so what it
lost is created again and what it holds unasked is removed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from redis import Redis

from webapp.extensions import db
from webapp.models import CatalogReconcile, Destination, Product, utcnow
from webapp.services.platform_catalogs import back_in_stock, ledger
from webapp.services.platform_catalogs import plan as catalog_plan
from workers.catalogs.client import CatalogClient, CatalogRefused, CatalogUnavailable
from workers.catalogs.platforms import PLATFORMS
from workers.destinations.klaviyo_catalog import (
    JOBS_IN_FLIGHT,
    Entity,
    JobAnswer,
    job_bodies,
    job_path,
    list_path,
    parse_job,
    parse_list,
)

log = logging.getLogger(__name__)
POLL_WAIT = (0.2, 5.0)  # first and longest wait between polls of unfinished jobs (seconds)
POLLS_PER_ROUND = 10  # unfinished jobs asked about per round, oldest first
POLL_GIVE_UP = 30 * 60  # jobs still unfinished after this are left for the next run (their ledger marks)
FLIP = {"create": "update", "update": "create"}
# PostgreSQL plans the ledger's id look-ups from its statistics: a first reconcile of a big catalog would read
# every entry of a kind per job until they exist (there is no autovacuum on some servers).
ANALYZE_AFTER = 5000


@dataclass
class _Job:
    kind: str
    action: str
    path: str
    entities: list[Entity]
    flipped: bool  # already the second try of these entries
    answer: JobAnswer | None = None


@dataclass
class Counts:
    sent: dict[str, dict[str, int]] = field(default_factory=dict)  # action → kind → entries confirmed
    refused: int = 0
    jobs: int = 0

    def add(self, action: str, kind: str, count: int) -> None:
        per_kind = self.sent.setdefault(action, {})
        per_kind[kind] = per_kind.get(kind, 0) + count


class Reconciler:
    def __init__(self, run: CatalogReconcile, destination: Destination, client: CatalogClient) -> None:
        self.run, self.destination_id, self.client = run, destination.id, client
        self.platform = PLATFORMS[destination.kind]
        self.counts = Counts()
        self.in_flight: list[_Job] = []
        self.new_entries = 0

    # --- jobs ----------------------------------------------------------------------------------

    def send(self, kind: str, action: str, entities: list[Entity], *, flipped: bool = False) -> None:
        """Post the jobs for these entries (the ledger marks them first); wait when many are in flight."""
        if not self.platform.jobs:
            self.send_each(kind, action, entities)
            return
        for body, carried in job_bodies(kind, action, entities):
            self.new_entries += ledger.mark_sending(self.destination_id, kind, action, carried)
            if self.new_entries >= ANALYZE_AFTER:  # a growing ledger keeps its planner statistics fresh
                ledger.analyze()
                self.new_entries = 0
            result = self.client.call("POST", job_path(kind, action), body, entries=len(carried))
            answer = parse_job(result.body)
            if answer is None:
                raise CatalogUnavailable(f"the platform accepted a {kind} {action} job without saying its id")
            path = f"{job_path(kind, action)}/{answer.job_id}"
            ledger.mark_job(self.destination_id, kind, [entity.external_id for entity in carried], path)
            self.counts.jobs += 1
            self.in_flight.append(_Job(kind, action, path, carried, flipped, answer))
            if len(self.in_flight) >= JOBS_IN_FLIGHT:
                self.settle_all()

    def send_each(self, kind: str, action: str, entities: list[Entity]) -> None:
        """One call per entry, answered at once (Sendlane): an entry the platform refuses is recorded with why
        and the run goes on; refused credentials end it."""
        assert self.platform.request is not None
        for entity in entities:
            self.new_entries += ledger.mark_sending(self.destination_id, kind, action, [entity])
            path, body = self.platform.request(entity)
            try:
                self.client.call("POST", path, orjson.dumps(body), entries=1)
            except CatalogRefused as exc:
                if exc.credentials:
                    ledger.unmark(self.destination_id, kind, [entity.external_id])
                    raise
                ledger.settle(self.destination_id, kind, action, [], {entity.external_id: str(exc)})
                self.counts.refused += 1
                continue
            except CatalogUnavailable:
                ledger.forget_outcome(self.destination_id, kind, [entity.external_id], action)
                raise
            ledger.settle(self.destination_id, kind, action, [entity], {})
            self.counts.add(action, kind, 1)

    def settle_all(self) -> None:
        """Poll every job in flight until it finished, then record each outcome (flips go out again)."""
        wait, started = POLL_WAIT[0], time.monotonic()
        while True:
            progressed, unfinished = False, 0
            for job in self.in_flight:  # oldest first: the platform works through an account's jobs in order,
                if job.answer is not None and job.answer.done:  # so past a few unfinished ones, the later jobs
                    continue                                    # are unfinished too: no need to ask yet
                job.answer = parse_job(self.client.call("GET", job.path).body) or job.answer
                if job.answer is None or not job.answer.done:
                    unfinished += 1
                    if unfinished >= POLLS_PER_ROUND:
                        break
                else:
                    progressed = True
            if all(job.answer is not None and job.answer.done for job in self.in_flight):
                break
            if time.monotonic() - started > POLL_GIVE_UP:
                raise CatalogUnavailable("catalog jobs did not finish within 30 minutes; the next run reads them")
            self.client.sleep(wait)
            wait = POLL_WAIT[0] if progressed else min(POLL_WAIT[1], wait * 2)
        finished, self.in_flight = self.in_flight, []
        retries: dict[tuple[str, str], list[Entity]] = {}
        for job in finished:
            for (kind, action), entities in self._record(job).items():
                retries.setdefault((kind, action), []).extend(entities)
        for (kind, action), entities in retries.items():
            self.send(kind, action, entities, flipped=True)
        if retries:
            self.settle_all()

    def _record(self, job: _Job) -> dict[tuple[str, str], list[Entity]]:
        assert job.answer is not None
        failed = job.answer.failed
        whole = failed.get(-1)  # an error the job did not tie to an entry: each unplaced entry is unsure
        confirmed, refused, flips = [], {}, []
        for index, entity in enumerate(job.entities):
            why = failed.get(index)
            if why is None and whole is None:
                confirmed.append(entity)
            elif job.action == "delete":
                confirmed.append(entity)  # the platform does not have it: that is what was wanted
            elif not job.flipped and why is not None:
                flips.append(entity)
            else:
                refused[entity.external_id] = why or whole or "refused"
        ledger.settle(self.destination_id, job.kind, job.action, confirmed, refused)
        self.counts.add(job.action, job.kind, len(confirmed))
        self.counts.refused += len(refused)
        return {(job.kind, FLIP[job.action]): flips} if flips else {}

    # --- phases --------------------------------------------------------------------------------

    def resolve_left_behind(self) -> None:
        """Jobs a run that died left in flight: read their outcome, or mark their entries unknown."""
        for path, kind, action, ids in ledger.in_flight(self.destination_id):
            answer = None
            if path is not None:
                try:
                    answer = parse_job(self.client.call("GET", path).body)
                except CatalogRefused:  # expired or unknown job
                    answer = None
            if answer is not None and answer.done and not answer.failed:
                # settle() confirms what the ledger says was sent (its sent digest).
                ledger.settle(self.destination_id, kind, action, [Entity(kind, i, {}, {}) for i in ids], {})
            else:
                ledger.forget_outcome(self.destination_id, kind, ids, action)

    def align(self) -> None:
        """Read the platform's own listing of each kind into the ledger."""
        for kind in self.platform.kinds:
            self._phase(f"reading the platform's {kind} list")
            present: set[str] = set()
            path: str | None = list_path(kind)
            while path:
                ids, path = parse_list(self.client.call("GET", path).body)
                present.update(ids)
            changes = ledger.align_with_platform(self.destination_id, kind, present)
            self.run.counts = {**self.run.counts, f"{kind}_lost": changes["lost"],
                               f"{kind}_unknown": changes["unknown"]}
            db.session.commit()

    def changes(self, kind: str, entities: list[Entity]) -> None:
        """Send what differs from the ledger: creates for what the platform lacks, updates for the rest."""
        known = ledger.lookup(self.destination_id, kind, [entity.external_id for entity in entities])
        creates, updates = [], []
        for entity in entities:
            entry = known.get(entity.external_id)
            if entry is None or entry.confirmed_digest is None:
                creates.append(entity)
            elif entry.confirmed_digest != entity.digest:
                updates.append(entity)
        if creates:
            self.send(kind, "create", creates)
        if updates:
            self.send(kind, "update", updates)

    def removals(self, kind: str, wanted: catalog_plan.IdSet) -> None:
        """Delete what the platform holds and the catalog no longer has; forget refused entries no one wants.
        A platform that takes no removals keeps them: the ledger forgets them, the run counts them."""
        stale = [Entity(kind, external_id, {}, {}, product_key=key)
                 for page in ledger.held(self.destination_id, kind) for external_id, key in page
                 if external_id not in wanted]
        if stale and not self.platform.removes:
            ledger.drop(self.destination_id, kind, [entity.external_id for entity in stale], confirmed=True)
            kept = self.run.counts.get("kept_at_platform", {})
            self.run.counts = {**self.run.counts, "kept_at_platform": {**kept, kind: len(stale)}}
        elif stale:
            self.send(kind, "delete", stale)
            self.settle_all()
        unwanted = [external_id for page in ledger.held(self.destination_id, kind, confirmed=False)
                    for external_id, _ in page if external_id not in wanted]
        ledger.drop(self.destination_id, kind, unwanted)

    def _phase(self, name: str) -> None:
        self.run.phase = name
        db.session.commit()

    def execute(self) -> None:
        self._phase("reading jobs left in flight")
        self.resolve_left_behind()
        if self.run.full and self.platform.reads_back:
            self.align()
        elif self.run.full:  # nothing to read back: send everything again
            ledger.unconfirm(self.destination_id)
        self._phase("categories")
        planned = catalog_plan.categories()
        names = {entity.external_id: str(entity.attributes["name"]) for entity in planned}
        categories = self.platform.categories(planned, catalog_plan.category_id)
        self.changes("category", categories)
        self.settle_all()
        # What the platform should hold, for the removals at the end: ids as compact hashes (8 bytes each).
        wanted = {"category": catalog_plan.IdSet(entity.external_id for entity in categories),
                  "item": catalog_plan.IdSet(), "variant": catalog_plan.IdSet()}
        self.run.total = db.session.scalar(sa.select(sa.func.count()).select_from(Product)) or 0
        self._phase("items and variants" if "variant" in self.platform.kinds else "products")
        skips = catalog_plan.Skips()
        done = 0
        for page in catalog_plan.groups(skips, wanted["variant"]):
            done += sum(1 for entity in page if entity.kind == "variant")
            page = self.platform.entries(page, names, skips.add)
            items = [entity for entity in page if entity.kind == "item"]
            variants = [entity for entity in page if entity.kind == "variant"]
            self.changes("item", items)
            self.settle_all()  # variants name their item: it must exist first
            if variants:
                self.changes("variant", variants)
            wanted["item"].update(entity.external_id for entity in items)
            self.run.done = min(self.run.total, done + sum(skips.counts.values()))
            db.session.commit()
        self.settle_all()
        for kind in reversed(self.platform.kinds):
            self._phase(f"removing {kind} entries")
            self.removals(kind, wanted[kind])
        self.run.counts = {**self.run.counts, "back_in_stock_released": back_in_stock.release_waiting(
            self.destination_id)}
        self.run.counts = {**self.run.counts, "sent": self.counts.sent, "refused": self.counts.refused,
                           "jobs": self.counts.jobs, "skipped": skips.counts, "skipped_examples": skips.examples}
        self.run.done = self.run.total or 0


def run_reconcile(run_id: int, redis: Redis | None) -> CatalogReconcile | None:
    """Run one queued (or interrupted) reconcile to its end; a failure says why and keeps the ledger true."""
    run = db.session.get(CatalogReconcile, run_id)
    if run is None or run.status not in ("queued", "running"):
        return run
    destination = db.session.get(Destination, run.destination_id)
    if destination is None or destination.catalog != "api":
        run.status, run.error, run.finished_at = "failed", "the destination's catalog is off", utcnow()
        db.session.commit()
        return run
    run.status, run.started_at, run.error = "running", run.started_at or utcnow(), None
    db.session.commit()
    reconciler = Reconciler(run, destination, CatalogClient(destination, redis))
    try:
        reconciler.execute()
        run.status = "succeeded"
    except (CatalogRefused, CatalogUnavailable, ValueError) as exc:
        db.session.rollback()
        run.status, run.error = "failed", str(exc)[:2000]
        log.warning("catalog reconcile %s of destination %s failed: %s", run.id, run.destination_id, exc)
    except Exception as exc:  # a defect: say so on the run instead of being handed over forever
        db.session.rollback()
        run.status, run.error = "failed", f"internal error: {type(exc).__name__}: {exc}"[:2000]
        log.exception("catalog reconcile %s of destination %s failed", run.id, run.destination_id)
    run.finished_at, run.phase = utcnow(), None
    db.session.commit()
    return run

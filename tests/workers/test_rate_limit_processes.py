"""Issue 14's failure with real worker processes: the platform answers 429 with Retry-After while orders keep
arriving and two workers run. Before the account-wide pause, only the events one run had claimed waited:
new events and the other worker sent at once (24 requests before a 5 s Retry-After expired)."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from tests.processes import stop_process
from tests.workers.test_delivery_processes import _failed_jobs, _states, _worker_process
from webapp.models import Event

pytestmark = [pytest.mark.slow, both_databases]

# (Retry-After, sent) of the platform's throttles, one after the other: 5 s, three shorter, one bare 429.
THROTTLES = ((5, True), (3, True), (2, True), (1, True), (2, False))


def test_no_request_before_retry_after_with_two_workers_and_orders_arriving(app, api, db, fake, make_destination,
                                                                             redis):
    from workers.delivery.sweeper import sweep

    make_destination("klaviyo", events=["placed_order", "ordered_product"])
    workers = [_worker_process(app) for _ in range(2)]
    posted, armed, started = 0, 0, time.monotonic()
    try:
        fake.rate_limit_next(1, retry_after=THROTTLES[0][0], platform="klaviyo", header=THROTTLES[0][1])
        armed = 1
        while time.monotonic() - started < 60 and (armed < len(THROTTLES) or _throttled(fake) < armed
                                                  or time.monotonic() - started < 20):
            # ~2 orders a second, each a Placed Order and two Ordered Product events
            response = api.post("/api/v1/orders", json=make_order(id=f"o{posted}"))
            assert response.status_code == 202
            posted += 1
            if armed < len(THROTTLES) and _recovered_from(fake, armed):
                retry_after, header = THROTTLES[armed]
                fake.rate_limit_next(1, retry_after=retry_after, platform="klaviyo", header=header)
                armed += 1
            time.sleep(0.5)
        assert armed == len(THROTTLES) and _throttled(fake) == len(THROTTLES), fake.requests_for("klaviyo")
        # Orders stop; the cron's sweeper brings the retries of the throttled events when they are due.
        deadline = time.monotonic() + 90
        while _states(db).get("delivered", 0) < 3 * posted and time.monotonic() < deadline:
            sweep(redis)
            time.sleep(1.0)
    finally:
        for process in workers:  # both stop at once: SIGTERM to each, then each waited for (killed after 30 s)
            process.send_signal(signal.SIGTERM)
        for process in workers:
            stop_process(process, grace=30)
    # A request another worker sent between the 429 leaving the platform and the pause reaching Redis (a
    # millisecond, tens of them on a loaded machine) is in flight, not early: it left before anyone could know.
    early = fake.early_requests(grace=0.25)
    assert early == [], _explain(fake, early)
    assert _states(db) == {"delivered": 3 * posted}, (_states(db), _failed_jobs())
    kept = Counter((event.metric, event.unique_id) for event in fake.klaviyo_events)
    expected = db.session.execute(sa.select(Event.unique_id)).scalars().all()
    assert len(kept) == len(expected) == 3 * posted and set(kept.values()) == {1}
    assert fake.klaviyo_duplicates == 0


def _throttled(fake) -> int:  # noqa: ANN001
    return sum(1 for r in fake.requests_for("klaviyo") if r.status == 429)


def _recovered_from(fake, throttles: int) -> bool:  # noqa: ANN001
    """The platform's last throttle was answered, and a request went through after it."""
    requests = fake.requests_for("klaviyo")
    answered = [index for index, r in enumerate(requests) if r.status == 429]
    return len(answered) >= throttles and any(200 <= r.status < 300 for r in requests[answered[-1] + 1:])


def _explain(fake, early) -> list[str]:  # noqa: ANN001
    throttles = [r for r in fake.requests_for("klaviyo") if r.status in (429, 503)]
    lines = [f"429 at {t.answered_at:.3f} retry_after {t.retry_after}" for t in throttles]
    for r in early:
        last = max((t for t in throttles if t.answered_at < r.at), key=lambda t: t.answered_at)
        lines.append(f"early {r.path} {r.status} {r.at - last.answered_at:+.3f}s after the 429")
    return lines

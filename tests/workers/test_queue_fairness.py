"""A worker on every queue takes delivery first, but not twice in a row while other work waits: a destination
with a lasting backlog (its jobs queue their own follow-ups) cannot keep syncs, builds, erasures and imports
queued for as long as it lasts."""

from __future__ import annotations

from workers.queue import enqueue

RAN = "test:fairness:ran"


def record(name: str) -> None:
    """A job that notes it ran (in the worker's Redis)."""
    from webapp.extensions import get_redis

    get_redis().rpush(RAN, name)


def _ran(redis) -> list[str]:  # noqa: ANN001
    return [item.decode() for item in redis.lrange(RAN, 0, -1)]


def test_other_queues_get_a_turn_between_delivery_jobs(app, redis, worker) -> None:  # noqa: ANN001
    redis.delete(RAN)
    for number in range(4):
        enqueue(redis, "delivery", f"{__name__}.record", f"delivery-{number}")
    enqueue(redis, "alerts", f"{__name__}.record", "alert")
    enqueue(redis, "default", f"{__name__}.record", "erasure")
    enqueue(redis, "sync", f"{__name__}.record", "sync")
    worker()
    # Priority order alone ran the four deliveries before anything else; alerts still wait for deliveries.
    assert _ran(redis) == ["delivery-0", "sync", "delivery-1", "erasure", "delivery-2", "delivery-3", "alert"]


def test_delivery_still_comes_first_after_other_work(app, redis, worker) -> None:  # noqa: ANN001
    redis.delete(RAN)
    for name in ("sync-a", "sync-b"):
        enqueue(redis, "sync", f"{__name__}.record", name)
    enqueue(redis, "feeds", f"{__name__}.record", "build")
    enqueue(redis, "delivery", f"{__name__}.record", "delivery")
    worker()
    assert _ran(redis) == ["delivery", "sync-a", "sync-b", "build"]

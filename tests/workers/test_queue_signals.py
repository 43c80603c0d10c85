"""signal_many: one pipeline of SET NX for every key, a job only for keys that had none waiting."""

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue

from tests.conftest import REDIS_URL
from workers import queue as q


def test_signal_many_enqueues_once_per_waiting_key(redis):
    jobs = [(q.deliver_signal_key(1), (1,)), (q.deliver_signal_key(2), (2,))]
    assert q.signal_many(redis, "delivery", q.JOB_DELIVER, jobs) == ["deliver:1", "deliver:2"]
    assert sorted(job.args for job in Queue("delivery", connection=redis).jobs) == [(1,), (2,)]
    # Both already waiting: nothing new; a third key gets its own job.
    jobs.append((q.deliver_signal_key(3), (3,)))
    assert q.signal_many(redis, "delivery", q.JOB_DELIVER, jobs) == ["deliver:3"]
    assert Queue("delivery", connection=redis).count == 3
    # Cleared by the job when it starts: the next signal enqueues again, as with `signal`.
    q.clear_signal(redis, "deliver:1")
    assert q.signal_many(redis, "delivery", q.JOB_DELIVER, jobs) == ["deliver:1"]


def test_signal_many_agrees_with_signal(redis):
    assert q.signal(redis, "delivery", q.JOB_DELIVER, "deliver:5", 5)
    assert q.signal_many(redis, "delivery", q.JOB_DELIVER, [("deliver:5", (5,)), ("deliver:6", (6,))]) == ["deliver:6"]
    assert not q.signal(redis, "delivery", q.JOB_DELIVER, "deliver:6", 6)


def test_failed_enqueue_frees_the_keys_without_a_job(redis, monkeypatch):
    calls = []

    def enqueue(connection, queue, func, *args, **options):  # noqa: ANN001, ANN202
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("enqueue failed")

    monkeypatch.setattr(q, "enqueue", enqueue)
    with pytest.raises(RuntimeError):
        q.signal_many(redis, "delivery", q.JOB_DELIVER, [("deliver:1", (1,)), ("deliver:2", (2,)), ("deliver:3", (3,))])
    assert redis.exists("shoprelay:signal:deliver:1")  # its job went in
    assert not redis.exists("shoprelay:signal:deliver:2") and not redis.exists("shoprelay:signal:deliver:3")


def test_safe_signal_many_survives_redis_down(monkeypatch):
    def down(url):  # noqa: ANN001, ANN202
        raise RedisConnectionError("down")

    monkeypatch.setattr(q, "connect", down)
    assert q.safe_signal_many(REDIS_URL, "delivery", q.JOB_DELIVER, [("deliver:1", (1,))]) == []
    assert q.safe_signal_many(None, "delivery", q.JOB_DELIVER, [("deliver:1", (1,))]) == []
    assert q.safe_signal_many(REDIS_URL, "delivery", q.JOB_DELIVER, []) == []


def test_a_signal_whose_job_was_lost_is_replaced(redis):
    """A worker killed after taking the job off the queue and before the job cleared its key (kill -9 while
    it imported the job's modules) left the key set and no job: every signal, the sweeper's too, was swallowed
    until the key expired ten minutes later, and the destination's events waited that long (tests/reliability,
    scenario 1). The key names its job, so `signal` sees the job is no longer waiting and queues another."""
    delivery = Queue("delivery", connection=redis)
    assert q.signal(redis, "delivery", q.JOB_DELIVER, "deliver:7", 7)
    taken = delivery.pop_job_id()  # what a worker does first; then it is killed
    assert taken is not None and delivery.count == 0
    assert not q.signal_many(redis, "delivery", q.JOB_DELIVER, [("deliver:7", (7,))])  # ingest: one round trip
    assert q.signal(redis, "delivery", q.JOB_DELIVER, "deliver:7", 7)  # the sweeper's signal repairs it
    assert [job.args for job in delivery.jobs] == [(7,)]
    assert not q.signal(redis, "delivery", q.JOB_DELIVER, "deliver:7", 7)  # a waiting job is enough again
    assert delivery.count == 1

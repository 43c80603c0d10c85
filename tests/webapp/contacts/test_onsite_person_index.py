"""The onsite person index: the collector names each identified browser under its person (by keyed digest), so
an erasure reads only that person's browsers, not every browser remembered; until the one-time backfill has
indexed the browsers remembered before, the erasure scans as it did. Real Redis; what Redis ran is read with
MONITOR filtered to the test's own database (INFO commandstats counts the whole server's, other runs included)."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from webapp.models import utcnow
from webapp.services.contacts.erasure_outside import forget_onsite
from webapp.services.onsite import person_index
from webapp.services.orders.onsite import ANON_TTL

EMAIL = "ann.person@example.org"
CUSTOMER = "cust-ann-77"
OTHERS = 20_000
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def _collect(client: FlaskClient, anonymous_id: str, **body: object) -> dict:
    response = client.post("/t/collect", data=json.dumps({"anonymous_id": anonymous_id} | body),
                           content_type="text/plain", headers={"Origin": "https://shop.example", "User-Agent": BROWSER})
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def _key(anonymous_id: str) -> bytes:
    return person_index.browser_key(anonymous_id)


def _members(redis: Redis, email: str | None = None, customer_id: str | None = None) -> set[str]:
    names = person_index.person_sets(email, [customer_id])
    assert len(names) == 1
    return {member.decode() for member in redis.smembers(names[0])}


def _browser(pipe, anonymous_id: str, email: str = "", customer_id: str = "", identified_at: float | None = None,
             ttl: int = ANON_TTL, indexed: bool = True) -> None:  # noqa: ANN001
    """A remembered browser as the collector leaves it (without identified_at: as one stored before it did)."""
    fields = {"email": email, "customer_id": customer_id}
    if identified_at is not None:
        fields["identified_at"] = f"{identified_at:.3f}"
    pipe.hset(_key(anonymous_id), mapping=fields)
    pipe.expire(_key(anonymous_id), ttl)
    if indexed:
        person_index.queue_add(pipe, anonymous_id, email, customer_id, ANON_TTL)


def _others(redis: Redis, count: int, indexed: bool = True) -> None:
    pipe = redis.pipeline(transaction=False)
    for number in range(count):
        _browser(pipe, f"other-{number}", email=f"shopper{number}@example.com", customer_id=f"c-{number}",
                 identified_at=time.time() - 7200, indexed=indexed)
        if number % 2000 == 1999:
            pipe.execute()
    pipe.execute()


@contextmanager
def _commands(redis: Redis) -> Iterator[list[str]]:
    """The commands Redis runs on the test's database while the block runs (MONITOR, up to a sentinel)."""
    seen: list[str] = []
    database = redis.connection_pool.connection_kwargs.get("db", 0)
    sentinel = f"end-{uuid.uuid4().hex}"
    monitor = redis.monitor()
    monitor.__enter__()

    def listen() -> None:
        while True:
            command = monitor.next_command()
            if sentinel in command["command"]:
                return
            if command["db"] == database:
                seen.append(command["command"])

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        yield seen
    finally:
        redis.echo(sentinel)
        listener.join(timeout=30)
        monitor.__exit__()
    assert not listener.is_alive(), "MONITOR never saw the sentinel"


def _named(commands: list[str], name: str) -> list[str]:
    return [command for command in commands if command.split(" ", 1)[0].lower() == name]


def _remaining(redis: Redis) -> set[str]:
    return {key.decode()[len("shoprelay:onsite:anon:"):] for key in redis.scan_iter(match="shoprelay:onsite:anon:*")
            if not key.decode().startswith("shoprelay:onsite:anon:other-")}


def test_identify_adds_the_browser_to_the_persons_sets_by_digest_only(app: Flask, client: FlaskClient,
                                                                      redis: Redis) -> None:
    assert _collect(client, "browser-1", event="identify", email="Ann.Person@Example.org ",
                    customer_id=CUSTOMER) == {"result": "identified"}
    assert _collect(client, "browser-2", event="identify", email=EMAIL) == {"result": "identified"}

    assert _members(redis, email=EMAIL) == {"browser-1", "browser-2"}
    assert _members(redis, customer_id=CUSTOMER) == {"browser-1"}
    for name in person_index.person_sets(EMAIL, [CUSTOMER]):
        assert ANON_TTL - 5 <= redis.ttl(name) <= ANON_TTL  # lives as long as the browsers it names
    names = [key.decode(errors="replace").lower() for key in redis.scan_iter(match="*")]
    assert any(name.startswith("shoprelay:onsite:person:email:") for name in names)
    assert not [name for name in names if "ann.person" in name or "example.org" in name or CUSTOMER in name]

    assert _collect(client, "browser-1", event="identify", email="bob@example.com") == {"result": "identified"}
    assert _members(redis, email="bob@example.com") == {"browser-1"}  # switched: named under both, its hash decides
    assert _members(redis, email=EMAIL) == {"browser-1", "browser-2"}


def test_a_kx_alone_never_makes_an_identified_browser_outlive_its_index_entry(app: Flask, client: FlaskClient,
                                                                              redis: Redis) -> None:
    _collect(client, "browser-1", event="identify", email=EMAIL)
    redis.expire(_key("browser-1"), 1000)  # identified long ago
    (email_set,) = person_index.person_sets(EMAIL, [])
    redis.expire(email_set, 1000)
    _collect(client, "browser-1", event="identify", kx="abc_DEF-123=")
    assert redis.hmget(_key("browser-1"), "kx", "email") == [b"abc_DEF-123=", EMAIL.encode()]
    assert redis.ttl(_key("browser-1")) <= 1000 <= redis.ttl(email_set) + 1
    _collect(client, "kx-only-browser", event="identify", kx="xyz")  # names nobody: remembered ANON_TTL from now
    assert ANON_TTL - 5 <= redis.ttl(_key("kx-only-browser")) <= ANON_TTL


def test_with_the_index_complete_forget_reads_only_the_persons_browsers(app: Flask, client: FlaskClient,
                                                                       redis: Redis) -> None:
    _others(redis, OTHERS)
    for browser in ("before-email", "after-request", "switched"):
        _collect(client, browser, event="identify", email=EMAIL)
    _collect(client, "before-customer", event="identify", customer_id=CUSTOMER)
    _collect(client, "switched", event="identify", email="someone.else@example.com")
    asked_at = utcnow()
    redis.hset(_key("before-email"), "identified_at", f"{asked_at.timestamp() - 3600:.3f}")
    redis.hset(_key("before-customer"), "identified_at", f"{asked_at.timestamp() - 60:.3f}")
    redis.hset(_key("after-request"), "identified_at", f"{asked_at.timestamp() + 1:.3f}")
    pipe = redis.pipeline(transaction=False)  # stored before identified_at existed, identified two hours ago
    _browser(pipe, "legacy", email=EMAIL, ttl=ANON_TTL - 7200)
    pipe.execute()
    redis.set(person_index.COMPLETE, person_index.fingerprint())

    with _commands(redis) as commands:
        forgotten = forget_onsite(EMAIL, {CUSTOMER}, asked_at=asked_at)

    assert forgotten == 3
    assert not _named(commands, "scan") and not _named(commands, "keys"), commands[:20]
    assert len(_named(commands, "hgetall")) <= 5, commands  # the person's candidates, none of the 20,000 others
    assert len(commands) < 40, commands
    assert _remaining(redis) == {"after-request", "switched"}  # identified after the request; now someone else's
    assert redis.hget(_key("switched"), "email") == b"someone.else@example.com"
    assert sum(1 for _ in redis.scan_iter(match="shoprelay:onsite:anon:other-*", count=1000)) == OTHERS
    assert _members(redis, email=EMAIL) == {"after-request", "switched"}
    assert not redis.exists(*person_index.person_sets(None, [CUSTOMER]))  # emptied: no digest of it left

    assert forget_onsite(EMAIL, {CUSTOMER}, asked_at=asked_at) == 0  # the job's second look: nothing new
    assert _remaining(redis) == {"after-request", "switched"}


def test_without_the_marker_forget_scans_and_the_backfill_completes_the_index(app: Flask, redis: Redis) -> None:
    asked_at = utcnow()
    pipe = redis.pipeline(transaction=False)  # remembered before the index existed: in no set
    _browser(pipe, "old-email", email=EMAIL, identified_at=asked_at.timestamp() - 60, indexed=False)
    _browser(pipe, "old-customer", customer_id=CUSTOMER, identified_at=asked_at.timestamp() - 60, indexed=False)
    _browser(pipe, "old-after", email=EMAIL, identified_at=asked_at.timestamp() + 1, indexed=False)
    _browser(pipe, "old-legacy", email=EMAIL, ttl=ANON_TTL - 7200, indexed=False)
    pipe.execute()
    _others(redis, 300, indexed=False)
    redis.set("shoprelay:onsite:anon:not-a-hash", "x")  # a stray key under the prefix: skipped by both

    with _commands(redis) as commands:
        assert forget_onsite(EMAIL, {CUSTOMER}, asked_at=asked_at) == 3
    assert _named(commands, "scan")  # the index is not complete: every browser is looked at
    assert _remaining(redis) == {"old-after", "not-a-hash"}

    pipe = redis.pipeline(transaction=False)
    _browser(pipe, "old-again", email=EMAIL, identified_at=asked_at.timestamp() - 30, indexed=False)
    _browser(pipe, "anonymous", indexed=False)  # no identity (a `_kx` only): named under nobody
    pipe.execute()
    assert person_index.ensure_complete() == {"state": "backfilled", "browsers": 302}
    assert person_index.is_complete(redis) and person_index.ensure_complete() == {"state": "complete"}
    assert _members(redis, email=EMAIL) == {"old-after", "old-again"}
    assert _members(redis, email="shopper7@example.com") == _members(redis, customer_id="c-7") == {"other-7"}
    assert ANON_TTL - 5 <= redis.ttl(person_index.person_sets(EMAIL, [])[0]) <= ANON_TTL

    with _commands(redis) as commands:
        assert forget_onsite(EMAIL, {CUSTOMER}, asked_at=asked_at) == 1
    assert not _named(commands, "scan")
    assert _remaining(redis) == {"old-after", "not-a-hash", "anonymous"}

    app.config["SECRET_KEY"] = "rotated"  # digests change: the index is incomplete until backfilled again
    assert not person_index.is_complete(redis)
    assert person_index.browsers_of(redis, EMAIL, []) is None


def test_a_redis_that_is_away_leaves_the_erasure_going(app: Flask, caplog) -> None:  # noqa: ANN001
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/7"
    with caplog.at_level(logging.WARNING):
        assert forget_onsite(EMAIL, {CUSTOMER}, asked_at=utcnow()) == 0
    assert "onsite identities not checked" in caplog.text


def test_the_erasure_request_and_its_job_forget_through_the_index(app: Flask, api: FlaskClient, redis: Redis,
                                                                  worker) -> None:  # noqa: ANN001
    _collect(api, "mine-browser", event="identify", email=EMAIL, customer_id=CUSTOMER)
    _collect(api, "theirs-browser", event="identify", email="bob@example.com")
    from workers.jobs.erasures import onsite_person_index_job  # what the scheduler runs every 5 minutes

    assert onsite_person_index_job()["state"] == "backfilled"

    with _commands(redis) as commands:
        response = api.delete(f"/api/v1/contacts/{EMAIL}")
    assert response.status_code == 202, response.get_json()
    assert not _named(commands, "scan")
    assert _remaining(redis) == {"theirs-browser"}  # at once, in the request

    time.sleep(0.01)
    _collect(api, "new-browser", event="identify", email=EMAIL)  # after the request: the new contact's browser
    worker(["default"])  # the job's second look
    assert api.get(f"/api/v1/erasures/{response.get_json()['id']}").get_json()["status"] in ("running", "succeeded")
    assert _remaining(redis) == {"theirs-browser", "new-browser"}
    assert _members(redis, email=EMAIL) == {"new-browser"}

"""Secrets stay secret: canary secrets planted through the API and the dashboard never come back in plain text.

Every kind of secret shoprelay holds is planted through the real paths, then the app is made to use them against
a server whose 401/500 answers echo the request (headers included): deliveries, test-connection buttons, a
failing source sync, alert tests, error pages. Then everything the app produced is searched: every log line
(DEBUG), every API answer and dashboard page (the URL map walked with the ids that exist), every text and blob
column of every table, Redis (failed jobs' tracebacks are the error reports), and the instance folder's files.
Only encrypted storage may hold a canary; a canary is also looked for inside base64 (basic-auth tokens) and
percent-encoded.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from tests.conftest import both_databases, csrf_token
from tests.factories import make_order
from tests.fakeplatform import FakePlatform

Seen = list[tuple[str, str]]


def _canary(label: str) -> str:
    return f"cnry{label}{secrets.token_hex(8)}"


def _make_canaries() -> dict[str, str]:
    names = ("klaviyo_api", "klaviyo_form", "klaviyo_fake", "sendlane_api", "esputnik", "webhook_secret",
             "webhook_path", "webhook_query", "source_url_password", "source_password", "source_header",
             "source_form_password", "feed_password", "alert_token", "alert_form_password", "api_key_form")
    canaries = {name: _canary(name.replace("_", "")[:10]) for name in names}
    canaries["webhook_secret"] = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    return canaries


# Sendlane's integration token is public by design: the storefront snippet (the onsite page) carries it to
# Sendlane's pusher.js in every visitor's browser. It is planted, not searched for.
SENDLANE_INTEGRATION_TOKEN = "3f0c6a52-7f6b-4c1e-9a55-5e0d1c2b7a10"


def _forms(canary: str) -> list[str]:
    """How a leaked canary may look: plain, percent-encoded, and inside a basic-auth token at any offset."""
    forms = {canary, quote(canary, safe="")}
    for prefix in ("", "x:", "shoprelay:", "user:", "a"):
        token = base64.b64encode(f"{prefix}{canary}".encode()).decode().rstrip("=")
        forms.add(token[len(base64.b64encode(prefix.encode()).decode().rstrip("=")) + 1:-2])
    return [form for form in forms if len(form) >= 12]


class Found:
    """Everything the app produced, as (where, text) pairs, and the search over it."""

    def __init__(self, canaries: dict[str, str]) -> None:
        self.canaries = canaries
        self.seen: Seen = []

    def add(self, where: str, text: str | bytes | None) -> None:
        if text:
            self.seen.append((where, text.decode("utf-8", "replace") if isinstance(text, bytes) else text))

    def leaks(self) -> list[str]:
        found = []
        for name, canary in self.canaries.items():
            for form in _forms(canary):
                for where, text in self.seen:
                    if form in text:
                        start = text.index(form)
                        found.append(f"{name} in {where}: …{text[max(0, start - 80):start + 60]!r}…")
        return found


def _recording(client: FlaskClient, found: Found, skip: list[str]) -> None:
    """Keep every answer the client gets (except pages listed in `skip`: the one that shows a new key once)."""
    original = client.open

    def open_(*args: Any, **kwargs: Any):  # noqa: ANN202
        response = original(*args, **kwargs)
        path = args[0] if args and isinstance(args[0], str) else kwargs.get("path", "?")
        if not any(path == skipped for skipped in skip) or kwargs.get("method", "GET") == "GET":
            found.add(f"answer {kwargs.get('method', 'GET')} {path} {response.status_code}", response.get_data())
        response.close()
        return response

    client.open = open_  # type: ignore[method-assign]


def _api(client: FlaskClient, key: str, method: str, path: str, body: Any = None) -> Any:
    response = client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code < 500, (path, response.get_data(as_text=True))
    return response


def _plant(client: FlaskClient, key: str, canaries: dict[str, str], echo: str,
           fake: FakePlatform) -> dict[str, list[int]]:
    """Every secret through the API, some through the dashboard forms; the ids made, by kind."""
    ids: dict[str, list[int]] = {"destinations": [], "sources": [], "feeds": [], "alerts": []}
    destinations = [
        {"kind": "klaviyo", "credentials": {"api_key": fake.klaviyo_key}, "base_url": fake.base_url("klaviyo")},
        {"kind": "klaviyo", "credentials": {"api_key": f"pk_{canaries['klaviyo_api']}"}, "base_url": f"{echo}/e401",
         "catalog": "api"},
        {"kind": "sendlane", "base_url": f"{echo}/e500", "catalog": "api",
         "credentials": {"api_token": canaries["sendlane_api"], "integration_token": SENDLANE_INTEGRATION_TOKEN}},
        {"kind": "esputnik", "credentials": {"api_key": canaries["esputnik"]}, "base_url": f"{echo}/e401"},
        {"kind": "webhook", "credentials": {
            "url": f"{echo}/e500/hooks/{canaries['webhook_path']}?token={canaries['webhook_query']}",
            "secret": canaries["webhook_secret"]}},
    ]
    for body in destinations:
        answer = _api(client, key, "POST", "/api/v1/destinations", {"name": f"{body['kind']} canary", **body})
        assert answer.status_code == 201, answer.get_json()
        ids["destinations"].append(answer.get_json()["id"])
    form = {"csrf_token": csrf_token(client, "/destinations/new?kind=klaviyo"), "kind": "klaviyo",
            "name": "klaviyo form", "credentials.api_key": f"pk_{canaries['klaviyo_form']}",
            "base_url": f"{echo}/e500", "mode": "realtime", "enabled": "1", "catalog": "off",
            "events": ["placed_order"]}
    assert client.post("/destinations/new", data=form).status_code == 302

    host = echo.removeprefix("http://")
    sources = [
        {"location": f"http://shop:{canaries['source_url_password']}@{host}/e401/products.csv"},
        {"location": f"{echo}/e401/export.csv", "credentials": {
            "username": "shop", "password": canaries["source_password"],
            "header_name": "X-Api-Key", "header_value": canaries["source_header"]}},
    ]
    for number, body in enumerate(sources):
        answer = _api(client, key, "POST", "/api/v1/sources", {"name": f"canary source {number}", "kind": "csv",
                                                               **body})
        assert answer.status_code == 201, answer.get_json()
        ids["sources"].append(answer.get_json()["id"])
    form = {"csrf_token": csrf_token(client, "/sources/new"), "name": "form source", "kind": "csv", "via": "url",
            "location": f"{echo}/e500/form.csv", "credentials.username": "shop",
            "credentials.password": canaries["source_form_password"], "schedule": "0 2 * * *", "timezone": "UTC",
            "enabled": "1"}
    assert client.post("/sources/new", data=form, content_type="multipart/form-data").status_code == 302

    answer = _api(client, key, "POST", "/api/v1/feeds", {
        "name": "canary feed", "slug": "canary", "format": "klaviyo_json", "source_ids": ids["sources"][:1],
        "basic_auth": {"username": "platform", "password": canaries["feed_password"]}})
    assert answer.status_code == 201, answer.get_json()
    ids["feeds"].append(answer.get_json()["id"])

    answer = _api(client, key, "POST", "/api/v1/alerts", {
        "name": "canary alerts", "url": f"json://{host}/e500/{canaries['alert_token']}"})
    assert answer.status_code == 201, answer.get_json()
    ids["alerts"].append(answer.get_json()["id"])
    form = {"csrf_token": csrf_token(client, "/alerts/new"), "name": "form alerts",
            "url": f"json://ops:{canaries['alert_form_password']}@{host}/e401/hook", "enabled": "1",
            "events": ["destination_paused", "sync_failed"]}
    assert client.post("/alerts/new", data=form).status_code == 302
    return ids


def _exercise(app: Flask, client: FlaskClient, key: str, ids: dict[str, list[int]], worker: Any, db: Any) -> None:
    """Use every planted secret against the echo server, and provoke the error paths."""
    from webapp.models import AlertChannel, Destination, Feed, Source

    assert _api(client, key, "POST", "/api/v1/orders", make_order()).status_code == 202
    worker()
    db.session.expire_all()
    for destination in db.session.scalars(sa.select(Destination)):
        _api(client, key, "POST", f"/api/v1/destinations/{destination.id}/test")
        client.post(f"/destinations/{destination.id}/test", data={"csrf_token": csrf_token(client, "/destinations/")})
        _api(client, key, "POST", f"/api/v1/destinations/{destination.id}/resume")
    for source in db.session.scalars(sa.select(Source)):
        _api(client, key, "POST", f"/api/v1/sources/{source.id}/sync")
        client.post(f"/sources/{source.id}/mapping/preview", data={"csrf_token": csrf_token(client, "/sources/")})
    for channel in db.session.scalars(sa.select(AlertChannel)):
        _api(client, key, "POST", f"/api/v1/alerts/{channel.id}/test")
        client.post(f"/alerts/{channel.id}/test", data={"csrf_token": csrf_token(client, "/alerts/")})
    worker()
    db.session.expire_all()
    for feed in db.session.scalars(sa.select(Feed)):
        client.get(f"/feeds/{feed.token}/canary.json", headers={"Authorization": "Basic d3Jvbmc6d3Jvbmc="})
    client.get("/no/such/page")
    _api(client, key, "GET", "/api/v1/destinations/999999")
    _api(client, key, "POST", "/api/v1/destinations", {"kind": "klaviyo", "credentials": {"api_key": 5}})


def _arguments(db: Any) -> dict[str, list[Any]]:
    """URL-map argument -> values that exist, so every page with ids is walked."""
    from webapp import models

    def ids(model: Any, column: str = "id") -> list[Any]:
        return list(db.session.scalars(sa.select(getattr(model, column)).limit(5)))

    return {
        "destination_id": ids(models.Destination), "source_id": ids(models.Source), "feed_id": ids(models.Feed),
        "channel_id": ids(models.AlertChannel), "run_id": ids(models.SyncRun), "order_id": ids(models.Order),
        "external_id": ids(models.Order, "external_id"), "contact_id": ids(models.Contact),
        "product_id": ids(models.Product), "build_id": ids(models.FeedBuild),
    }


def _walk_pages(app: Flask, client: FlaskClient, key: str, db: Any, found: Found) -> int:
    """GET every dashboard page and API read with each existing id (every argument filled from the same list)."""
    values = _arguments(db)
    adapter = app.url_map.bind("localhost")
    walked = 0
    rule: Rule
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint in ("static", "feed_serving.serve"):
            continue
        if any(argument not in values for argument in rule.arguments):
            continue
        for index in range(max((len(values[a]) for a in rule.arguments), default=1)):
            filled = {a: values[a][min(index, len(values[a]) - 1)] for a in rule.arguments if values[a]}
            if len(filled) != len(rule.arguments):
                break
            path = adapter.build(rule.endpoint, filled)
            headers = {"Authorization": f"Bearer {key}"} if path.startswith("/api/") else {}
            client.get(path, headers=headers)
            client.get(path, headers={**headers, "HX-Request": "true"})
            walked += 1
    return walked


def _tables(db: Any, found: Found) -> None:
    from webapp.models import Base

    for table in Base.metadata.sorted_tables:
        columns = [column for column in table.columns
                   if isinstance(column.type, sa.String | sa.Text | sa.JSON | sa.LargeBinary | sa.PickleType)
                   or column.type.__class__.__name__ in ("JSONB", "ARRAY")]
        if not columns:
            continue
        for row in db.session.execute(sa.select(*columns)):
            for column, value in zip(columns, row, strict=True):
                found.add(f"table {table.name}.{column.name}", value if isinstance(value, str | bytes)
                          else repr(value) if value is not None else None)


def _redis(redis: Any, found: Found) -> None:
    """Every Redis value: RQ keeps failed jobs' tracebacks (the error reports) and job arguments there."""
    for name in redis.scan_iter(count=500):
        kind = redis.type(name).decode()
        if kind == "string":
            found.add(f"redis {name!r}", redis.get(name))
        elif kind == "hash":
            for field, value in redis.hgetall(name).items():
                found.add(f"redis {name!r}.{field!r}", _maybe_unzip(value))
        elif kind in ("list", "set", "zset"):
            members = (redis.lrange(name, 0, -1) if kind == "list" else redis.smembers(name) if kind == "set"
                       else redis.zrange(name, 0, -1))
            found.add(f"redis {name!r}", b"\n".join(members))


def _maybe_unzip(value: bytes) -> bytes:
    import zlib

    try:
        return zlib.decompress(value)
    except zlib.error:
        return value


def _files(folder: Path, found: Found) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            found.add(f"file {path.relative_to(folder)}", path.read_bytes())


@both_databases
def test_canary_secrets_appear_nowhere_in_plain_text(app, client, logged_in, db, redis, worker, echo_server,
                                                     caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr("workers.catalogs.client.CatalogClient.sleep", lambda self, seconds: None)  # 500s retry
    from webapp.security import create_api_key

    _, key = create_api_key("canary admin")
    canaries = _make_canaries()
    canaries["api_key"] = key
    found = Found(canaries)
    _recording(client, found, skip=["/settings/api-keys"])
    form_key = client.post("/settings/api-keys", data={"csrf_token": csrf_token(client, "/settings/"),
                                                       "name": "form key", "scope": "ingest"})
    shown = re.search(r"(sr_[A-Za-z0-9_\-]{20,})", form_key.get_data(as_text=True))
    assert shown, "the new key is shown once"
    canaries["api_key_form"] = shown.group(1)

    with FakePlatform(klaviyo_key=f"pk_{canaries['klaviyo_fake']}") as fake:  # one that accepts, too
        ids = _plant(client, key, canaries, echo_server, fake)
        _exercise(app, client, key, ids, worker, db)
        assert fake.klaviyo_events_named("Placed Order"), "the delivery to the accepting platform went out"
    walked = _walk_pages(app, client, key, db, found)
    assert walked > 40
    _tables(db, found)
    _redis(redis, found)
    _files(Path(app.instance_path), found)
    for record in caplog.records:
        found.add(f"log {record.name}", record.getMessage() + (caplog.handler.format(record) if record.exc_info
                                                                   else ""))
    assert not _used(found), f"the planted secrets were not all used: {_used(found)}"
    leaks = found.leaks()
    assert not leaks, "\n".join(leaks[:30])


def _used(found: Found) -> list[str]:
    """What did not happen of what should have: the echo server's answers (masked) in the delivery log, a sync
    failed with the server's 401, a destination paused, the source URL's password moved out of the URL."""
    def values(prefix: str) -> list[str]:
        return [value for where, value in found.seen if where.startswith(prefix)]

    missing = []
    if not any("[REDACTED]" in value and "Authorization" in value
               for value in values("table delivery_requests.response_body")):
        missing.append("a masked echo of a delivery request")
    if not any("HTTP 401" in value for value in values("table sync_runs.error")):
        missing.append("a source sync failed with the server's 401")
    if not values("table destinations.pause_reason"):
        missing.append("a destination paused by its 401")
    if any("shop:" in value for value in values("table sources.location")):
        missing.append("the source URL's password moved to the credentials")
    return missing

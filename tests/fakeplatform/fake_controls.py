"""The fake's own controls over HTTP, under `/_fake/`, for a fake running as its own process
(`python -m tests.fakeplatform`): what a test in the same process calls as methods.

- `POST /_fake/faults` `{"kind": "rate_limit", "n": 1 | "seconds": 5, "retry_after": 5, "status": 429,
  "header": true, "platform": "klaviyo"}` (also `"kind": "fail"`) → 204
- `GET /_fake/early-requests?grace=0.05&platform=klaviyo` → `{"early": [{"platform", "path", "at", "status"}]}`
- `POST /_fake/reset` → 204
- `POST /_fake/klaviyo-job-polls` `{"polls": 2}` → 204: catalog jobs posted from then on answer "processing"
  to 2 GETs, then complete (0, the default: complete at once)
- `POST /_fake/klaviyo-forget` `{"id": "$custom:::$default:::SKU-1"}` → 200 `{"forgotten": "item"}` (or
  "variant", "category"), 404 when no store holds that id: drops it without a job, as if Klaviyo lost it
  (an item with its variants)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from tests.fakeplatform.records import NOT_JSON, Reply, parse_json

if TYPE_CHECKING:
    from tests.fakeplatform.server import FakePlatform

PREFIX = "_fake"
KLAVIYO_ACTIONS = ("klaviyo-job-polls", "klaviyo-forget")


def handle(fake: FakePlatform, method: str, path: str, query: str, body: bytes) -> Reply:
    params = {name: values[-1] for name, values in parse_qs(query).items()}
    if method == "POST" and path == "faults":
        spec = parse_json(body)
        if spec is NOT_JSON or not isinstance(spec, dict):
            return Reply.json(400, {"error": "a JSON object is expected"})
        try:
            add_fault(fake, spec)
        except (TypeError, ValueError) as exc:
            return Reply.json(400, {"error": str(exc)})
        return Reply(204)
    if method == "GET" and path == "early-requests":
        early = fake.early_requests(float(params.get("grace", 0)), params.get("platform"))
        return Reply.json(200, {"early": [{"platform": r.platform, "path": r.path, "at": r.at, "status": r.status}
                                          for r in early]})
    if method == "POST" and path == "reset":
        fake.reset()
        return Reply(204)
    if method == "POST" and path in KLAVIYO_ACTIONS:
        return klaviyo_control(fake, path, body)
    return Reply.json(404, {"error": f"no control {method} /{PREFIX}/{path}"})


def klaviyo_control(fake: FakePlatform, action: str, body: bytes) -> Reply:
    """The Klaviyo catalog controls, shared with `/_control/` (control.py)."""
    spec = parse_json(body)
    if spec is NOT_JSON or not isinstance(spec, dict):
        return Reply.json(400, {"error": "a JSON object is expected"})
    if action == "klaviyo-job-polls":
        try:
            fake.set_klaviyo_job_polls(spec.get("polls"))
        except ValueError as exc:
            return Reply.json(400, {"error": str(exc)})
        return Reply(204)
    catalog_id = spec.get("id")
    if not isinstance(catalog_id, str):
        return Reply.json(400, {"error": "'id' must be a catalog id string"})
    forgotten = fake.forget_klaviyo_catalog_id(catalog_id)
    if forgotten is None:
        return Reply.json(404, {"error": f"no catalog item, variant or category {catalog_id!r}"})
    return Reply.json(200, {"forgotten": forgotten})


def add_fault(fake: FakePlatform, spec: dict[str, Any]) -> None:
    kind, platform = spec.get("kind"), spec.get("platform")
    status = int(spec.get("status", 429 if kind == "rate_limit" else 500))
    if kind == "rate_limit":
        options = {"status": status, "header": bool(spec.get("header", True))}
        if "seconds" in spec:
            retry_after = spec.get("retry_after")
            fake.rate_limit_for(float(spec["seconds"]), None if retry_after is None else float(retry_after),
                                platform, **options)
        else:
            fake.rate_limit_next(int(spec.get("n", 1)), float(spec.get("retry_after", 2)), platform, **options)
    elif kind == "fail":
        if "seconds" in spec:
            fake.fail_for(float(spec["seconds"]), status, platform)
        else:
            fake.fail_next(int(spec.get("n", 1)), status, platform)
    else:
        raise ValueError(f"unknown fault kind {kind!r}: rate_limit or fail")

"""HTTP control endpoints of the fake in process mode (`python -m tests.fakeplatform`), under `/_control/`.

Tests that run the fake as its own process (tests/reliability) set faults and read what it received over
HTTP instead of through Python attributes. Control requests are not recorded as platform requests.

- `POST /_control/fault`  `{"kind": "fail"|"rate_limit"|"timeout"|"reject", "platform": "klaviyo",
  "seconds": 5 | "n": 3, "status": 503, "retry_after": 3, "delay": 0}` → 204
- `POST /_control/reset` → 204 (forget everything, drop faults)
- `POST /_control/klaviyo-job-polls` `{"polls": 2}`, `POST /_control/klaviyo-forget` `{"id": …}`: the Klaviyo
  catalog controls, as under `/_fake/` (fake_controls.py)
- `GET /_control/summary` → what was kept by unique id, re-sends absorbed, every request's
  (platform, arrival time, status, fault) and every answer that carried Retry-After, internal errors.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tests.fakeplatform import fake_controls
from tests.fakeplatform.faults import FAIL, RATE_LIMIT, REJECT, TIMEOUT, Fault
from tests.fakeplatform.records import NOT_JSON, Reply, parse_json

if TYPE_CHECKING:
    from tests.fakeplatform.__main__ import ProcessFakePlatform

PREFIX = "/_control/"
KINDS = (FAIL, RATE_LIMIT, TIMEOUT, REJECT)


def answer(fake: ProcessFakePlatform, method: str, target: str, body: bytes) -> Reply:
    """Serve one control request."""
    action = target[len(PREFIX):].partition("?")[0]
    if action == "summary" and method == "GET":
        return Reply.json(200, summary(fake))
    if action == "reset" and method == "POST":
        fake.reset()
        with fake.lock:
            fake.throttles.clear()
        return Reply(204)
    if action == "fault" and method == "POST":
        spec = parse_json(body)
        if spec is NOT_JSON or not isinstance(spec, dict) or spec.get("kind") not in KINDS:
            return Reply.json(400, {"error": f"a JSON object with kind one of {KINDS}"})
        fake.faults.add(fault_from(spec))
        return Reply(204)
    if action in fake_controls.KLAVIYO_ACTIONS and method == "POST":
        return fake_controls.klaviyo_control(fake, action, body)
    return Reply.json(404, {"error": f"no control endpoint {method} {target}"})


def fault_from(spec: dict[str, Any]) -> Fault:
    """A fault rule from its JSON description: counted (`n`) or for a time (`seconds`)."""
    counted = spec.get("n") is not None
    status = spec.get("status") or (429 if spec["kind"] == RATE_LIMIT else 500)
    return Fault(spec["kind"], spec.get("platform"), remaining=int(spec["n"]) if counted else None,
                 until=None if counted else time.monotonic() + float(spec.get("seconds", 0)),
                 status=int(status), retry_after=float(spec.get("retry_after", 2)),
                 delay=float(spec.get("delay", 0)), detail=str(spec.get("detail", "Rejected by the fake.")))


def summary(fake: ProcessFakePlatform) -> dict[str, Any]:
    kept = fake.delivered_by_unique_id()
    with fake.lock:
        requests = [[r.platform, r.path, r.at, r.status, r.fault] for r in fake.requests]
        throttles = [list(entry) for entry in fake.throttles]
        errors = list(fake.internal_errors)
    return {"kept": [[*key, count] for key, count in kept.items()], "resent": fake.resent_count(),
            "requests": requests, "throttles": throttles, "internal_errors": errors,
            "pending_faults": fake.faults.pending()}

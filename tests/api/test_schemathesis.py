"""Schemathesis over the served OpenAPI document: every operation, every check, every phase (examples, coverage,
fuzzing, stateful through the document's links), against the real app in process on SQLite with an admin key.

Bounded, with two seeds: a fixed one runs every phase, so a change that breaks the contract fails every run
(~2700 requests, most of them the coverage phase's deterministic boundary cases; ~45 s on two CPUs), and one
that rotates daily runs the random phases (~370 requests, ~20 s); it is printed, and a failure replays with
`SHOPRELAY_SCHEMATHESIS_SEED=<seed> pytest tests/api/test_schemathesis.py -k rotating -s`.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from schemathesis.python import wsgi
from werkzeug.test import Client

FIXED_SEED = 20261206
MAX_EXAMPLES = {"fixed": 3, "rotating": 6}  # per operation and phase (coverage's own cases come on top)
# The coverage phase is deterministic (boundaries, missing parts, unexpected methods, ~2500 requests over this
# document): the fixed seed runs it, the rotating one spends its budget on random inputs and the stateful phase.
PHASES = {"fixed": ("examples", "coverage", "fuzzing", "stateful"), "rotating": ("fuzzing", "stateful")}
# Socket-level settings the engine passes along; werkzeug's in-process client has no use for them. Schemathesis
# drops them itself except on the probes its `ignored_auth` check sends (4.32), which would error out instead.
SOCKET_SETTINGS = ("max_redirects", "verify", "cert", "proxies")


class InProcessClient(Client):
    def open(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        for name in SOCKET_SETTINGS:
            kwargs.pop(name, None)
        return super().open(*args, **kwargs)


def cross_field_rules_hold(context: Any, case: Any) -> bool:  # noqa: ANN401
    """The few rules JSON Schema cannot state (it cannot compare two fields; the document says each in words):
    generated requests that break them are not the schema-valid requests the API must accept, so they are not
    sent. Everything else the API checks is in the document."""
    body, label = case.body, case.operation.label
    if not isinstance(body, dict):
        return True
    if label in ("POST /api/v1/orders", "POST /api/v1/checkouts"):
        orders = body["orders"] if isinstance(body.get("orders"), list) else [body]
        return all(refund_within_total(order) and all(line_total_fits(item) for item in listed(order.get("items"))
                                                      if isinstance(item, dict))
                   for order in orders if isinstance(order, dict))
    if label == "POST /api/v1/destinations/{id}/replay":
        return not (isinstance(body.get("since"), str) and isinstance(body.get("until"), str)
                    and moment(body["since"]) > moment(body["until"]))
    if label == "POST /api/v1/products":
        return len(listed(body.get("upserts"))) + len(listed(body.get("deletes"))) <= 1000
    return True


def listed(value: Any) -> list:  # noqa: ANN401
    return value if isinstance(value, list) else []


def refund_within_total(order: dict) -> bool:
    refunded, total = order.get("refunded_amount"), order.get("total")
    return not (isinstance(refunded, int | float) and isinstance(total, int | float) and refunded > total)


def line_total_fits(item: dict) -> bool:
    price, quantity = item.get("price"), item.get("quantity")
    return item.get("total") is not None or not (
        isinstance(price, int | float) and isinstance(quantity, int | float) and price * quantity >= 10**12)


def moment(text: str) -> datetime.datetime:
    try:
        return datetime.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return datetime.datetime.max.replace(tzinfo=datetime.UTC)


def seeds() -> list[tuple[int, str]]:
    """The fixed seed, and today's (or the one given to replay a failure of the rotating run)."""
    rotating = os.environ.get("SHOPRELAY_SCHEMATHESIS_SEED") or int(datetime.date.today().strftime("%Y%m%d")) * 7919
    return [(FIXED_SEED, "fixed"), (int(rotating), "rotating")]


def run(app: Any, api_key: str, seed: int, kind: str) -> tuple[int, list[str]]:  # noqa: ANN401
    """Every check over every operation; (requests sent, one line per failure or error)."""
    config = SchemathesisConfig.from_dict({
        "seed": seed,
        "headers": {"Authorization": f"Bearer {api_key}"},
        "generation": {"max-examples": MAX_EXAMPLES[kind], "database": "none"},
        "checks": {"enabled": True, "max_response_time": 10},
        "cache": {"enabled": False},
        "phases": {name: {"enabled": name in PHASES[kind]} for name in PHASES["fixed"]},
    })
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)
    schema.hook("filter_case")(cross_field_rules_hold)
    sent, problems = 0, []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            sent += len(event.recorder.cases)
            problems += failures(event.recorder)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            problems.append(f"error: {getattr(event, 'label', '')} {getattr(event, 'value', None) or event}")
    return sent, problems


def failures(recorder: Any) -> list[str]:  # noqa: ANN401
    found = []
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.status.name != "FAILURE":
                continue
            case = recorder.cases[case_id].value
            interaction = recorder.interactions.get(case_id)
            answer = interaction.response.content[:300] if interaction and interaction.response else b""
            failure = check.failure_info.failure if check.failure_info else None
            found.append(f"{recorder.label}: {check.name} on {case.method} {case.formatted_path} "
                         f"query={case.query} body={str(case.body)[:300]}: {getattr(failure, 'message', '')} -> {answer!r}")
    return found


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "kind"), seeds())
def test_the_api_keeps_its_openapi_contract(app, api_key, seed, kind, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(wsgi, "get_client", InProcessClient)
    print(f"schemathesis seed {seed} (replay: SHOPRELAY_SCHEMATHESIS_SEED={seed})")
    sent, problems = run(app, api_key, seed, kind)
    print(f"{sent} requests")
    assert not problems, f"seed {seed}:\n" + "\n".join(dict.fromkeys(problems))
    assert sent >= 200

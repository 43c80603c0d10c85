"""The fault suite's own arithmetic: which requests came before a Retry-After expired, what counts as lost."""

from __future__ import annotations

from collections import Counter

from tests.reliability.accounting import Outcome, early_requests
from tests.reliability.store import Answer, expected_events


def test_a_request_inside_the_wait_is_early_and_one_in_flight_or_after_it_is_not() -> None:
    throttles = [["klaviyo", 100.0, 3.0]]
    requests = [["klaviyo", "/klaviyo/api/events", at, 202, None] for at in (100.2, 101.0, 102.9, 103.1)]
    requests.append(["webhook", "/webhook/receive", 101.0, 200, None])  # another platform's account
    assert [(p, at) for p, at, _ in early_requests(requests, throttles)] == [("klaviyo", 101.0), ("klaviyo", 102.9)]


def test_every_state_of_an_order_is_one_expected_event_per_unique_id() -> None:
    expected = expected_events("S-", [0, 1, 2, 3])  # fulfilled; fulfilled+refunded; cancelled; placed only
    assert sum(expected.values()) == 4 * 3 + 1 + 2 + 1
    assert expected["klaviyo", "Refunded Order", "S-1"] == 1 and ("klaviyo", "Refunded Order", "S-0") not in expected
    assert expected["klaviyo", "Ordered Product", "S-3:SKU-B"] == 1


def test_an_outcome_names_each_broken_promise() -> None:
    expected = expected_events("S-", [3])
    kept = Counter(expected) + Counter({("klaviyo", "Placed Order", "S-3"): 1})
    kept.pop(("klaviyo", "Ordered Product", "S-3:SKU-A"))
    outcome = Outcome("x", "sqlite", 1, expected, kept, 0, [], {"delivered": 3}, [Answer(0, 31, 500, None, 1, "boom")],
                      "none", (200, {}), 1.0)
    assert (outcome.lost, outcome.doubled, outcome.delivered) == (1, 1, 2)
    problems = outcome.problems()
    assert len(problems) == 3 and "never reached" in problems[0] and "kept twice" in problems[1]
    assert "{500: 1}" in problems[2]
    relaxed = Outcome("x", "sqlite", 1, expected, Counter(expected), 0, [], {"delivered": 3},
                      [Answer(0, 0.1, 503, "1", 1)], "503+retry-after", (200, {}), 1.0)
    assert relaxed.problems() == []
    relaxed.latency_bound = 0.05  # a sync must not hold ingest up: a 2xx that took too long is a problem too
    assert relaxed.problems() == ["1 ingest answers took longer than 0 s (worst 0.1 s)"]

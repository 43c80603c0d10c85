"""The order state machine: every status pair, idempotence, anomalies and refund sequences."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp.services.orders.state import (
    CANCELLED_ORDER,
    FULFILLED_ORDER,
    ORDERED_PRODUCT,
    PENDING_ORDER,
    PLACED_ORDER,
    REFUND_STATUSES,
    REFUNDED_ORDER,
    STATUSES,
    TRANSITIONS,
    OrderSnapshot,
    derive,
    refund_unique_id,
)

FIRST_AMOUNT = Decimal("10")
LARGER_AMOUNT = Decimal("20")


def reached(status: str) -> OrderSnapshot:
    """The snapshot of an order first seen in `status` (refunds of FIRST_AMOUNT)."""
    return derive(None, status, FIRST_AMOUNT if status in REFUND_STATUSES else None).new_snapshot


def walk(*steps: str | tuple[str, int]) -> list:
    """Derive a sequence of statuses (optionally with a refunded amount) from a new order."""
    snapshot, results = None, []
    for step in steps:
        status, amount = step if isinstance(step, tuple) else (step, None)
        result = derive(snapshot, status, amount)
        snapshot = result.new_snapshot
        results.append(result)
    return results


def test_table_covers_every_status_pair_and_new_orders() -> None:
    expected = {(None, status) for status in STATUSES} | {(a, b) for a in STATUSES for b in STATUSES}

    assert set(TRANSITIONS) == expected


@pytest.mark.parametrize(("previous", "incoming"), list(TRANSITIONS))
def test_each_transition_does_what_the_table_says(previous: str | None, incoming: str) -> None:
    move = TRANSITIONS[(previous, incoming)]
    before = reached(previous) if previous else None

    result = derive(before, incoming, LARGER_AMOUNT if incoming in REFUND_STATUSES else None)

    if move.allowed:
        assert result.events == list(move.events)
        assert result.anomaly is None
        assert result.applied_status == result.new_snapshot.status == incoming
    else:
        assert result.events == []
        assert result.anomaly == f"{previous} → {incoming} is not allowed; kept {previous}"
        assert result.applied_status == previous
        assert result.new_snapshot == before


@pytest.mark.parametrize(("previous", "incoming"),
                         [pair for pair, move in TRANSITIONS.items() if move.allowed])
def test_applying_the_same_status_twice_emits_nothing_new(previous: str | None, incoming: str) -> None:
    before = reached(previous) if previous else None
    amount = LARGER_AMOUNT if incoming in REFUND_STATUSES else None
    first = derive(before, incoming, amount)

    again = derive(first.new_snapshot, incoming, amount)

    assert again.events == []
    assert again.anomaly is None
    assert again.new_snapshot == first.new_snapshot


@pytest.mark.parametrize(("steps", "expected"), [
    (["pending"], [[PENDING_ORDER]]),
    (["placed"], [[PLACED_ORDER, ORDERED_PRODUCT]]),
    (["pending", "placed"], [[PENDING_ORDER], [PLACED_ORDER, ORDERED_PRODUCT]]),
    (["fulfilled"], [[PLACED_ORDER, ORDERED_PRODUCT, FULFILLED_ORDER]]),
    (["cancelled"], [[PLACED_ORDER, ORDERED_PRODUCT, CANCELLED_ORDER]]),
    (["refunded"], [[PLACED_ORDER, ORDERED_PRODUCT, REFUNDED_ORDER]]),
    (["placed", "fulfilled", "refunded"], [[PLACED_ORDER, ORDERED_PRODUCT], [FULFILLED_ORDER], [REFUNDED_ORDER]]),
    (["placed", "cancelled", "refunded"], [[PLACED_ORDER, ORDERED_PRODUCT], [CANCELLED_ORDER], [REFUNDED_ORDER]]),
    (["placed", "placed", "fulfilled", "fulfilled"], [[PLACED_ORDER, ORDERED_PRODUCT], [], [FULFILLED_ORDER], []]),
])
def test_lifecycles_from_the_issue(steps: list[str], expected: list[list[str]]) -> None:
    assert [result.events for result in walk(*steps)] == expected


@pytest.mark.parametrize(("steps", "anomaly"), [
    (["refunded", "placed"], "refunded → placed is not allowed; kept refunded"),
    (["placed", "pending"], "placed → pending is not allowed; kept placed"),
    (["fulfilled", "placed"], "fulfilled → placed is not allowed; kept fulfilled"),
    (["cancelled", "fulfilled"], "cancelled → fulfilled is not allowed; kept cancelled"),
    (["refunded", "partially_refunded"], "refunded → partially_refunded is not allowed; kept refunded"),
])
def test_going_backwards_is_an_anomaly_and_keeps_the_status(steps: list[str], anomaly: str) -> None:
    *_, last = walk(*steps)

    assert last.anomaly == anomaly
    assert last.events == []
    assert last.applied_status == last.new_snapshot.status == steps[0]


def test_refund_after_cancel_reports_the_refund_without_placing_again() -> None:
    _, _, refund, cancel_again = walk("placed", "cancelled", "refunded", "cancelled")

    assert refund.events == [REFUNDED_ORDER]
    assert refund.new_snapshot.cancelled_emitted  # LTV reads this to avoid subtracting twice
    assert cancel_again.events == []
    assert cancel_again.applied_status == "cancelled"


def test_each_larger_refunded_amount_is_a_new_refund_with_its_own_sequence() -> None:
    results = walk("fulfilled", ("partially_refunded", 10), ("partially_refunded", 10),
                   ("partially_refunded", 25), ("refunded", 40), ("refunded", 40))

    assert [r.events for r in results[1:]] == [[REFUNDED_ORDER], [], [REFUNDED_ORDER], [REFUNDED_ORDER], []]
    assert [r.refund_sequence for r in results[1:]] == [1, None, 2, 3, None]
    assert results[-1].new_snapshot.refunded_amount == Decimal(40)
    assert results[-1].new_snapshot.refund_sequence == 3


def test_a_shrinking_refunded_amount_is_an_anomaly() -> None:
    *_, before, shrunk = walk("placed", ("partially_refunded", 25), ("partially_refunded", 10))

    assert shrunk.events == []
    assert shrunk.anomaly == "refunded amount went down from 25 to 10; kept partially_refunded"
    assert shrunk.new_snapshot == before.new_snapshot


def test_partial_refund_that_already_covered_the_total_becomes_refunded_without_a_new_event() -> None:
    *_, full = walk("placed", ("partially_refunded", 30), ("refunded", 30))

    assert full.events == []
    assert full.applied_status == "refunded"


def test_refund_unique_ids_keep_the_order_id_first() -> None:
    assert [refund_unique_id("1234", n) for n in (1, 2, 3)] == ["1234", "1234:refund-2", "1234:refund-3"]


def test_snapshot_round_trips_through_json_and_keeps_refund_flags_consistent() -> None:
    snapshot = walk("placed", ("partially_refunded", 12.5))[-1].new_snapshot

    assert OrderSnapshot.from_json(snapshot.to_json()) == snapshot
    assert snapshot.to_json()["refunded_amount"] == "12.5"
    assert OrderSnapshot(status="refunded", refunded_emitted=True).refund_sequence == 1
    assert OrderSnapshot(status="refunded", refund_sequence=2).refunded_emitted


def test_unknown_statuses_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="unknown order status 'shipped'"):
        derive(None, "shipped")
    with pytest.raises(ValueError, match="unknown order status"):
        OrderSnapshot(status="shipped")


status_steps = st.lists(st.tuples(st.sampled_from(STATUSES), st.none() | st.integers(0, 100)), max_size=8)


@given(status_steps)
def test_no_sequence_of_updates_double_counts(steps: list[tuple[str, int | None]]) -> None:
    emitted: list[str] = []
    refund_sequences: list[int] = []
    previous = None
    for result in walk(*steps):
        emitted.extend(result.events)
        if result.refund_sequence is not None:
            refund_sequences.append(result.refund_sequence)
        if result.anomaly:
            assert result.events == [] and result.new_snapshot == previous
        previous = result.new_snapshot

    for once in (PLACED_ORDER, ORDERED_PRODUCT, FULFILLED_ORDER, CANCELLED_ORDER, PENDING_ORDER):
        assert emitted.count(once) <= 1
    lifecycle = [e for e in emitted if e in (FULFILLED_ORDER, CANCELLED_ORDER, REFUNDED_ORDER)]
    if lifecycle:
        assert emitted.index(PLACED_ORDER) < emitted.index(lifecycle[0])
    assert refund_sequences == list(range(1, len(refund_sequences) + 1))

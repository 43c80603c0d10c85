"""The order state machine: which canonical events a change of order status produces.

Pure (no database): ingest loads what was already derived for the stored order as an
`OrderSnapshot`, calls `derive`, writes the order and the events in one transaction, and keeps
`new_snapshot` for next time. The store sends the order's *current* status as often as it likes,
so the same status twice must produce nothing, and a status that goes backwards is kept out
(recorded as an anomaly) instead of undoing what the platforms were already told.

Refunds: a refund grows over time (partially_refunded 10 → partially_refunded 25 → refunded 40),
and each platform wants to hear about every refund. So `refunded_order` is emitted once per
*distinct, larger* refunded amount; `refund_sequence` numbers them (1, 2, ...) and
`refund_unique_id` turns that into the event's unique id (the first keeps the order id, matching
Klaviyo's order-level unique id). A refunded amount that goes down is an anomaly.

Cancelled then refunded is allowed (money returned after a cancel) and emits refunded_order;
LTV must not subtract such an order twice (`cancelled_emitted` tells it the cancel came first).
"""

from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from typing import Any, NamedTuple

PENDING_ORDER = "pending_order"
PLACED_ORDER = "placed_order"
ORDERED_PRODUCT = "ordered_product"  # the caller expands it into one event per order line
FULFILLED_ORDER = "fulfilled_order"
CANCELLED_ORDER = "cancelled_order"
REFUNDED_ORDER = "refunded_order"

STATUSES = ("pending", "placed", "fulfilled", "cancelled", "refunded", "partially_refunded")
REFUND_STATUSES = ("refunded", "partially_refunded")


class Move(NamedTuple):
    """One row of the transition table: the events the move may produce, or not allowed at all.

    An event already emitted for the order is never emitted again, and refunded_order only goes out
    for a refunded amount larger than the last one reported.
    """

    events: tuple[str, ...] = ()
    allowed: bool = True


_NOTHING = Move()
_REFUSED = Move(allowed=False)
_FIRST_PLACED = (PLACED_ORDER, ORDERED_PRODUCT)

# (previous status or None for an order seen for the first time, incoming status) → Move.
# Covers every pair; tests iterate over it.
TRANSITIONS: dict[tuple[str | None, str], Move] = {
    # First time seen: a later state without a prior placed still tells the platforms it was placed.
    (None, "pending"): Move((PENDING_ORDER,)),
    (None, "placed"): Move(_FIRST_PLACED),
    (None, "fulfilled"): Move((*_FIRST_PLACED, FULFILLED_ORDER)),
    (None, "cancelled"): Move((*_FIRST_PLACED, CANCELLED_ORDER)),
    (None, "refunded"): Move((*_FIRST_PLACED, REFUNDED_ORDER)),
    (None, "partially_refunded"): Move((*_FIRST_PLACED, REFUNDED_ORDER)),

    ("pending", "pending"): _NOTHING,
    ("pending", "placed"): Move(_FIRST_PLACED),
    ("pending", "fulfilled"): Move((*_FIRST_PLACED, FULFILLED_ORDER)),
    ("pending", "cancelled"): Move((*_FIRST_PLACED, CANCELLED_ORDER)),
    ("pending", "refunded"): Move((*_FIRST_PLACED, REFUNDED_ORDER)),
    ("pending", "partially_refunded"): Move((*_FIRST_PLACED, REFUNDED_ORDER)),

    ("placed", "pending"): _REFUSED,
    ("placed", "placed"): _NOTHING,
    ("placed", "fulfilled"): Move((FULFILLED_ORDER,)),
    ("placed", "cancelled"): Move((CANCELLED_ORDER,)),
    ("placed", "refunded"): Move((REFUNDED_ORDER,)),
    ("placed", "partially_refunded"): Move((REFUNDED_ORDER,)),

    ("fulfilled", "pending"): _REFUSED,
    ("fulfilled", "placed"): _REFUSED,
    ("fulfilled", "fulfilled"): _NOTHING,
    ("fulfilled", "cancelled"): Move((CANCELLED_ORDER,)),  # e.g. returned to sender
    ("fulfilled", "refunded"): Move((REFUNDED_ORDER,)),
    ("fulfilled", "partially_refunded"): Move((REFUNDED_ORDER,)),

    ("cancelled", "pending"): _REFUSED,
    ("cancelled", "placed"): _REFUSED,
    ("cancelled", "fulfilled"): _REFUSED,
    ("cancelled", "cancelled"): _NOTHING,
    ("cancelled", "refunded"): Move((REFUNDED_ORDER,)),  # money returned after the cancel
    ("cancelled", "partially_refunded"): Move((REFUNDED_ORDER,)),

    ("refunded", "pending"): _REFUSED,
    ("refunded", "placed"): _REFUSED,
    ("refunded", "fulfilled"): _REFUSED,
    ("refunded", "cancelled"): Move((CANCELLED_ORDER,)),
    ("refunded", "refunded"): Move((REFUNDED_ORDER,)),  # only when the amount grew
    ("refunded", "partially_refunded"): _REFUSED,  # a full refund cannot become partial again

    ("partially_refunded", "pending"): _REFUSED,
    ("partially_refunded", "placed"): _REFUSED,
    ("partially_refunded", "fulfilled"): Move((FULFILLED_ORDER,)),  # rest of the order shipped
    ("partially_refunded", "cancelled"): Move((CANCELLED_ORDER,)),
    ("partially_refunded", "refunded"): Move((REFUNDED_ORDER,)),  # only when the amount grew
    ("partially_refunded", "partially_refunded"): Move((REFUNDED_ORDER,)),  # only when the amount grew
}


@dataclass(frozen=True)
class OrderSnapshot:
    """What was already derived for a stored order: its status and which events went out."""

    status: str
    placed_emitted: bool = False
    fulfilled_emitted: bool = False
    cancelled_emitted: bool = False
    refunded_emitted: bool = False
    # The refunded amount last reported with refunded_order (None: never, or reported without one).
    refunded_amount: Decimal | None = None
    # How many refunded_order events went out; 1 when refunded_emitted is set by a caller without it.
    refund_sequence: int = 0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown order status {self.status!r}")
        if self.refunded_emitted and self.refund_sequence == 0:
            object.__setattr__(self, "refund_sequence", 1)
        if self.refund_sequence > 0 and not self.refunded_emitted:
            object.__setattr__(self, "refunded_emitted", True)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict for storing next to the order."""
        data = asdict(self)
        data["refunded_amount"] = None if self.refunded_amount is None else str(self.refunded_amount)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "OrderSnapshot":
        amount = data.get("refunded_amount")
        return cls(**{**data, "refunded_amount": None if amount is None else Decimal(str(amount))})


@dataclass(frozen=True)
class Derivation:
    """The outcome of one status change."""

    events: list[str]
    new_snapshot: OrderSnapshot
    applied_status: str  # the status actually stored (the previous one when the move is refused)
    anomaly: str | None = None  # why the incoming status was not applied
    refund_sequence: int | None = None  # set when events include refunded_order: 1, 2, ...


def derive(previous: OrderSnapshot | None, incoming_status: str,
           incoming_refunded_amount: Decimal | int | float | None = None) -> Derivation:
    """The events that moving `previous` (None: a new order) to `incoming_status` produces.

    Args:
        previous: what was derived for the order so far, or None for an order seen for the first time.
        incoming_status: the status the store sent now.
        incoming_refunded_amount: the order's refunded amount as sent (for refund statuses).
    """
    if incoming_status not in STATUSES:
        raise ValueError(f"unknown order status {incoming_status!r}")
    amount = _as_decimal(incoming_refunded_amount)
    move = TRANSITIONS[(previous.status if previous else None, incoming_status)]
    if previous is not None and not move.allowed:
        return _refused(previous, f"{previous.status} → {incoming_status} is not allowed; kept {previous.status}")

    current = previous or OrderSnapshot(status=incoming_status)
    if REFUNDED_ORDER in move.events and current.refunded_emitted and _shrank(current.refunded_amount, amount):
        return _refused(current, f"refunded amount went down from {current.refunded_amount} to {amount}; "
                                 f"kept {current.status}")

    events = [event for event in move.events if not _already_reported(current, event, amount)]
    snapshot = replace(
        current,
        status=incoming_status,
        placed_emitted=current.placed_emitted or PLACED_ORDER in events,
        fulfilled_emitted=current.fulfilled_emitted or FULFILLED_ORDER in events,
        cancelled_emitted=current.cancelled_emitted or CANCELLED_ORDER in events,
    )
    sequence = None
    if REFUNDED_ORDER in events:
        sequence = current.refund_sequence + 1
        snapshot = replace(snapshot, refunded_emitted=True, refund_sequence=sequence,
                           refunded_amount=amount if amount is not None else current.refunded_amount)
    return Derivation(events=events, new_snapshot=snapshot, applied_status=incoming_status,
                      refund_sequence=sequence)


def refund_unique_id(order_id: str, refund_sequence: int) -> str:
    """The unique id of the n-th refunded_order: the order id first, then `<id>:refund-<n>`."""
    return order_id if refund_sequence <= 1 else f"{order_id}:refund-{refund_sequence}"


def _already_reported(snapshot: OrderSnapshot, event: str, amount: Decimal | None) -> bool:
    if event in (PLACED_ORDER, ORDERED_PRODUCT):
        return snapshot.placed_emitted
    if event == FULFILLED_ORDER:
        return snapshot.fulfilled_emitted
    if event == CANCELLED_ORDER:
        return snapshot.cancelled_emitted
    if event == REFUNDED_ORDER:
        return snapshot.refunded_emitted and not _grew(snapshot.refunded_amount, amount)
    return False


def _grew(reported: Decimal | None, incoming: Decimal | None) -> bool:
    return reported is not None and incoming is not None and incoming > reported


def _shrank(reported: Decimal | None, incoming: Decimal | None) -> bool:
    return reported is not None and incoming is not None and incoming < reported


def _refused(previous: OrderSnapshot, anomaly: str) -> Derivation:
    return Derivation(events=[], new_snapshot=previous, applied_status=previous.status, anomaly=anomaly)


def _as_decimal(amount: Decimal | int | float | None) -> Decimal | None:
    if amount is None or isinstance(amount, Decimal):
        return amount
    return Decimal(str(amount))

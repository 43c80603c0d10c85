"""The canonical order schema: what it accepts, how it normalises, and how it reports problems."""

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.schemas.canonical.orders import (
    MAX_ORDERS_PER_REQUEST,
    CanonicalOrder,
    OrderBatch,
    line_key,
    line_keys,
    order_to_canonical_json,
    parse_orders_payload,
)
from webapp.schemas.errors import ApiError

NOT_A_STRING = "must be a number (money is a JSON number, not a string)"
NEEDS_OFFSET = "timestamp needs a UTC offset, e.g. 2026-11-20T10:15:00Z"


def canonical_order(**changes: Any) -> dict[str, Any]:
    """DESIGN.md's example order, with `changes` applied on top."""
    order = {
        "id": "1234", "status": "placed", "placed_at": "2026-11-20T10:15:00Z", "currency": "USD",
        "total": 29.98, "subtotal": 29.98, "tax": 0, "shipping": 0,
        "discount": {"code": "Free Shipping", "value": 5},
        "customer": {"id": "c-77", "email": "john.smith@example.com", "phone": "+15551234567",
                     "first_name": "John", "last_name": "Smith", "accepts_marketing": True},
        "billing_address": {"first_name": "John", "last_name": "Smith", "company": "", "address1": "123 Abc st",
                            "address2": "Suite 1", "city": "Boston", "region": "Massachusetts",
                            "region_code": "MA", "country": "United States", "country_code": "US",
                            "zip": "02110", "phone": "5551234567"},
        "shipping_address": None,
        "items": [{"product_id": "1111", "sku": "WINNIEPOOH", "name": "Winnie the Pooh", "quantity": 1,
                   "price": 9.99, "total": 9.99, "url": "https://shop.example/p/1111",
                   "image_url": "https://shop.example/i/1111.png", "categories": ["Fiction", "Children"],
                   "brand": "Kids Books"},
                  {"product_id": "2222", "sku": "PIGLET", "name": "Piglet", "quantity": 2, "price": 9.995}],
        "fulfilled_at": None, "cancelled_at": None, "refunded_at": None, "refunded_amount": None, "reason": None,
    }
    order.update(copy.deepcopy(changes))
    return order


def problems(payload: Any) -> dict[str, str]:
    """path → message of every problem parse_orders_payload reports (fails if it accepts the payload)."""
    with pytest.raises(ApiError) as caught:
        parse_orders_payload(payload)
    assert caught.value.status == 422
    return {error["path"]: error["message"] for error in caught.value.errors}


def with_customer(**changes: Any) -> dict[str, Any]:
    return canonical_order(customer={**canonical_order()["customer"], **changes})


def with_item(index: int, **changes: Any) -> dict[str, Any]:
    items = canonical_order()["items"]
    items[index] = {**items[index], **changes}
    return canonical_order(items=items)


def test_design_example_is_accepted_and_round_trips_to_canonical_json() -> None:
    [order] = parse_orders_payload(canonical_order())

    data = order_to_canonical_json(order)

    assert list(data) == list(canonical_order())
    assert data["placed_at"] == "2026-11-20T10:15:00Z"
    assert data["total"] == 29.98 and data["tax"] == 0 and isinstance(data["tax"], int)
    assert data["discount"] == {"code": "Free Shipping", "value": 5}
    assert data["items"][0]["total"] == 9.99
    assert data["items"][1]["total"] == 19.99  # computed from price × quantity
    assert set(data["items"][1]) == set(data["items"][0])
    assert data["billing_address"]["zip"] == "02110"


def test_money_is_decimal_without_binary_noise() -> None:
    [order] = parse_orders_payload(canonical_order(total=0.1, subtotal=1234.5678901))

    assert order.total == Decimal("0.1")
    assert str(order.total) == "0.1"
    assert order.subtotal == Decimal("1234.5679")  # rounded to the column's 4 places
    assert order.items[1].total == Decimal("19.990")


@pytest.mark.parametrize("value", ["29.98", "", "1e3"])
def test_money_as_string_is_rejected_with_a_hint(value: str) -> None:
    assert problems(canonical_order(total=value)) == {"total": NOT_A_STRING}


@pytest.mark.parametrize(("value", "message"), [
    (True, "must be a number"),
    (None, "must be a number"),
    ([1], "must be a number"),
    (-0.01, "must not be negative"),
    (float("inf"), "must be a finite number"),
    (1e12, "must be less than 1000000000000"),
])
def test_money_must_be_a_finite_non_negative_number(value: Any, message: str) -> None:
    assert problems(canonical_order(total=value)) == {"total": message}


def test_every_bad_field_is_reported_with_its_path() -> None:
    order = canonical_order(
        id="", status="shipped", currency="dollars", placed_at="2026-11-20T10:15:00",
        fulfilled_at=1700000000, tax="0", discount={"code": "X", "value": "5"},
        billing_address={"city": ["Boston"]},
        customer={"email": "not-an-email", "accepts_marketing": "maybe"},
        items=[{"name": "Book", "quantity": 1, "price": 1}, {"sku": 7, "name": "", "quantity": 0, "price": 1},
               {"name": "Pen", "quantity": 1.5, "price": "2"}],
    )

    found = problems(order)

    assert found.keys() == {
        "id", "status", "currency", "placed_at", "fulfilled_at", "tax", "discount.value", "billing_address.city",
        "customer.email", "customer.accepts_marketing", "items.1.name", "items.1.quantity",
        "items.2.quantity", "items.2.price",
    }
    assert found["id"] == "must not be empty"
    assert found["status"] == ("must be one of: pending, placed, fulfilled, cancelled, refunded or "
                               "partially_refunded")
    assert found["currency"] == "must be a 3-letter ISO 4217 currency code, e.g. USD"
    assert found["placed_at"] == NEEDS_OFFSET
    assert found["fulfilled_at"] == "must be an ISO 8601 timestamp, e.g. 2026-11-20T10:15:00Z"
    assert found["tax"] == found["discount.value"] == found["items.2.price"] == NOT_A_STRING
    assert found["billing_address.city"] == "must be a string"
    assert found["customer.email"].startswith("not a valid email address")
    assert found["customer.accepts_marketing"] == "must be true or false"
    assert found["items.1.quantity"] == "must be greater than 0"
    assert found["items.2.quantity"] == "must be a whole number"


def test_missing_required_fields_are_named() -> None:
    order = canonical_order()
    for name in ("id", "status", "placed_at", "currency", "total", "customer", "items"):
        del order[name]
    order["shipping_address"] = {"zip": "1"}

    assert problems(order) == dict.fromkeys(
        ["id", "status", "placed_at", "currency", "total", "customer", "items"], "field required")


def test_items_need_at_least_one_line_with_name_quantity_and_price() -> None:
    assert problems(canonical_order(items=[])) == {"items": "must have at least 1 item(s)"}
    assert problems(canonical_order(items=[{}])) == {
        "items.0.name": "field required", "items.0.quantity": "field required", "items.0.price": "field required"}


@pytest.mark.parametrize("stamp", ["2026-11-20T10:15:00", "2026-11-20 10:15:00", "2026-11-20"])
def test_naive_timestamps_are_rejected_with_a_clear_message(stamp: str) -> None:
    assert problems(canonical_order(placed_at=stamp, refunded_at=stamp)) == {
        "placed_at": NEEDS_OFFSET, "refunded_at": NEEDS_OFFSET}


def test_timestamps_with_an_offset_are_stored_in_utc() -> None:
    [order] = parse_orders_payload(canonical_order(placed_at="2026-11-20T12:15:00+02:00",
                                                   fulfilled_at="2026-11-21T08:00:00.250-05:00"))

    assert order.placed_at == datetime(2026, 11, 20, 10, 15, tzinfo=UTC)
    data = order_to_canonical_json(order)
    assert data["placed_at"] == "2026-11-20T10:15:00Z"
    assert data["fulfilled_at"] == "2026-11-21T13:00:00.250000Z"


def test_timestamp_that_overflows_when_converted_to_utc_is_a_validation_error() -> None:
    assert problems(canonical_order(placed_at="9999-12-31T23:00:00-05:00")) == {
        "placed_at": "timestamp is out of range"}


def test_emails_are_trimmed_and_lower_cased_phones_trimmed() -> None:
    [order] = parse_orders_payload(with_customer(email="  John.Smith@Example.COM ", phone=" +1 555 123 "))

    assert order.customer.email == "john.smith@example.com"
    assert order.customer.phone == "+1 555 123"


def test_customer_needs_an_email_phone_or_id() -> None:
    bare = {"first_name": "John", "email": "", "phone": "  ", "id": None}

    assert problems(canonical_order(customer=bare)) == {"customer": "needs at least one of email, phone or id"}
    for reachable in ({"email": "a@example.com"}, {"phone": "+15551234567"}, {"id": 77}):
        [order] = parse_orders_payload(canonical_order(customer={**bare, **reachable}))
        assert order.customer.id in (None, "77")


def test_ids_may_be_numbers_and_are_kept_as_text() -> None:
    [order] = parse_orders_payload(with_item(0, product_id=1111, sku=None) | {"id": 1234})

    assert order.id == "1234"
    assert order.items[0].product_id == "1111"
    assert problems(canonical_order(id=True)) == {"id": "must be a string"}


def test_currency_and_status_are_normalised() -> None:
    [order] = parse_orders_payload(canonical_order(currency=" usd", status="Fulfilled"))

    assert (order.currency, order.status) == ("USD", "fulfilled")


def test_refunded_amount_rules() -> None:
    [full] = parse_orders_payload(canonical_order(status="refunded"))
    [partial] = parse_orders_payload(canonical_order(status="partially_refunded", refunded_amount=10))

    assert full.refunded_amount == Decimal("29.98")
    assert partial.refunded_amount == Decimal(10)
    assert problems(canonical_order(status="partially_refunded")) == {
        "refunded_amount": "required when status is partially_refunded"}
    assert problems(canonical_order(status="partially_refunded", refunded_amount=0)) == {
        "refunded_amount": "must be greater than 0 when status is partially_refunded"}
    assert problems(canonical_order(status="refunded", refunded_amount=30)) == {
        "refunded_amount": "must not exceed the order total (29.98)"}


def test_unknown_fields_are_ignored() -> None:
    [order] = parse_orders_payload(canonical_order(loyalty_points=12, customer={"id": "c", "tier": "gold"}))

    assert "loyalty_points" not in order_to_canonical_json(order)


def test_batch_paths_are_prefixed_with_the_order_index() -> None:
    batch = {"orders": [canonical_order(id="1"), with_item(1, quantity=-1) | {"id": "2"},
                        canonical_order(id="3", total="1")]}

    assert problems(batch) == {"orders.1.items.1.quantity": "must be greater than 0", "orders.2.total": NOT_A_STRING}


def test_batch_of_valid_orders_keeps_their_order() -> None:
    orders = parse_orders_payload({"orders": [canonical_order(id=str(n)) for n in range(5)]})

    assert [order.id for order in orders] == ["0", "1", "2", "3", "4"]


def test_batch_size_limits() -> None:
    too_many = [canonical_order(id=str(n)) for n in range(MAX_ORDERS_PER_REQUEST + 1)]

    assert problems({"orders": too_many}) == {"orders": "at most 1000 orders per request (1001 sent)"}
    assert problems({"orders": []}) == {"orders": "must contain at least one order"}
    assert problems({"orders": {"id": "1"}}) == {"orders": "must be a list of orders"}
    assert len(parse_orders_payload({"orders": too_many[:MAX_ORDERS_PER_REQUEST]})) == MAX_ORDERS_PER_REQUEST


def test_duplicate_ids_in_a_batch_name_both_indexes() -> None:
    batch = {"orders": [canonical_order(id="A"), canonical_order(id="B"), canonical_order(id=" A ")]}

    assert problems(batch) == {"orders.2.id": "duplicate order id 'A': orders.0 and orders.2 have the same id"}


@pytest.mark.parametrize("body", [None, [], [canonical_order()], "order", 12])
def test_body_must_be_an_object(body: Any) -> None:
    assert problems(body) == {"": 'the body must be a JSON object: one order, or {"orders": [...]}'}


def test_a_bad_order_in_a_batch_fails_the_whole_batch() -> None:
    with pytest.raises(ApiError) as caught:
        parse_orders_payload({"orders": [canonical_order(id="1"), {"id": "2"}]})

    assert all(error["path"].startswith("orders.1.") for error in caught.value.errors)


def test_line_keys_prefer_sku_then_product_id_then_position_and_are_unique() -> None:
    items = CanonicalOrder.model_validate(canonical_order(items=[
        {"sku": "A", "product_id": "p1", "name": "a", "quantity": 1, "price": 1},
        {"product_id": "p2", "name": "b", "quantity": 1, "price": 1},
        {"name": "c", "quantity": 1, "price": 1},
        {"sku": "A", "name": "a again", "quantity": 1, "price": 1},
        {"sku": "A", "name": "a thrice", "quantity": 1, "price": 1},
        {"sku": "A-2", "name": "clashes with a generated key", "quantity": 1, "price": 1},
    ])).items

    assert [line_key(item, index) for index, item in enumerate(items)] == ["A", "p2", "2", "A", "A", "A-2"]
    assert line_keys(items) == ["A", "p2", "2", "A-2", "A-3", "A-2-2"]


def test_batch_model_publishes_a_json_schema_with_money_as_numbers() -> None:
    schema = OrderBatch.model_json_schema()

    order = schema["$defs"]["CanonicalOrder"]
    assert order["properties"]["total"]["type"] == "number"
    assert order["properties"]["total"]["minimum"] == 0
    assert schema["properties"]["orders"]["maxItems"] == MAX_ORDERS_PER_REQUEST


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
order_keys = st.sampled_from(list(canonical_order()) + ["orders", "name", "quantity", "price", "email"])
junk_orders = st.dictionaries(order_keys, json_values, max_size=12)
mutated_orders = st.builds(lambda changes: canonical_order(**changes),
                           st.dictionaries(st.sampled_from(list(canonical_order())), json_values, max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, junk_orders, mutated_orders,
                 st.builds(lambda orders: {"orders": orders}, st.lists(junk_orders | mutated_orders, max_size=4))))
def test_junk_never_raises_anything_but_api_error(payload: Any) -> None:
    try:
        orders = parse_orders_payload(payload)
    except ApiError as exc:
        assert exc.status == 422 and exc.errors
        assert all(isinstance(e["path"], str) and isinstance(e["message"], str) and e["message"]
                   for e in exc.errors)
    else:
        assert orders and all(isinstance(order, CanonicalOrder) for order in orders)
        for order in orders:
            order_to_canonical_json(order)

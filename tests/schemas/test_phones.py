"""Phones in E.164 (issue 17): one spelling per number; a phone that is not a number is kept with a warning."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import make_order
from webapp.schemas.canonical.orders import CanonicalOrder
from webapp.schemas.canonical.phones import clean_phones, is_e164, phone_region, to_e164
from webapp.settings import SettingsError, load_settings

US = "+14155550123"


@pytest.mark.parametrize(("raw", "region"), [
    ("(415) 555-0123", "US"), ("+1 415-555-0123", None), ("415.555.0123", "US"), ("+1 415-555-0123", "GB"),
    ("001 415 555 0123", None), ("011 1 415 555 0123", "US"), (" 4155550123 ", "us"), (14155550123, "US"),
])
def test_one_number_typed_many_ways_is_one_e164(raw: object, region: str | None) -> None:
    assert to_e164(raw, region) == US


@pytest.mark.parametrize(("raw", "region"), [
    ("415.555.0123", None),   # national number, no region to read it in
    ("+15551234567", None),   # 555 is not an area code
    ("555-1234", "US"), ("call me", "US"), ("", "US"), (None, "US"), (True, "US"), ("+" + "1" * 70, None),
    ("415.555.0123", "XX"),   # an unknown region is no region
])
def test_what_is_not_a_valid_number_is_none(raw: object, region: str | None) -> None:
    assert to_e164(raw, region) is None


def test_is_e164_only_for_valid_numbers_in_e164() -> None:
    assert is_e164(US) and is_e164("+442079460958")
    assert not is_e164("+1 415-555-0123") and not is_e164("4155550123") and not is_e164("+15551234567")
    assert not is_e164(None) and not is_e164(14155550123)


def test_phone_region_takes_known_codes_in_any_case() -> None:
    assert phone_region(" us ") == "US" and phone_region("USA") is None and phone_region(None) is None


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.text(max_size=60), st.text(alphabet="+0123456789 ()-.x#*", max_size=40),
                     st.integers(), st.none(), st.floats()),
       region=st.one_of(st.none(), st.sampled_from(["US", "GB", "DE", "zz", "", "001"]), st.text(max_size=4)))
def test_to_e164_never_raises_and_answers_e164_or_none(raw: object, region: str | None) -> None:
    result = to_e164(raw, region)
    assert result is None or is_e164(result)


def _order(**customer: object) -> CanonicalOrder:
    order = make_order()
    order["customer"] = {"email": "a@example.com"} | customer
    return CanonicalOrder.model_validate(order)


def test_region_comes_from_billing_then_shipping_then_the_default() -> None:
    order = _order(phone="020 7946 0958")
    order.billing_address.country_code, order.shipping_address.country_code = None, "GB"
    order.billing_address.phone = order.shipping_address.phone = None
    assert clean_phones(order, "US") == [] and order.customer.phone == "+442079460958"
    order = _order(phone="(415) 555-0123")
    order.billing_address = order.shipping_address = None
    assert clean_phones(order, "US") == [] and order.customer.phone == US


def test_address_phones_use_their_own_country() -> None:
    order = _order(phone=US)
    order.billing_address.phone, order.billing_address.country_code = "030 1234567", "DE"
    order.shipping_address.phone = "(415) 555-0123"
    assert clean_phones(order) == []
    assert order.billing_address.phone == "+49301234567" and order.shipping_address.phone == US


def test_an_invalid_phone_is_kept_as_given_with_a_warning_naming_the_field() -> None:
    order = _order(phone="not-a-phone 12")
    order.billing_address = order.shipping_address = None
    warnings = clean_phones(order, None, ("orders", 3))
    assert order.customer.phone == "not-a-phone 12"
    assert [w["path"] for w in warnings] == ["orders.3.customer.phone"]
    assert "not used for SMS" in warnings[0]["message"]


def test_default_phone_region_setting() -> None:
    assert load_settings({})["DEFAULT_PHONE_REGION"] is None
    assert load_settings({"SHOPRELAY_DEFAULT_PHONE_REGION": "gb"})["DEFAULT_PHONE_REGION"] == "GB"
    with pytest.raises(SettingsError, match="SHOPRELAY_DEFAULT_PHONE_REGION"):
        load_settings({"SHOPRELAY_DEFAULT_PHONE_REGION": "USA"})

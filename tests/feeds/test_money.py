from decimal import Decimal

import pytest

from feeds.money import parse_money


@pytest.mark.parametrize(("text", "amount", "currency"), [
    ("1,299.00", "1299.00", None),
    ("1.299,00", "1299.00", None),
    ("9.99 USD", "9.99", "USD"),
    ("9.99USD", "9.99", "USD"),
    ("$9.99", "9.99", "USD"),
    ("USD 9.99", "9.99", "USD"),
    ("€ 12,50", "12.50", "EUR"),
    ("12,50 €", "12.50", "EUR"),
    ("1 299,00 €", "1299.00", "EUR"),
    ("£1,000,000.5", "1000000.5", "GBP"),
    ("15.00 usd", "15.00", "USD"),
    ("C$ 5", "5", "CAD"),
    ("1,299", "1299", None),
    ("0,125", "0.125", None),
    ("1.299.000", "1299000", None),
    ("45", "45", None),
    ("-$9.99", "-9.99", "USD"),
    ("0.1", "0.1", None),
])
def test_reads_store_written_prices(text, amount, currency):
    assert parse_money(text) == (Decimal(amount), currency)


def test_numbers_keep_exact_decimals():
    assert parse_money(9.99) == (Decimal("9.99"), None)
    assert parse_money(12) == (Decimal("12"), None)
    assert parse_money(Decimal("1.10"), "EUR") == (Decimal("1.10"), "EUR")


def test_default_currency_fills_in_and_dollar_follows_it():
    assert parse_money("5", "EUR") == (Decimal("5"), "EUR")
    assert parse_money("$5", "CAD") == (Decimal("5"), "CAD")
    assert parse_money("$5", "EUR") == (Decimal("5"), "USD")
    assert parse_money("5 GBP", "EUR") == (Decimal("5"), "GBP")


def test_blank_is_no_price():
    assert parse_money("  ") == (None, None)
    assert parse_money(None, "USD") == (None, "USD")


@pytest.mark.parametrize("junk", ["abc", "free", "12 abc", "1,2,3", "1,29.00", "--5", "12.", "USD 9.99 EUR",
                                  True, float("nan"), "9.99 XYZ"])
def test_junk_raises_a_clear_value_error(junk):
    with pytest.raises(ValueError, match="price|currenc"):
        parse_money(junk)

"""Read prices the way stores write them: "1,299.00", "1.299,00", "9.99 USD", "€ 12,50", JSON numbers.

Values stay exact `Decimal`s; rounding to a currency's minor unit is the writer's business.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# Symbols that name one currency. "$" is special-cased below because several currencies use it.
_SYMBOLS: dict[str, str] = {
    "US$": "USD", "C$": "CAD", "CA$": "CAD", "A$": "AUD", "AU$": "AUD", "NZ$": "NZD", "HK$": "HKD",
    "S$": "SGD", "R$": "BRL", "MX$": "MXN", "€": "EUR", "£": "GBP", "¥": "JPY", "₴": "UAH", "₽": "RUB",
    "₹": "INR", "₩": "KRW", "₺": "TRY", "₪": "ILS", "zł": "PLN", "kč": "CZK", "грн": "UAH", "руб": "RUB",
}
_DOLLAR_CURRENCIES = frozenset({"USD", "CAD", "AUD", "NZD", "HKD", "SGD", "MXN", "TWD"})

# ISO 4217 codes in use, so "12 abc" is junk rather than a price in currency "ABC".
_ISO_CODE_LIST = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD
CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ
GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR
LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB
TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL
"""
_ISO_CODES = frozenset(_ISO_CODE_LIST.split())

_SPACES = re.compile(r"[\s\u00a0\u2009\u202f']")
_SHAPE = re.compile(r"^(?P<before>[^\d+\-.,]*?)\s*(?P<sign>[-+]?)\s*(?P<number>\d[\d.,\s\u00a0\u2009\u202f']*)"
                    r"(?P<after>[^\d]*)$")


def parse_money(text: object, default_currency: str | None = None) -> tuple[Decimal | None, str | None]:
    """Return (amount, currency) from a price as a store wrote it.

    Blank input gives (None, default_currency). The sign is kept: whether a negative price is an error
    is the caller's decision. Raises ValueError naming the text when it is not a price.
    """
    if text is None:
        return None, default_currency
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a price")
    if isinstance(text, int):
        return Decimal(text), default_currency
    if isinstance(text, float):
        if text != text or text in (float("inf"), float("-inf")):
            raise ValueError(f"{text!r} is not a price")
        return Decimal(repr(text)), default_currency
    if isinstance(text, Decimal):
        if not text.is_finite():
            raise ValueError(f"{text!r} is not a price")
        return text, default_currency
    raw = str(text).strip()
    if not raw:
        return None, default_currency
    negative = raw.startswith("-")  # "-$9.99" as well as "$-9.99"
    match = _SHAPE.match(raw[1:].lstrip() if negative else raw)
    if match is None:
        raise ValueError(f"cannot read a price from {raw!r}")
    currency = _currency(match["before"], match["after"], raw, default_currency)
    amount = _amount(match["number"], raw)
    if negative and match["sign"]:
        raise ValueError(f"cannot read a price from {raw!r}")
    return (-amount if negative or match["sign"] == "-" else amount), currency


def _currency(before: str, after: str, raw: str, default: str | None) -> str | None:
    """Currency named before or after the number; both sides naming different ones is an error."""
    found = [code for code in (_currency_token(before, raw, default), _currency_token(after, raw, default))
             if code]
    if len(set(found)) > 1:
        raise ValueError(f"{raw!r} names two currencies")
    return found[0] if found else default


def _currency_token(token: str, raw: str, default: str | None) -> str | None:
    token = token.strip()
    if not token:
        return None
    if token == "$":
        return default if default in _DOLLAR_CURRENCIES else "USD"
    if token.upper() in _ISO_CODES:
        return token.upper()
    code = _SYMBOLS.get(token) or _SYMBOLS.get(token.lower())
    if code is None:
        raise ValueError(f"cannot read a price from {raw!r}: unknown currency {token!r}")
    return code


def _amount(number: str, raw: str) -> Decimal:
    """Digits with thousands separators and a decimal mark in either European or English style."""
    digits = _SPACES.sub("", number)
    commas, dots = digits.count(","), digits.count(".")
    if commas and dots:
        decimal_mark = "," if digits.rfind(",") > digits.rfind(".") else "."
    elif commas:
        # "1,299" and "1,299,000" group thousands; "12,50" and "0,125" use a decimal comma.
        head, _, tail = digits.rpartition(",")
        grouped = commas > 1 or (len(tail) == 3 and head.lstrip("0") != "")
        decimal_mark = "." if grouped else ","
    elif dots > 1:
        decimal_mark = ","  # "1.299.000" groups thousands
    else:
        decimal_mark = "."  # "1.299" is read as a decimal: machine-written feeds use the dot
    separator = "." if decimal_mark == "," else ","
    whole, mark, fraction = digits.rpartition(decimal_mark) if decimal_mark in digits else (digits, "", "")
    groups = whole.split(separator)
    if len(groups) > 1 and not (1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])):
        raise ValueError(f"cannot read a price from {raw!r}: misplaced thousands separator")
    whole = "".join(groups)
    if not whole.isdigit() or (mark and not fraction.isdigit()):
        raise ValueError(f"cannot read a price from {raw!r}")
    try:
        return Decimal(f"{whole}.{fraction}" if mark else whole)
    except InvalidOperation as exc:  # pragma: no cover - the checks above admit digits only
        raise ValueError(f"cannot read a price from {raw!r}") from exc

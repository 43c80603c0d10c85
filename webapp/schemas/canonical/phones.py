"""Phones in E.164 (`+14155550123`): one spelling per number, so one customer stays one contact and SMS
consent reaches the platforms with a number they accept (issue 17).

A phone that is not a valid number never rejects the order: it is kept as the store sent it, is not used for
SMS (`is_e164` is false for it) and the answer carries a warning naming the field. The region that reads a
national number ("(415) 555-0123") comes from the address's `country_code`, else from
SHOPRELAY_DEFAULT_PHONE_REGION; without either, only numbers with a leading `+` or `00` parse.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import phonenumbers
from pydantic import BaseModel

_E164 = re.compile(r"\+[1-9]\d{1,14}")
_MAX_INPUT = 64  # the schema caps phones at 40 characters; anything longer is not a phone


def phone_region(value: Any) -> str | None:
    """`value` as a region phonenumbers knows ("us" → "US"), else None (so a bad country code only
    loses the hint, it never fails the order)."""
    if not isinstance(value, str):
        return None
    region = value.strip().upper()
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def to_e164(raw: Any, region: str | None = None) -> str | None:
    """`raw` as an E.164 number when it is a valid phone number, else None; never raises.

    `region` (ISO 3166 alpha-2) reads national numbers; without it a number needs `+` or `00` in front.
    """
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not text or len(text) > _MAX_INPUT:
        return None
    return _e164(text, phone_region(region))


@functools.lru_cache(maxsize=65536)
def _e164(text: str, region: str | None) -> str | None:
    """Cached: parsing costs ~60 µs, and the same phone comes back (billing, shipping, repeat customers)."""
    if region is None and text.startswith("00"):
        text = "+" + text[2:]  # the international prefix most of the world dials
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164 if _E164.fullmatch(e164) else None  # metadata may allow more than E.164's 15 digits


def is_e164(value: Any) -> bool:
    """True when `value` is a valid number already written in E.164: the only phones that may carry SMS."""
    return isinstance(value, str) and _E164.fullmatch(value) is not None and to_e164(value) == value


def clean_phones(model: BaseModel, default_region: str | None = None,
                 prefix: tuple[str | int, ...] = ()) -> list[dict[str, str]]:
    """Rewrite the phones of a validated CanonicalOrder or CanonicalCheckout in E.164, in place.

    Returns a warning (`{"path", "message"}`, paths under `prefix`) for each phone that is not a valid
    number; that phone stays as given.
    """
    billing = getattr(model, "billing_address", None)
    shipping = getattr(model, "shipping_address", None)
    address_regions = [phone_region(getattr(address, "country_code", None)) for address in (billing, shipping)]
    warnings: list[dict[str, str]] = []
    customer = getattr(model, "customer", None)
    if customer is not None:
        _clean(customer, [*address_regions, phone_region(default_region)], (*prefix, "customer"), warnings,
               sms=True)
    for name, address in (("billing_address", billing), ("shipping_address", shipping)):
        if address is not None:
            own = phone_region(address.country_code)
            _clean(address, [own, *address_regions, phone_region(default_region)], (*prefix, name), warnings,
                   sms=False)
    return warnings


def _clean(holder: Any, regions: list[str | None], path: tuple[str | int, ...], warnings: list[dict[str, str]],
           *, sms: bool) -> None:
    raw = holder.phone
    if not raw:
        return
    region = next((region for region in regions if region), None)
    number = to_e164(raw, region)
    if number is not None:
        holder.phone = number
        return
    if str(raw).lstrip().startswith("+"):
        how = ""
    elif region:
        how = f" in region {region}"
    else:
        how = " (no region to read it in: send it with + and the country code, or the address's country_code)"
    use = "stored as given and not used for SMS" if sms else "stored as given"
    warnings.append({"path": ".".join(str(part) for part in (*path, "phone")),
                     "message": f"not a valid phone number{how}; {use}"})

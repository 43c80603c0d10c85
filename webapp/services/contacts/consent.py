"""Marketing consent per channel (email, SMS): what the customer said, when, where, and the events it makes.

Consent is never guessed: a value the store did not send (null / absent) leaves the stored one alone, and a
"no" from someone never heard from before sends nothing (there is nothing to withdraw). SMS consent belongs
to a phone number, so it is taken only with a phone in E.164 (webapp.schemas.canonical.phones.is_e164): a number the
platforms would refuse cannot be subscribed, and the order answer already warns about it.

Each changed channel is one `consent_change` event (outbox, retries, logs like any other), so a subscribe
on one channel and a withdrawal on the other never share a request; adapters merge a contact's channels
into one platform profile where the platform takes them together (Klaviyo's subscription jobs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webapp.models import Contact

CHANNELS = ("email", "sms")
SOURCES = ("order", "checkout", "onsite", "import")
# Contact columns per channel: (value, changed at, source)
COLUMNS = {"email": ("accepts_marketing", "consent_changed_at", "email_consent_source"),
           "sms": ("accepts_sms_marketing", "sms_consent_changed_at", "sms_consent_source")}


@dataclass(frozen=True)
class ConsentChange:
    """One channel's consent moved to `subscribed` at `at`, said through `source`."""

    channel: str
    subscribed: bool
    at: datetime
    source: str

    def as_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "subscribed": self.subscribed, "at": self.at.isoformat(),
                "source": self.source}


def sms_usable(phone: str | None) -> bool:
    """A phone that may carry SMS consent: a valid number written in E.164."""
    from webapp.schemas.canonical.phones import is_e164  # phonenumbers' metadata loads on first use

    return bool(phone) and is_e164(phone)


def apply_consent(contact: Contact, said: dict[str, bool | None], at: datetime, source: str) -> list[ConsentChange]:
    """Store what the customer said per channel (`said`: channel → true/false/None) and return the changes
    that platforms must hear about."""
    if source not in SOURCES:
        raise ValueError(f"consent source must be one of {', '.join(SOURCES)}")
    changes = []
    for channel in CHANNELS:
        value = said.get(channel)
        if value is None or (channel == "sms" and not sms_usable(contact.phone)):
            continue
        value_column, at_column, source_column = COLUMNS[channel]
        before = getattr(contact, value_column)
        if before == value:
            continue
        setattr(contact, value_column, value)
        setattr(contact, at_column, at)
        setattr(contact, source_column, source)
        if before is not None or value:
            changes.append(ConsentChange(channel, value, at, source))
    return changes


def consent_unique_id(contact_id: int | None, change: ConsentChange) -> str:
    """Stable per (contact, channel, value, time): a re-sent order makes no second event. Email keeps the
    form it had before SMS existed, so events already written are not written again."""
    value = "subscribed" if change.subscribed else "unsubscribed"
    channel = "" if change.channel == "email" else f"{change.channel}:"
    return f"{contact_id}:{channel}{value}:{change.at.isoformat()}"


def consent_payload(contact: dict[str, Any], change: ConsentChange) -> dict[str, Any]:
    """The event payload: the contact as events carry it, and the one channel that changed."""
    return {"contact": contact, "consent": change.as_json()}


def consent_state(contact: Contact) -> list[dict[str, Any]]:
    """Per channel: the value, when and where it was said (for the contact page and the API)."""
    rows = []
    for channel in CHANNELS:
        value_column, at_column, source_column = COLUMNS[channel]
        rows.append({"channel": channel, "subscribed": getattr(contact, value_column),
                     "at": getattr(contact, at_column), "source": getattr(contact, source_column)})
    return rows

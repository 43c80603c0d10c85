"""Klaviyo consent and privacy: `consent_change` events as profile-subscription bulk jobs (email and SMS
channels), `contact_erased` as a data-privacy deletion job.

Klaviyo takes both channels of one person in one profile entry of a subscribe job, and refuses SMS consent
for a phone that is not E.164 (reference/platforms.md §4, §9). Events written before SMS existed carry no
`consent` part: they are the email channel, with the contact's `accepts_marketing` as the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workers.destinations.base import OutboundEvent, event_contact, parse_time, text_or_none
from workers.destinations.klaviyo_payloads import E164


@dataclass(frozen=True, slots=True)
class Consent:
    channel: str  # email | sms
    subscribed: bool
    at: datetime


def consent_of(event: OutboundEvent) -> Consent:
    """The channel, value and time an event says."""
    consent = event.payload.get("consent")
    if isinstance(consent, dict) and consent.get("channel"):
        return Consent(str(consent["channel"]), bool(consent.get("subscribed")),
                       parse_time(consent.get("at"), event.occurred_at))
    return Consent("email", bool(event_contact(event.payload).get("accepts_marketing")), event.occurred_at)


def _email(event: OutboundEvent) -> str | None:
    return text_or_none(event_contact(event.payload).get("email"))


def _phone(event: OutboundEvent) -> str | None:
    phone = text_or_none(event_contact(event.payload).get("phone"))
    return phone if phone and E164.match(phone) else None


def consent_problem(event: OutboundEvent) -> str | None:
    """Why Klaviyo cannot take this consent change (None when it can)."""
    channel = consent_of(event).channel
    if channel == "email":
        return None if _email(event) else "email consent needs an email address"
    if channel == "sms":
        return None if _phone(event) else "SMS consent needs a phone number in E.164 (+15551234567)"
    return f"Klaviyo has no {channel} consent channel shoprelay sends"


def consent_person(event: OutboundEvent) -> str:
    """Whom the consent is about: the email (lower-cased), else the phone."""
    email = _email(event)
    return f"email:{email.lower()}" if email else f"phone:{_phone(event)}"


def profile_entries(pairs: list[tuple[OutboundEvent, list[int]]], *,
                    historical: bool) -> list[tuple[dict[str, Any], list[int]]]:
    """One profile entry per person with every channel of `pairs` (all subscribing, or all withdrawing), and
    the ids of the events it carries. An SMS entry names the email too, so the number lands on that profile."""
    entries: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for event, chain in pairs:
        consent = consent_of(event)
        profile, ids = entries.setdefault(consent_person(event), ({"type": "profile", "attributes": {}}, []))
        attributes = profile["attributes"]
        email = _email(event)
        if email and (consent.channel == "email" or consent.subscribed):
            attributes["email"] = email
        if consent.channel == "sms":
            attributes["phone_number"] = _phone(event)
        marketing: dict[str, Any] = {"consent": "SUBSCRIBED" if consent.subscribed else "UNSUBSCRIBED"}
        if historical and consent.subscribed:  # Klaviyo wants the original consent time for imported consent
            marketing["consented_at"] = consent.at.isoformat()
        attributes.setdefault("subscriptions", {})[consent.channel] = {"marketing": marketing}
        ids += chain
    return [(profile, ids) for profile, ids in entries.values()]


def deletion_body(erasure: dict[str, Any]) -> dict[str, Any] | None:
    """A data-privacy deletion job for the person (by email, else by an E.164 phone): Klaviyo deletes the
    profile and everything recorded about it. None when neither is known."""
    email = text_or_none(erasure.get("email"))
    phone = next((p for p in erasure.get("phones") or [] if isinstance(p, str) and E164.match(p)), None)
    who = {"email": email} if email else {"phone_number": phone} if phone else None
    if who is None:
        return None
    return {"data": {"type": "data-privacy-deletion-job",
                     "attributes": {"profile": {"data": {"type": "profile", "attributes": who}}}}}

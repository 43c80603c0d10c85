"""The destination form: HTML form fields ↔ the API's DestinationCreate/DestinationUpdate bodies.

The dashboard validates through the same pydantic models and service as the API, so both say the
same thing about the same input; errors come back keyed by their dotted path (`credentials.api_key`)
and the form shows each next to its field. Credentials are write-only: never put back into a form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pydantic
from werkzeug.datastructures import MultiDict

from webapp.models import Destination
from webapp.schemas.destinations import EVENT_NAMES, DestinationCreate, DestinationUpdate
from webapp.schemas.errors import ApiError, error_list
from webapp.services.delivery.destinations import create_destination, kinds, update_destination

RATE_LIMIT_LABELS = {
    "burst_per_second": "Requests per second (burst)",
    "per_minute": "Requests per minute",
    "bulk_burst_per_second": "Bulk requests per second (burst)",
    "bulk_per_minute": "Bulk requests per minute",
}
CREDENTIAL_LABELS = {
    "api_key": "Private API key", "api_token": "API token", "integration_token": "Integration token",
    "url": "Webhook URL", "secret": "Signing secret",
}
KIND_ORDER = ("klaviyo", "sendlane", "esputnik", "webhook")  # the platforms first, the generic webhook last
KIND_BLURBS = {
    "klaviyo": "Placed / Ordered Product / Fulfilled / Cancelled / Refunded Order metrics through the Events API, "
               "plus profiles, consent, and the catalog (items, variants, categories) through its Catalog API.",
    "sendlane": "Ecommerce order events, contacts and products through Sendlane API v2.",
    "esputnik": "Orders and their status changes through the eSputnik (Yespo) orders API.",
    "webhook": "A signed JSON POST for every event to a URL you run: for anything else.",
}


@dataclass(frozen=True)
class KindInfo:
    kind: str
    label: str
    credential_fields: tuple[str, ...]
    events: tuple[str, ...]           # supported events, in the canonical order
    rate_limits: dict[str, float]     # documented defaults, bulk ones prefixed "bulk_"
    default_base_url: str


@dataclass
class DestinationForm:
    """What the template renders: the values to show (never secrets) and the errors by field path."""

    kind: KindInfo
    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    general_errors: list[str] = field(default_factory=list)


def kind_infos() -> dict[str, KindInfo]:
    infos = {}
    for kind, cls in kinds().items():
        limits = dict(cls.default_rate_limits)
        limits |= {f"bulk_{key}": value for key, value in (getattr(cls, "bulk_rate_limits", None) or {}).items()}
        infos[kind] = KindInfo(kind=kind, label=cls.label, credential_fields=tuple(cls.credential_fields),
                               events=tuple(name for name in EVENT_NAMES if name in cls.supported_events),
                               rate_limits=limits, default_base_url=cls.default_base_url)
    order = {kind: position for position, kind in enumerate(KIND_ORDER)}
    return dict(sorted(infos.items(), key=lambda item: order.get(item[0], len(order))))


def _number(value: Any) -> str:
    return "" if value is None else f"{float(value):g}"


def new_form(kind: str) -> DestinationForm:
    info = kind_infos()[kind]
    return DestinationForm(info, {
        "name": info.label if kind != "webhook" else "", "base_url": "", "mode": "realtime",
        "batch_interval_minutes": "30", "events": [], "enabled": True, "catalog": "off",
        "rate_limits": {key: _number(value) for key, value in info.rate_limits.items()}})


def edit_form(destination: Destination) -> DestinationForm:
    info = kind_infos()[destination.kind]
    limits = destination.rate_limits or {}
    return DestinationForm(info, {
        "name": destination.name, "base_url": destination.base_url or "", "mode": destination.mode,
        "batch_interval_minutes": str(destination.batch_interval_minutes),
        "events": list(destination.events or []), "enabled": destination.enabled, "catalog": destination.catalog,
        "rate_limits": {key: _number(limits.get(key, default)) for key, default in info.rate_limits.items()}})


def form_body(form: MultiDict, info: KindInfo, *, creating: bool) -> dict[str, Any]:
    """The JSON body the API would take for this form (blank inputs mean "default" / "keep")."""
    body: dict[str, Any] = {"name": form.get("name", ""), "base_url": form.get("base_url", ""),
                            "mode": form.get("mode", "realtime"), "enabled": form.get("enabled") == "1",
                            "events": form.getlist("events")}
    if form.get("catalog") in ("off", "api"):
        body["catalog"] = form["catalog"]
    if form.get("batch_interval_minutes", "").strip():
        body["batch_interval_minutes"] = form["batch_interval_minutes"].strip()
    credentials = {name: form.get(f"credentials.{name}", "") for name in info.credential_fields}
    if creating:
        body["kind"] = info.kind
        body["credentials"] = credentials
    elif any(credentials.values()):
        body["credentials"] = {name: value for name, value in credentials.items() if value}
    limits = {key: form.get(f"rate_limits.{key}", "").strip() for key in info.rate_limits}
    limits = {key: value for key, value in limits.items() if value}
    if limits:
        body["rate_limits"] = limits
    return body


def _echo(form: MultiDict, info: KindInfo) -> dict[str, Any]:
    """What the user typed, to show again after an error; credentials are left out on purpose."""
    return {"name": form.get("name", ""), "base_url": form.get("base_url", ""),
            "mode": form.get("mode", "realtime"), "batch_interval_minutes": form.get("batch_interval_minutes", ""),
            "events": form.getlist("events"), "enabled": form.get("enabled") == "1",
            "catalog": form.get("catalog", "off"),
            "rate_limits": {key: form.get(f"rate_limits.{key}", "") for key in info.rate_limits}}


def _with_errors(form: MultiDict, info: KindInfo, problems: list[dict[str, str]]) -> DestinationForm:
    fields = {"name", "base_url", "mode", "batch_interval_minutes", "events", "enabled", "catalog"}
    fields |= {f"credentials.{name}" for name in info.credential_fields}
    fields |= {f"rate_limits.{key}" for key in info.rate_limits}
    result = DestinationForm(info, _echo(form, info))
    for item in problems:
        path = item["path"]
        if path.startswith("events."):
            path = "events"
        if path in fields:
            result.errors.setdefault(path, item["message"])
        else:
            result.general_errors.append(f"{path}: {item['message']}" if path else item["message"])
    return result


def save_new(form: MultiDict, kind: str) -> tuple[Destination | None, DestinationForm | None]:
    """Create from the form: (destination, None) or (None, the form with its errors)."""
    info = kind_infos()[kind]
    try:
        data = DestinationCreate.model_validate(form_body(form, info, creating=True))
        return create_destination(data), None
    except pydantic.ValidationError as exc:
        return None, _with_errors(form, info, error_list(exc))
    except ApiError as exc:
        return None, _with_errors(form, info, exc.errors)


def save_changes(destination: Destination, form: MultiDict) -> DestinationForm | None:
    """Apply the form to a destination: None when saved, else the form with its errors."""
    info = kind_infos()[destination.kind]
    try:
        data = DestinationUpdate.model_validate(form_body(form, info, creating=False))
        update_destination(destination, data)
        return None
    except pydantic.ValidationError as exc:
        return _with_errors(form, info, error_list(exc))
    except ApiError as exc:
        from webapp.extensions import db

        db.session.rollback()  # the service may have set attributes before it refused
        return _with_errors(form, info, exc.errors)

"""The channel form: HTML form fields ↔ the API's ChannelCreate / ChannelUpdate bodies, validated by the same
models and service as the API (so both say the same about the same input). The URL is write-only: it is never
put back into a form; on an edit, a blank URL keeps the saved one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pydantic
from werkzeug.datastructures import MultiDict

from webapp.models import AlertChannel
from webapp.schemas.alerts import ALERT_EVENTS, ChannelCreate, ChannelUpdate
from webapp.schemas.errors import ApiError, error_list
from webapp.services.alerts.channels import create_channel, update_channel


@dataclass
class ChannelForm:
    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)


def new_form() -> ChannelForm:
    return ChannelForm({"name": "", "events": list(ALERT_EVENTS), "enabled": True})


def edit_form(channel: AlertChannel) -> ChannelForm:
    return ChannelForm({"name": channel.name, "events": list(channel.events or []), "enabled": channel.enabled})


def _body(form: MultiDict, *, new: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"name": form.get("name", ""), "events": form.getlist("events"),
                            "enabled": form.get("enabled") == "1"}
    url = form.get("url", "").strip()
    if url or new:
        body["url"] = url
    return body


def _errors(exc: pydantic.ValidationError | ApiError) -> dict[str, str]:
    problems = exc.errors if isinstance(exc, ApiError) else error_list(exc)
    errors: dict[str, str] = {}
    for item in problems:
        errors.setdefault(item["path"] or "name", item["message"])
    return errors


def save_new(form: MultiDict) -> tuple[AlertChannel | None, ChannelForm]:
    body = _body(form, new=True)
    try:
        return create_channel(ChannelCreate.model_validate(body)), ChannelForm(body)
    except (pydantic.ValidationError, ApiError) as exc:
        return None, ChannelForm(body | {"url": None}, _errors(exc))


def save_changes(channel: AlertChannel, form: MultiDict) -> ChannelForm | None:
    """None when saved; the form with its errors otherwise."""
    body = _body(form, new=False)
    try:
        update_channel(channel, ChannelUpdate.model_validate(body))
    except (pydantic.ValidationError, ApiError) as exc:
        return ChannelForm(body | {"url": None}, _errors(exc))
    return None

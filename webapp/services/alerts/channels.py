"""Alert channels: create / update / delete with their Apprise URL checked by apprise itself and encrypted at
rest (the URL holds passwords and tokens: it is shown back as scheme and host only), and their JSON shape."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import AlertChannel, AlertNotice
from webapp.schemas.alerts import ChannelCreate, ChannelUpdate
from webapp.schemas.errors import ApiError, problem
from webapp.services.alerts import apprise_urls
from webapp.services.platform.crypto import encrypt_json
from webapp.services.platform.jsonutil import iso


def _parsed(url: str) -> apprise_urls.Parsed:
    parsed, why = apprise_urls.parse(url)
    if parsed is None:
        raise ApiError(422, [problem(["url"], why or "apprise cannot use this URL")])
    return parsed


def create_channel(data: ChannelCreate) -> AlertChannel:
    parsed = _parsed(data.url)
    channel = AlertChannel(name=data.name, url_encrypted=encrypt_json({"url": data.url.strip()}),
                           url_hint=parsed.hint, service=parsed.service, events=list(data.events),
                           enabled=data.enabled)
    db.session.add(channel)
    db.session.commit()
    return channel


def update_channel(channel: AlertChannel, data: ChannelUpdate) -> AlertChannel:
    """Changes what the body names; a new URL clears the channel's failure (it is another address now)."""
    if data.url is not None:
        parsed = _parsed(data.url)
        channel.url_encrypted = encrypt_json({"url": data.url.strip()})
        channel.url_hint, channel.service = parsed.hint, parsed.service
        channel.failing_since = None
    for name in ("name", "events", "enabled"):
        value = getattr(data, name)
        if name in data.model_fields_set and value is not None:
            setattr(channel, name, list(value) if name == "events" else value)
    db.session.commit()
    return channel


def delete_channel(channel: AlertChannel) -> None:
    db.session.delete(channel)  # its notices go with it (ON DELETE CASCADE)
    db.session.commit()


def list_channels() -> list[AlertChannel]:
    return list(db.session.scalars(sa.select(AlertChannel).order_by(AlertChannel.name, AlertChannel.id)))


def channel_json(channel: AlertChannel, pending: int | None = None) -> dict[str, Any]:
    """The URL is write-only: `url_hint` (scheme and host, tokens masked) says which address it is."""
    if pending is None:
        pending = db.session.scalar(sa.select(sa.func.count()).where(
            AlertNotice.channel_id == channel.id, AlertNotice.state == "pending")) or 0
    return {
        "id": channel.id, "name": channel.name, "service": channel.service, "url_hint": channel.url_hint,
        "events": list(channel.events or []), "enabled": channel.enabled,
        "last_sent_at": iso(channel.last_sent_at), "failing": channel.failing_since is not None,
        "failing_since": iso(channel.failing_since), "last_error": channel.last_error,
        "last_error_at": iso(channel.last_error_at), "pending_notices": pending,
        "created_at": iso(channel.created_at),
    }

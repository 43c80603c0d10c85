"""The platforms' own snippets for the configured destinations (one per Klaviyo, Sendlane, eSputnik
destination), with what each needs read from the destination: Klaviyo's public key (site id), Sendlane's
integration token. No private key ever goes into a snippet.
"""

from __future__ import annotations

import logging
from contextlib import suppress

import httpx
import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from webapp.extensions import db
from webapp.models import Destination
from webapp.services.onsite.snippets import (
    PlatformSnippet,
    esputnik_snippet,
    klaviyo_snippet,
    sendlane_snippet,
)
from webapp.services.platform.crypto import decrypt_json
from webapp.services.platform.outbound_http import outbound_client

log = logging.getLogger(__name__)
PUBLIC_KEY_TTL = 86400
KINDS = ("klaviyo", "sendlane", "esputnik")


def platform_snippets() -> list[PlatformSnippet]:
    """One snippet per Klaviyo, Sendlane and eSputnik destination, in destination order."""
    destinations = db.session.scalars(sa.select(Destination).where(Destination.kind.in_(KINDS))
                                      .order_by(Destination.id)).all()
    snippets = []
    for destination in destinations:
        if destination.kind == "klaviyo":
            snippets.append(klaviyo_snippet(klaviyo_public_key(destination), destination.name))
        elif destination.kind == "sendlane":
            token = decrypt_json(destination.credentials_encrypted).get("integration_token")
            snippets.append(sendlane_snippet(token, destination.name))
        else:
            snippets.append(esputnik_snippet(destination.name))
    return snippets


def klaviyo_public_key(destination: Destination) -> str | None:
    """The account's public key: the destination's `public_key` setting, else Klaviyo's GET /api/accounts
    with its private key (cached for a day; None when Klaviyo cannot be asked)."""
    given = (destination.settings or {}).get("public_key")
    if given:
        return str(given)
    redis = _redis()
    cache_key = f"shoprelay:onsite:klaviyo-public-key:{destination.id}"
    if redis is not None:
        with suppress(RedisError):
            cached = redis.get(cache_key)
            if cached:
                return cached.decode()
    key = _ask_klaviyo(destination)
    if key and redis is not None:
        with suppress(RedisError):
            redis.set(cache_key, key, ex=PUBLIC_KEY_TTL)
    return key


def _ask_klaviyo(destination: Destination) -> str | None:
    from webapp.services.delivery.destinations import adapter_class

    adapter = adapter_class("klaviyo")(decrypt_json(destination.credentials_encrypted), destination.base_url,
                                       destination.settings)
    request = adapter.test_request()  # GET /api/accounts
    try:
        with outbound_client(5.0, follow_redirects=False) as client:
            response = client.request(request.method, request.url, headers=request.headers)
        accounts = response.json().get("data") or [] if response.status_code == 200 else []
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        log.info("Klaviyo public key of destination %s not read: %s", destination.id, exc)
        return None
    for account in accounts:
        key = (account.get("attributes") or {}).get("public_api_key")
        if key:
            return str(key)
    return None


def _redis():  # noqa: ANN202
    from workers.queue import connect

    url = current_app.config.get("REDIS_URL")
    return connect(url) if url else None

"""The collector's settings, parsed like every other setting (webapp.settings) and merged by webapp.config.

Kept here, beside the code that reads them, so the onsite area stays one room; `ONSITE_SETTINGS` uses the
same `Setting` rows as `webapp.settings.SETTINGS` and can join that table unchanged.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webapp.settings import Setting, _bool, _persisted_secret, _positive_int, parse_settings


def _secret(value: str) -> str:
    if len(value.strip()) < 16:
        raise ValueError("must be at least 16 characters (a random token: openssl rand -hex 32)")
    return value.strip()


def _origins(value: str) -> tuple[str, ...]:
    """`https://shop.example,https://www.shop.example` → normalised origins (scheme://host[:port])."""
    origins = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        parts = urlsplit(entry)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
                or parts.query or parts.fragment or parts.username:
            raise ValueError(f"{entry!r} is not an origin like https://shop.example")
        origins.append(origin_of(entry))
    return tuple(origins)


def origin_of(url: str) -> str:
    """The origin of a URL as browsers send it in `Origin`: lower-case scheme and host, port when given."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}"


ONSITE_SETTINGS: tuple[Setting, ...] = (
    Setting("SHOPRELAY_ONSITE_SECRET", "ONSITE_SECRET", _secret, None,
            "Signs onsite identities: the store's backend sends `HMAC-SHA256(secret, lower-cased email)` with "
            "`shoprelay.identify`; generated into `instance/onsite_secret` when unset (shown to admins on the "
            "Onsite page)."),
    Setting("SHOPRELAY_ONSITE_REQUIRE_SIGNED", "ONSITE_REQUIRE_SIGNED", _bool, False,
            "Ignore onsite identities (identify calls, `?_sr_email=` links) without a valid signature."),
    Setting("SHOPRELAY_ONSITE_ORIGINS", "ONSITE_ORIGINS", _origins, (),
            "Comma-separated store origins (`https://shop.example`) allowed to post to `/t/collect`; others get "
            "403. Unset: any origin (CORS `*`)."),
    Setting("SHOPRELAY_ONSITE_IP_PER_MINUTE", "ONSITE_IP_PER_MINUTE", _positive_int, 120,
            "Onsite events accepted per client address and minute (the shopper's address behind "
            "`SHOPRELAY_TRUSTED_PROXIES`); more answer 429."),
    Setting("SHOPRELAY_ONSITE_VISITOR_PER_MINUTE", "ONSITE_VISITOR_PER_MINUTE", _positive_int, 30,
            "Onsite events accepted per visitor (browser id) and minute; more answer 429."),
)


def load_onsite_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse the onsite settings; raise SettingsError naming the bad variable."""
    return parse_settings(ONSITE_SETTINGS, environ)


def resolve_onsite_secret(values: dict[str, Any]) -> dict[str, Any]:
    """The onsite secret given, else generated once into the instance folder (like secret_key)."""
    if not values.get("ONSITE_SECRET"):
        path = Path(values["INSTANCE_PATH"]) / "onsite_secret"
        values["ONSITE_SECRET"] = _persisted_secret(path, lambda: secrets.token_hex(32))
    if isinstance(values.get("ONSITE_ORIGINS"), str):  # a test or caller passed the raw list
        values["ONSITE_ORIGINS"] = _origins(values["ONSITE_ORIGINS"])
    return values

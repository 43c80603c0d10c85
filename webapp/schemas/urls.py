"""One check for every URL shoprelay will call (source locations, platform base URLs, webhook URLs).

Beyond the shape, a URL shoprelay calls must not point inward (loopback, private, link-local, metadata
addresses, also behind a name that resolves there) unless SHOPRELAY_ALLOW_PRIVATE_URLS allows it: the policy
lives in webapp.services.platform.outbound_urls and is checked again on every connection. Links shoprelay only
shows or forwards (product and item URLs) take `web_link_problem`, which never resolves anything.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from webapp.services.platform.outbound_urls import url_problem


def http_url_problem(value: str) -> str | None:
    """What is wrong with `value` as an http(s) URL to call, or None. Parsed the way the HTTP client will
    parse it, so a URL accepted here never fails later in a worker (a space in the host, no host at all);
    then the outbound policy (its host resolved: an inward address is refused, a name that does not resolve
    today passes and is checked on every connection)."""
    return web_link_problem(value) or url_problem(value)


def web_link_problem(value: str) -> str | None:
    """The shape check alone: an http(s) URL with a host and a valid port (no DNS, cheap enough per item)."""
    if not value.startswith(("http://", "https://")):
        return "must be an http:// or https:// URL"
    try:
        if any(character.isspace() for character in urlsplit(value).netloc):
            return "must not contain spaces in the host"
        url = httpx.URL(value)
    except (ValueError, httpx.InvalidURL) as exc:
        return f"is not a valid URL ({exc})"
    if not url.host:
        return "must name a host (http://host/...)"
    if url.port is not None and not 0 < url.port < 65536:
        return "has a port outside 1-65535"
    return None

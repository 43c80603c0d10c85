"""One check for every URL shoprelay will call (source locations, platform base URLs, webhook URLs)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx


def http_url_problem(value: str) -> str | None:
    """What is wrong with `value` as an http(s) URL to call, or None. Parsed the way the HTTP client will
    parse it, so a URL accepted here never fails later in a worker (a space in the host, no host at all)."""
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

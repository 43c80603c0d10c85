"""Masking secrets in text before it is shown, logged or stored (no Flask: the fetcher uses it too).

A platform that answers an error often echoes the request, headers included, so a secret comes back
encoded: inside a basic-auth token (base64 of "user:secret", at any byte offset), percent-encoded in a
URL, JSON-escaped. Every such spelling of every secret is masked, and a URL given as a secret also gives
its parts (password, query values, long path segments), which travel on their own.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

MASK = "[REDACTED]"
MIN_SECRET = 4  # shorter values are too common to mask without mangling ordinary text
_MIN_URL_PART = 8  # path segments / query values of a secret URL at least this long are secrets too


def url_parts(url: str, *, username: bool = True) -> list[str]:
    """The secret-bearing parts of a URL: its password, its user name (unless told not to), query values and
    long path segments."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    if not parts.scheme or not parts.netloc:
        return []
    found = [unquote(value) for value in (parts.password, parts.username if username else None) if value]
    found += [value for _, value in parse_qsl(parts.query, keep_blank_values=False) if len(value) >= _MIN_URL_PART]
    found += [unquote(segment) for segment in parts.path.split("/") if len(segment) >= _MIN_URL_PART]
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") and "." not in host and len(host) >= _MIN_URL_PART:
        found.append(host)  # apprise-style URLs carry a token where a host would be (slack://TokenA/...)
    return found


def _base64_cores(secret: bytes) -> list[str]:
    """The stretch of base64 text that any encoding of `secret` contains, for each of the 3 byte offsets."""
    cores = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret + b"\0\0").decode()
        start = -(-offset * 4 // 3)  # characters touched by the leading pad bytes
        end = (offset + len(secret)) * 4 // 3  # characters made only of secret bits
        core = encoded[start:end]
        if len(core) >= MIN_SECRET:
            cores.append(core)
    # The URL-safe alphabet spells the same bits with - and _.
    return cores + [core.replace("+", "-").replace("/", "_") for core in cores]


def spellings(secret: str) -> set[str]:
    """Every spelling of one secret that a log line, an echoed request or an error message may carry."""
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    forms.update(_base64_cores(raw))
    return {form for form in forms if len(form) >= MIN_SECRET}


def expand(secrets: Iterable[str | None], *, parts: bool = True) -> tuple[str, ...]:
    """Every spelling of the secrets (and, with `parts`, of the parts of those that are URLs), longest first:
    a longer one may contain a shorter."""
    return _expand(tuple(secret for secret in secrets if secret), parts)


@functools.lru_cache(maxsize=256)  # the delivery recorder masks the same few secrets on every request
def _expand(secrets: tuple[str, ...], parts: bool) -> tuple[str, ...]:
    every: set[str] = set()
    for secret in secrets:
        if len(secret) < MIN_SECRET:
            continue
        for value in (secret, *(url_parts(secret) if parts else ())):
            if len(value) >= MIN_SECRET:
                every |= spellings(value)
    return tuple(sorted(every, key=len, reverse=True))


def redact(text: str, secrets: Iterable[str | None], *, parts: bool = True) -> str:
    """`text` with every spelling of every secret replaced by [REDACTED]."""
    if not text:
        return text
    for form in expand(secrets, parts=parts):
        if form in text:
            text = text.replace(form, MASK)
    return text


def strip_userinfo(url: str) -> str:
    """The URL without user:password@ (for messages about it)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()

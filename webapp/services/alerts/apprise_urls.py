"""The one place that talks to the `apprise` library: read a channel's URL, and send one message through it.

Apprise logs why it refused a URL or failed a send instead of raising; those lines are captured and become the
reason shown to people, with the URL's secrets (password, tokens in the path or query) redacted. Apprise's own
timeouts bound a send (4 s to connect and 4 s to read for web services, 15 s for SMTP; `?cto=`/`?rto=` in the URL
change them) and it does not retry (its `retry` defaults to 0): retries are the notices' own, with backoff.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from webapp.services.platform import log_masking
from webapp.services.platform.crypto import redact
from webapp.services.platform.outbound_http import guarded_sockets
from webapp.services.platform.outbound_urls import host_problem


@dataclass(frozen=True)
class Parsed:
    service: str  # "Slack", "E-Mail", "JSON"
    hint: str  # scheme and host only, tokens masked by apprise: "slack://T...2", "json://hooks.example.com"


@dataclass(frozen=True)
class Sent:
    ok: bool
    error: str | None
    duration_ms: int


def parse(url: str) -> tuple[Parsed | None, str | None]:
    """(what the URL is, None), or (None, why apprise cannot use it)."""
    import apprise

    url = url.strip()
    if not url:
        return None, "must not be empty"
    if "://" not in url:
        return None, "must be an Apprise URL such as mailto://…, slack://…, json://…"
    _remember(url)  # apprise logs the URLs it loads, tokens and all
    instance = apprise.Apprise()
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as logs:
        added = instance.add(url)
    if not added or len(instance) == 0:
        reasons = [line for line in logs.getvalue().splitlines() if line.strip()]
        reason = _redacted(reasons[0], url) if reasons else "not a URL apprise knows"
        scheme = url.split("://", 1)[0]
        return None, f"apprise cannot use this {scheme}:// URL: {reason.rstrip('.')}"
    if len(instance) > 1:
        return None, "one URL per channel (add another channel for another address)"
    service = instance[0]
    if (problem := _target_problem(service)) is not None:
        return None, problem
    private = service.url(privacy=True)
    parts = urlsplit(private)
    host = parts.netloc.rsplit("@", 1)[-1]
    return Parsed(service=str(service.service_name), hint=f"{parts.scheme}://{host}"[:300]), None


def send(url: str, title: str, body: str, notify_type: str) -> Sent:
    """One message through the channel; never raises for the channel's own failures (they are the answer)."""
    import apprise

    _remember(url)
    instance = apprise.Apprise()
    started = time.perf_counter()
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as logs:
        if not instance.add(url):
            return Sent(False, "apprise cannot use this channel's URL any more; edit the channel",
                        int((time.perf_counter() - started) * 1000))
        if (problem := _target_problem(instance[0])) is not None:
            return Sent(False, problem, int((time.perf_counter() - started) * 1000))
        try:
            with guarded_sockets():  # every connection apprise opens goes to an address the policy allows
                ok = bool(instance.notify(body=body, title=title, notify_type=notify_type,
                                          body_format=apprise.NotifyFormat.TEXT))
        except Exception as exc:  # a plugin bug must not crash the job that sends every channel's notices
            ok = False
            logging.getLogger("apprise").warning("%s: %s", type(exc).__name__, exc)
    duration = int((time.perf_counter() - started) * 1000)
    if ok:
        return Sent(True, None, duration)
    lines = [line for line in logs.getvalue().splitlines() if line.strip()]
    return Sent(False, _redacted(" ".join(lines[-3:]) or "the service refused the message", url)[:1000], duration)


def _target_problem(service: Any) -> str | None:
    """Why the outbound URL policy refuses the server this channel talks to, or None. Self-hosted services
    (json://, form://, ntfy://host, gotify://...: apprise gives them a plain `protocol`) and SMTP name their
    server; cloud services (slack://, tgram://) call their own public API, whose "host" is a token."""
    host = getattr(service, "smtp_host", None) or (getattr(service, "host", None) if service.protocol else None)
    if not host:
        return None
    port = getattr(service, "port", None) or (443 if getattr(service, "secure", False) else 80)
    return host_problem(str(host), int(port))


def secrets_of(url: str) -> list[str]:
    """The parts of an Apprise URL that may be secret: user and password, path segments and query values
    long enough to be tokens."""
    try:
        parts = urlsplit(url)
        found: list[Any] = [parts.password, parts.username]
    except ValueError:
        return [url]
    found += [segment for segment in parts.path.split("/") if len(segment) >= 6]
    found += [value for _, value in parse_qsl(parts.query) if len(value) >= 6]
    if parts.scheme not in ("json", "jsons", "xml", "xmls", "form", "forms", "mailto", "mailtos"):
        found.append(parts.hostname)  # slack://TokenA/..., tgram://bottoken/...: the "host" is a token
    return [url, *(str(value) for value in found if value)]


def _remember(url: str) -> None:
    """Have every log line of this process mask the URL's secrets (its user name is no secret in a log)."""
    try:
        username = urlsplit(url).username
    except ValueError:
        username = None
    log_masking.remember([part for part in secrets_of(url) if part != username])


def _redacted(text: str, url: str) -> str:
    return redact(text, secrets_of(url))

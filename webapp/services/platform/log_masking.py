"""Log lines never carry a secret: every credential the process decrypts is remembered and masked in every record.

Libraries log what they were given (apprise prints notification URLs with their tokens at DEBUG, urllib3 the
request path), and an exception message may quote a platform's answer that echoed an Authorization header.
Masking at the record factory covers every logger and every handler (files, the console, pytest's caplog),
including tracebacks; URL passwords (`scheme://user:secret@host`) are masked even when never decrypted here.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Iterable
from typing import Any

from feeds.redaction import MASK, redact, url_parts

MAX_REMEMBERED = 2000  # distinct secret values kept per process (the oldest are forgotten first)
MIN_LOGGED_SECRET = 6  # shorter values would mask ordinary words all over the log
_NOT_SECRET = frozenset({"username", "user", "header_name", "kind", "name"})
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)[^/\s@]+@")

_lock = threading.Lock()
_remembered: dict[str, None] = {}
_snapshot: tuple[str, ...] = ()
_installed = False


def remember(values: dict[str, Any] | Iterable[Any]) -> None:
    """Mask these secrets (a decrypted credentials dict: every value but user and header names) from now on.
    A URL among them gives its password and tokens (query values, long path segments), not its user name."""
    global _snapshot
    items = ([value for key, value in values.items() if key not in _NOT_SECRET] if isinstance(values, dict)
             else list(values))
    texts = [value for value in items if isinstance(value, str)]
    texts += [part for value in texts if "://" in value for part in url_parts(value, username=False)]
    fresh = [value for value in dict.fromkeys(texts) if len(value) >= MIN_LOGGED_SECRET and value not in _remembered]
    if not fresh:
        return
    with _lock:
        for value in fresh:
            _remembered[value] = None
        while len(_remembered) > MAX_REMEMBERED:
            del _remembered[next(iter(_remembered))]
        _snapshot = tuple(_remembered)


def mask(text: str) -> str:
    """`text` with every remembered secret and any URL password masked."""
    if _snapshot:
        text = redact(text, _snapshot, parts=False)  # a URL's secret parts were remembered one by one
    if "://" in text and "@" in text:
        text = _URL_PASSWORD.sub(rf"\1{MASK}@", text)
    return text


def install() -> None:
    """Wrap the log record factory once per process (idempotent: create_app runs per test)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _mask_record(record)
        return record

    logging.setLogRecordFactory(factory)


def _mask_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string is the logging module's to report, unmasked of nothing
        return
    masked = mask(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = mask(text)
    if record.stack_info:
        record.stack_info = mask(record.stack_info)

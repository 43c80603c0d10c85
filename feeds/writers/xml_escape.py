"""Fast, correct escaping for XML 1.0 text written as plain strings.

Feeds are written with string formatting rather than lxml because it is ~4x faster (PERFORMANCE.md);
these helpers are what keeps that output well-formed whatever the product text holds.
"""

from __future__ import annotations

import re

# Code points XML 1.0 does not allow at all (even as character references), plus every surrogate:
# a surrogate in a Python str is never a valid scalar value and cannot be encoded as UTF-8.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_FORBIDDEN_BYTES = bytes((*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)))
# Below this length a regex scan is cheapest; above it encoding and deleting bytes is ~3x faster.
_LONG_TEXT = 100


def has_forbidden(text: str) -> bool:
    """True when `text` holds a character no XML 1.0 document (or UTF-8 file) may contain."""
    if len(text) < _LONG_TEXT:
        return _FORBIDDEN.search(text) is not None
    try:
        data = text.encode()
    except UnicodeEncodeError:  # surrogates
        return True
    # In UTF-8 bytes below 0x20 only ever stand for themselves, so deleting them counts them.
    if len(data.translate(None, _FORBIDDEN_BYTES)) != len(data):
        return True
    return not data.isascii() and ("\ufffe" in text or "\uffff" in text)


def clean_text(text: str) -> str:
    """Drop the characters no XML 1.0 document (and no UTF-8 file) may contain."""
    if len(text) < _LONG_TEXT:  # inlined has_forbidden(): this runs for every field of every item
        if _FORBIDDEN.search(text) is None:
            return text
    elif not has_forbidden(text):
        return text
    return _FORBIDDEN.sub("", text)


def escape_markup(text: str) -> str:
    """Escape `&<>"'` (and CR, as `&#13;`, so it survives line-end normalisation) in clean text.

    Only for text already passed through `clean_text` (the validator does so for required fields).
    """
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if '"' in text:
        text = text.replace('"', "&quot;")
    if "'" in text:
        text = text.replace("'", "&apos;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def escape_text(text: str) -> str:
    """Any text made safe inside an element or a quoted attribute: cleaned, then markup escaped."""
    return escape_markup(clean_text(text))


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")


def is_safe_element_name(name: str) -> bool:
    """True for a plain ASCII XML element name without a prefix (custom flat feed keys)."""
    return _NAME.match(name) is not None and name[:3].lower() != "xml"

"""Signed identities: the store's backend proves an email is its logged-in shopper's.

`signature = hex(HMAC-SHA256(onsite secret, email.strip().lower()))`, computed server-side by the store and
printed into the page (or into a link in an email as `?_sr_email=...&_sr_sig=...`). Without it, any page
could claim any email and fill that person's profile at the platforms with someone else's browsing.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

EMAIL_PARAM = "_sr_email"
SIGNATURE_PARAM = "_sr_sig"


def sign(email: str, secret: str) -> str:
    """The signature a store's backend computes for `email` (the same on every backend: see the Onsite page)."""
    return hmac.new(secret.encode(), email.strip().lower().encode(), hashlib.sha256).hexdigest()


def verify(email: str, signature: str | None, secret: str) -> bool:
    """Whether `signature` is this email's; constant-time."""
    if not signature:
        return False
    return hmac.compare_digest(sign(email, secret), signature.strip().lower())


def link_params(email: str, secret: str) -> str:
    """Query parameters that identify the shopper when they follow a link from an email."""
    return urlencode({EMAIL_PARAM: email.strip().lower(), SIGNATURE_PARAM: sign(email, secret)})

"""What the Onsite page shows: the snippet filled with this instance's URL, signing (the secret for admins
only, with backend examples), the collector's settings as they are, and the platforms' own snippets."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from webapp.services.onsite.platforms import platform_snippets
from webapp.services.onsite.signing import EMAIL_PARAM, SIGNATURE_PARAM, sign
from webapp.services.onsite.snippets import USAGE, first_party_snippet

EXAMPLE_EMAIL = "john.smith@example.com"


def public_base_url() -> str:
    """SHOPRELAY_BASE_URL when set, else the URL this page was asked for (what the store will reach)."""
    return (current_app.config.get("BASE_URL") or request.url_root).rstrip("/")


def signing_examples(secret: str) -> dict[str, str]:
    """Backend code that signs the logged-in shopper's email (the secret stays on the store's server)."""
    return {
        "Python": ("import hashlib, hmac\n"
                   f'ONSITE_SECRET = "{secret}"  # keep it server-side, e.g. in an environment variable\n'
                   "signature = hmac.new(ONSITE_SECRET.encode(), customer_email.strip().lower().encode(),\n"
                   "                     hashlib.sha256).hexdigest()"),
        "PHP": (f'$onsiteSecret = "{secret}"; // keep it server-side\n'
                "$signature = hash_hmac('sha256', strtolower(trim($customerEmail)), $onsiteSecret);"),
        "Node.js": ('const crypto = require("crypto");\n'
                    f'const ONSITE_SECRET = "{secret}"; // keep it server-side\n'
                    "const signature = crypto.createHmac(\"sha256\", ONSITE_SECRET)\n"
                    "  .update(customerEmail.trim().toLowerCase()).digest(\"hex\");"),
    }


def page_context(*, is_admin: bool) -> dict[str, Any]:
    base = public_base_url()
    config = current_app.config
    context: dict[str, Any] = {
        "snippet": first_party_snippet(base), "consent_snippet": first_party_snippet(base, consent=True),
        "usage": USAGE, "base_url": base, "require_signed": bool(config.get("ONSITE_REQUIRE_SIGNED")),
        "origins": list(config.get("ONSITE_ORIGINS") or ()), "ip_per_minute": config["ONSITE_IP_PER_MINUTE"],
        "visitor_per_minute": config["ONSITE_VISITOR_PER_MINUTE"],
        "trusted_proxies": config.get("TRUSTED_PROXIES") or 0, "platforms": platform_snippets(),
        "email_param": EMAIL_PARAM, "signature_param": SIGNATURE_PARAM, "is_admin": is_admin,
    }
    if is_admin:
        secret = config["ONSITE_SECRET"]
        context["secret"] = secret
        context["examples"] = signing_examples(secret)
        context["example_email"] = EXAMPLE_EMAIL
        context["example_signature"] = sign(EXAMPLE_EMAIL, secret)
    return context

"""Secrets at rest: platform credentials and source/feed passwords are Fernet-encrypted with the instance key."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app


def _fernet() -> Fernet:
    return Fernet(current_app.config["ENCRYPTION_KEY"].encode())


def encrypt_json(value: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()


def decrypt_json(token: str | None) -> dict[str, Any]:
    """Decrypt; a token from another key fails with a message that says what to do."""
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise ValueError("stored credentials cannot be decrypted with this instance's key "
                         "(SHOPRELAY_ENCRYPTION_KEY changed?); enter them again") from None


def redact(text: str, secrets: list[str]) -> str:
    """Replace every secret (and its common encodings) in text before it is logged or stored."""
    import base64

    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "[REDACTED]")
        encoded = base64.b64encode(secret.encode()).decode()
        text = text.replace(encoded, "[REDACTED]")
    return text

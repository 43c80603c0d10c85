"""Secrets at rest: platform credentials and source/feed passwords are Fernet-encrypted with the instance key."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app

from feeds.redaction import redact as mask_secrets
from webapp.services.platform import log_masking


def _fernet() -> Fernet:
    return Fernet(current_app.config["ENCRYPTION_KEY"].encode())


def encrypt_json(value: dict[str, Any]) -> str:
    log_masking.remember(value)
    return _fernet().encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()


def decrypt_json(token: str | None) -> dict[str, Any]:
    """Decrypt; a token from another key fails with a message that says what to do."""
    if not token:
        return {}
    try:
        value = json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise ValueError("stored credentials cannot be decrypted with this instance's key "
                         "(SHOPRELAY_ENCRYPTION_KEY changed?); enter them again") from None
    log_masking.remember(value)  # from now on no log line of this process shows them
    return value


def redact(text: str, secrets: list[str]) -> str:
    """Replace every secret (and its encodings: base64 inside basic-auth tokens, percent- and JSON-escaped,
    the parts of a secret URL) in text before it is logged, shown or stored."""
    return mask_secrets(text, secrets)

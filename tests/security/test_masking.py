"""The masking itself: every spelling of a secret, and every log record of the process."""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import quote

import pytest

from feeds.redaction import MASK, redact, strip_userinfo
from webapp.services.platform import log_masking
from webapp.services.platform.crypto import decrypt_json, encrypt_json

SECRET = "s3cr3t/+key=with:odd&chars"


@pytest.mark.parametrize("prefix", ["", "a", "ab", "shoprelay:", "user:", "x:"])
def test_a_secret_inside_a_basic_auth_token_is_masked_at_any_offset(prefix):
    token = base64.b64encode(f"{prefix}{SECRET}".encode()).decode()
    masked = redact(f"Authorization: Basic {token}", [SECRET])
    assert MASK in masked
    inner = base64.b64encode(SECRET.encode()).decode()[2:-4]
    assert inner not in masked


@pytest.mark.parametrize("spelling", [SECRET, quote(SECRET, safe=""), quote(SECRET), json.dumps(SECRET)[1:-1]])
def test_plain_percent_and_json_spellings_are_masked(spelling):
    assert SECRET not in redact(f"before {spelling} after", [SECRET])
    assert redact(f"before {spelling} after", [SECRET]).startswith("before ")


def test_a_secret_url_gives_its_parts():
    url = "https://ops:pa55word@hooks.example/services/T0KENPART0123/x?token=querysecret99&v=1"
    text = "POST /services/T0KENPART0123/x?token=querysecret99 (user ops, password pa55word)"
    masked = redact(text, [url])
    for part in ("T0KENPART0123", "querysecret99", "pa55word"):
        assert part not in masked
    assert strip_userinfo(url) == "https://hooks.example/services/T0KENPART0123/x?token=querysecret99&v=1"


def test_short_values_are_not_masked():
    assert redact("a b c abc", ["abc"]) == "a b c abc"


def test_decrypted_secrets_are_masked_in_every_log_record(app, caplog):
    caplog.set_level(logging.DEBUG)
    log_masking.install()
    token = encrypt_json({"username": "shop", "api_key": "pk_livelogsecret123"})
    assert decrypt_json(token)["api_key"] == "pk_livelogsecret123"
    logger = logging.getLogger("some.library")
    logger.debug("calling with %s", "Klaviyo-API-Key pk_livelogsecret123")
    try:
        raise RuntimeError("answer echoed pk_livelogsecret123")
    except RuntimeError:
        logger.exception("failed")
    logger.info("GET https://feeds:urlpassword@shop.example/p.csv")
    assert "pk_livelogsecret123" not in caplog.text
    assert "urlpassword" not in caplog.text
    assert "Klaviyo-API-Key [REDACTED]" in caplog.text and "RuntimeError" in caplog.text
    assert "shop" in caplog.text  # user names are not secrets: nothing else is touched

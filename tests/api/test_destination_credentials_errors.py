"""A destination's credentials: 422 for what the OpenAPI document refuses, 409 for what only the stored kind does.

A create's body names its kind, so the document's per-kind rules say everything about its credentials: every
refusal is a 422 naming the field. A PATCH body does not carry the kind: its document takes every kind's
credentials, so a value no kind takes (blank, not text, a name no kind has, a malformed URL or whsec_ secret) is
a 422 naming the field, and one that another kind takes but the stored destination's does not is a 409.
"""

from __future__ import annotations

import re

import jsonschema_rs
import pytest

from tests.conftest import csrf_token
from webapp.models import Destination
from webapp.schemas.destinations import CREDENTIAL_FORMATS, credential_names, credential_schema
from webapp.services.platform.crypto import decrypt_json
from workers.destinations.webhook import standard_secret_problem

HOOK = "https://hooks.example.com/orders"
CREDENTIALS = {"klaviyo": {"api_key": "pk_live_0123456789abcdef"},
               "sendlane": {"api_token": "sl_api_token_1", "integration_token": "3f0c6a52-7f6b-4c1e"},
               "esputnik": {"api_key": "es-key-1"},
               "webhook": {"url": HOOK, "secret": "s3cret-value"}}


def _create(api, kind: str) -> int:  # noqa: ANN001
    response = api.post("/api/v1/destinations", json={"name": kind, "kind": kind, "credentials": CREDENTIALS[kind]})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _paths(response) -> list[str]:  # noqa: ANN001
    return [error["path"] for error in response.get_json()["errors"]]


def _document_takes(client, operation: str, body: dict) -> bool:  # noqa: ANN001
    """Whether the served document's request schema of `operation` takes `body`."""
    document = client.get("/api/v1/openapi.json").get_json()
    path, method = operation.split(" ")
    schema = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]}).is_valid(body)


MALFORMED = [  # (kind, credentials): no kind takes them
    ("klaviyo", {"api_key": ""}),
    ("klaviyo", {"api_key": "   "}),
    ("klaviyo", {"api_key": 5}),
    ("klaviyo", {"api_key": None}),
    ("klaviyo", {"api_key": "pk_live key with spaces"}),
    ("klaviyo", {"api_key": "pk_ünïcode"}),
    ("klaviyo", {"token": "pk_live_0123"}),
    ("sendlane", {"api_token": "Bearer sl_api_token_1"}),
    ("sendlane", {"integration_token": ""}),
    ("esputnik", {"api_key": "es key"}),
    ("webhook", {"url": "ftp://hooks.example.com/x"}),
    ("webhook", {"url": "not a url"}),
    ("webhook", {"secret": ""}),
    ("webhook", {"secret": "whsec_%%%"}),
    ("webhook", {"previous_secret": "whsec_abcde"}),
    ("klaviyo", {"url": "ftp://hooks.example.com/x"}),  # not the stored kind's, and malformed for the one it is
]


@pytest.mark.parametrize(("kind", "credentials"), MALFORMED)
def test_a_malformed_credential_is_a_422_naming_it_on_patch_and_on_create(api, client, kind, credentials) -> None:  # noqa: ANN001
    destination_id = _create(api, kind)
    name = next(iter(credentials))
    patch = {"credentials": credentials}
    assert not _document_takes(client, "/api/v1/destinations/{id} patch", patch)
    changed = api.patch(f"/api/v1/destinations/{destination_id}", json=patch)
    assert changed.status_code == 422, changed.get_json()
    assert _paths(changed) == [f"credentials.{name}"]

    create = {"name": "again", "kind": kind, "credentials": CREDENTIALS[kind] | credentials}
    assert not _document_takes(client, "/api/v1/destinations post", create)
    created = api.post("/api/v1/destinations", json=create)
    assert created.status_code == 422, created.get_json()
    assert f"credentials.{name}" in _paths(created)


def test_the_klaviyo_key_says_what_it_should_look_like(api) -> None:  # noqa: ANN001
    destination_id = _create(api, "klaviyo")
    changed = api.patch(f"/api/v1/destinations/{destination_id}", json={"credentials": {"api_key": "pk_a b"}})
    assert changed.status_code == 422
    (error,) = changed.get_json()["errors"]
    assert error["path"] == "credentials.api_key" and "pk_" in error["message"]
    assert "pk_a b" not in error["message"]  # credentials are never echoed
    created = api.post("/api/v1/destinations", json={"name": "k", "kind": "klaviyo", "credentials": {
        "api_key": "AbC123"}})  # the public key (site ID) where the private one belongs
    assert created.status_code == 422
    assert created.get_json()["errors"][0]["path"] == "credentials.api_key"
    assert "public key" in created.get_json()["errors"][0]["message"]


CONFLICTS = [  # (stored kind, credentials): valid for another kind, not for the stored one
    ("klaviyo", {"api_key": "es-key-1"}),           # eSputnik's key shape, not a Klaviyo private key
    ("klaviyo", {"url": HOOK}),                     # a webhook's credential
    ("esputnik", {"api_token": "sl_api_token_1"}),  # a Sendlane credential
    ("sendlane", {"api_key": "pk_live_0123"}),
    ("klaviyo", {"previous_secret": "old-secret"}),  # only a webhook rotates a secret
    ("webhook", {"api_key": "pk_live_0123"}),
]


@pytest.mark.parametrize(("kind", "credentials"), CONFLICTS)
def test_credentials_of_another_kind_are_a_409_on_patch_and_a_422_on_create(api, client, kind, credentials) -> None:  # noqa: ANN001
    destination_id = _create(api, kind)
    name = next(iter(credentials))
    patch = {"credentials": credentials}
    assert _document_takes(client, "/api/v1/destinations/{id} patch", patch)
    changed = api.patch(f"/api/v1/destinations/{destination_id}", json=patch)
    assert changed.status_code == 409, changed.get_json()
    assert _paths(changed) == [f"credentials.{name}"]
    assert api.get(f"/api/v1/destinations/{destination_id}").get_json()["credentials_set"] == sorted(
        CREDENTIALS[kind])  # nothing stored

    create = {"name": "again", "kind": kind, "credentials": CREDENTIALS[kind] | credentials}
    assert not _document_takes(client, "/api/v1/destinations post", create)
    created = api.post("/api/v1/destinations", json=create)
    assert created.status_code == 422, created.get_json()
    assert _paths(created) == [f"credentials.{name}"]


def test_a_malformed_value_beside_a_conflict_is_a_422_listing_both(api) -> None:  # noqa: ANN001
    destination_id = _create(api, "klaviyo")
    changed = api.patch(f"/api/v1/destinations/{destination_id}", json={"credentials": {"api_key": "",
                                                                                       "url": HOOK}})
    assert changed.status_code == 422
    assert sorted(_paths(changed)) == ["credentials.api_key", "credentials.url"]


@pytest.mark.parametrize("kind", sorted(CREDENTIALS))
def test_well_formed_credentials_of_the_stored_kind_are_saved(api, client, kind) -> None:  # noqa: ANN001
    destination_id = _create(api, kind)
    name, value = next(iter(CREDENTIALS[kind].items()))
    new = f"  {value}2 " if name != "url" else "https://hooks.example.com/other"  # white space around is trimmed
    patch = {"credentials": {name: new}}
    assert _document_takes(client, "/api/v1/destinations/{id} patch", patch)
    changed = api.patch(f"/api/v1/destinations/{destination_id}", json=patch)
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["credentials_set"] == sorted(CREDENTIALS[kind])


def test_a_webhook_takes_whsec_secrets_while_rotating(api, client) -> None:  # noqa: ANN001
    destination_id = _create(api, "webhook")
    patch = {"credentials": {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "previous_secret": "s3cret-value"}}
    assert _document_takes(client, "/api/v1/destinations/{id} patch", patch)
    changed = api.patch(f"/api/v1/destinations/{destination_id}", json=patch)
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["credentials_set"] == ["previous_secret", "secret", "url"]


def test_events_the_kind_does_not_take_stay_a_409_on_patch(api) -> None:  # noqa: ANN001
    destination_id = _create(api, "klaviyo")
    changed = api.patch(f"/api/v1/destinations/{destination_id}", json={"events": ["pending_order"]})
    assert changed.status_code == 409 and _paths(changed) == ["events"]


SECRETS = ["plain", " plain ", "whsec_", "whsec_a", "whsec_ab", "whsec_abc", "whsec_abcd", "whsec_abcde",
           "whsec_ab==", "whsec_abc=", "whsec_abcd=", "whsec_abcd===", "whsec_a-b_c", "whsec_not base64!", "whsec_%",
           "whsec_dGVzdA", "whsec_dGVzdA==", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", " whsec_%% ", "whsecret"]


@pytest.mark.parametrize("secret", SECRETS)
def test_the_secret_pattern_says_what_the_webhook_check_says(secret: str) -> None:
    pattern = CREDENTIAL_FORMATS["secret"].pattern
    assert bool(re.search(pattern, secret)) == (standard_secret_problem(secret.strip()) is None), secret


def test_the_document_has_one_schema_per_kind_and_credential() -> None:
    names = credential_names()
    assert names["webhook"] == ("url", "secret", "previous_secret")
    assert names["klaviyo"] == ("api_key",)
    assert "pk_" in credential_schema("klaviyo", "api_key")["pattern"]
    assert "pk_" not in credential_schema("esputnik", "api_key")["pattern"]


def test_control_characters_around_a_key_are_trimmed_before_it_is_checked(api, db) -> None:  # noqa: ANN001
    """pydantic's own trim keeps \\x1c-\\x1f; the document (and Python) count them as white space."""
    destination_id = _create(api, "sendlane")
    changed = api.patch(f"/api/v1/destinations/{destination_id}", json={"credentials": {
        "api_token": "\x1c\u2009sl_api_token_2\r\x1f"}})
    assert changed.status_code == 200, changed.get_json()
    stored = decrypt_json(db.session.get(Destination, destination_id).credentials_encrypted)
    assert stored["api_token"] == "sl_api_token_2"


def _form(client, path: str, data: dict):  # noqa: ANN001, ANN202
    return client.post(path, data={"csrf_token": csrf_token(client, "/destinations/"), **data})


def _error_next_to(html: str, field_name: str) -> str:
    match = re.search(rf'name="{re.escape(field_name)}".*?<p class="field-error" role="alert">([^<]+)</p>',
                      html, re.S)
    assert match, f"no error shown after {field_name}"
    assert html[match.start():match.end()].count("<input") <= 1, f"error is not next to {field_name}"
    return match.group(1)


def test_the_dashboard_form_shows_a_credential_error_next_to_its_field(logged_in, api) -> None:  # noqa: ANN001
    form = {"kind": "klaviyo", "name": "K", "mode": "realtime", "enabled": "1", "catalog": "off"}
    response = _form(logged_in, "/destinations/new", form | {"credentials.api_key": "pk_a b"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "pk_" in _error_next_to(html, "credentials.api_key") and "pk_a b" not in html

    destination_id = _create(api, "klaviyo")
    response = _form(logged_in, f"/destinations/{destination_id}/edit", form | {"credentials.api_key": "AbC123"})
    assert response.status_code == 422
    assert "public key" in _error_next_to(response.get_data(as_text=True), "credentials.api_key")

"""The source form: HTML form fields ↔ the API's SourceCreate/SourceUpdate bodies, plus the upload.

The dashboard validates through the same pydantic models and service as the API, so both say the same
thing about the same input. Credentials (basic auth, header token) are write-only: they are never put
back into a form, and the pages only say whether some are saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit

import pydantic
from flask import current_app
from werkzeug.datastructures import FileStorage, MultiDict

from feeds.fetch import redact
from webapp.extensions import db
from webapp.models import Source
from webapp.schemas.errors import ApiError, error_list
from webapp.schemas.sources import SourceCreate, SourceUpdate
from webapp.services.catalog.schedules import validate_schedule
from webapp.services.catalog.sources import create_source, save_upload, update_source
from webapp.services.platform.crypto import decrypt_json

KIND_LABELS: dict[str, str] = {
    "csv": "CSV", "json": "JSON", "xml": "XML", "google": "Google Merchant feed",
    "shopify": "Shopify products.json", "woocommerce": "WooCommerce CSV export", "push": "Push (API)",
}
KIND_BLURBS: dict[str, str] = {
    "csv": "Any spreadsheet export; delimiter and encoding are detected, you map the columns.",
    "json": "A list of product objects (or JSON Lines); nested fields are mapped by dotted names.",
    "xml": "Any XML with one repeating element per product; you map its child elements.",
    "google": "A Google Merchant Center RSS 2.0 / Atom feed (g: fields read as they are).",
    "shopify": "A Shopify-style /products.json URL; every page is read, variants become products.",
    "woocommerce": "The CSV from WooCommerce › Products › Export; variations keep their parent.",
    "push": "Your store posts products to POST /api/v1/products; nothing is fetched.",
}
DELIMITERS: dict[str, str] = {"": "Detect", ",": "Comma ,", ";": "Semicolon ;", "\t": "Tab", "|": "Pipe |"}


@dataclass(frozen=True)
class OptionField:
    name: str
    label: str
    help: str


# Reader options shown under "Advanced"; blank means "detect" (so blanks are never stored).
OPTION_FIELDS: tuple[OptionField, ...] = (
    OptionField("delimiter", "CSV delimiter", "CSV and WooCommerce. Detected from the first rows."),
    OptionField("encoding", "Encoding", "CSV and WooCommerce, e.g. utf-8 or cp1252. Detected when blank."),
    OptionField("list_key", "JSON list key", "JSON: dotted path to the list of products, e.g. data.items."),
    OptionField("item_tag", "XML item element", "XML: the repeating element, e.g. product or item."),
    OptionField("store_url", "Store URL", "The shop's address: WooCommerce and Shopify product links are built "
                                         "from it (without it feeds have no products); base for relative links."),
    OptionField("currency", "Default currency", "3-letter code used when a row has no currency, e.g. EUR."),
)
OPTION_NAMES = tuple(option.name for option in OPTION_FIELDS)
FIELDS = ("name", "kind", "via", "location", "upload", "schedule", "timezone", "enabled", "max_remove_share",
          "credentials.username", "credentials.password", "credentials.header_name",
          "credentials.header_value", *(f"options.{name}" for name in OPTION_NAMES))


@dataclass
class SourceForm:
    """What the template renders: values to show (never credentials) and the errors by field path."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    general_errors: list[str] = field(default_factory=list)


def new_form(kind: str = "csv", via: str = "upload") -> SourceForm:
    kind = kind if kind in KIND_LABELS else "csv"
    return SourceForm({"name": "", "kind": kind, "via": "url" if via == "url" else "upload", "location": "",
                       "schedule": "0 2 * * *", "timezone": "UTC", "enabled": True, "max_remove_share": "",
                       "options": dict.fromkeys(OPTION_NAMES, "")})


def edit_form(source: Source) -> SourceForm:
    options = source.options or {}
    share = source.max_remove_share
    return SourceForm({
        "name": source.name, "kind": source.kind, "via": "url" if source.location else "upload",
        "location": redact(source.location) if source.location else "", "schedule": source.schedule, "timezone": source.timezone,
        "enabled": source.enabled, "max_remove_share": "" if share is None else f"{share * 100:g}",
        "options": {name: str(options.get(name) or "") for name in OPTION_NAMES}})


def credentials_summary(source: Source) -> list[str]:
    """Which kind of credentials are saved ("basic auth", "header token"), never their values."""
    try:
        stored = decrypt_json(source.credentials_encrypted)
    except ValueError:
        return ["credentials that cannot be decrypted (enter them again)"]
    found = []
    if stored.get("username"):
        found.append("basic auth")
    if stored.get("header_name"):
        found.append("header token")
    return found


def _share(raw: str) -> Any:
    """The percentage typed in the form as the 0–1 share the API takes; junk is passed on for pydantic."""
    try:
        return float(raw) / 100
    except ValueError:
        return raw


def _options(form: MultiDict, existing: dict[str, Any] | None) -> dict[str, Any]:
    """Form options over the stored ones; keys the form does not show (API `defaults`) are kept."""
    kept = {key: value for key, value in (existing or {}).items() if key not in OPTION_NAMES}
    typed = {name: form.get(f"options.{name}", "").strip() if name != "delimiter" else form.get("options.delimiter", "")
             for name in OPTION_NAMES}
    if typed["currency"]:
        typed["currency"] = typed["currency"].upper()
    return kept | {name: value for name, value in typed.items() if value}


def _credentials(form: MultiDict) -> dict[str, str]:
    names = ("username", "password", "header_name", "header_value")
    return {name: value for name in names if (value := form.get(f"credentials.{name}", "").strip())}


def form_body(form: MultiDict, *, source: Source | None) -> dict[str, Any]:
    """The JSON body the API would take for this form (blank credentials mean "keep")."""
    kind = source.kind if source is not None else form.get("kind", "")
    via = form.get("via", "upload")
    body: dict[str, Any] = {"name": form.get("name", ""), "schedule": form.get("schedule", "").strip() or "0 2 * * *",
                            "timezone": form.get("timezone", "").strip() or "UTC",
                            "enabled": form.get("enabled") == "1",
                            "options": _options(form, source.options if source else None)}
    raw_share = form.get("max_remove_share", "").strip()
    body["max_remove_share"] = _share(raw_share) if raw_share else None
    if source is None:
        body["kind"] = kind
    if kind != "push":
        body["location"] = form.get("location", "").strip() if via == "url" else ""
        if source is not None and source.location and body["location"] == redact(source.location):
            body["location"] = source.location  # the form showed it without its user:password
        credentials = _credentials(form)
        if via != "url" or form.get("credentials.clear") == "1":
            body["credentials"] = {} if source is not None and source.credentials_encrypted else None
        elif credentials:
            body["credentials"] = credentials
    if body.get("credentials") is None:
        body.pop("credentials", None)
    return body


def _url_problems(form: MultiDict) -> list[dict[str, str]]:
    """A user:password inside the URL would be shown on every page: it belongs in the access fields."""
    if form.get("via") == "url" and urlsplit(form.get("location", "").strip()).password is not None:
        return [{"path": "location", "message": "put the user and password in the basic auth fields below, "
                                                "not in the URL (they are stored encrypted there)"}]
    return []


def _schedule_problems(body: dict[str, Any]) -> list[dict[str, str]]:
    """The service checks the schedule only once the rest is valid; the form reports everything at once."""
    if body.get("kind") == "push":
        return []
    return [{"path": message.split(":", 1)[0], "message": message.split(": ", 1)[1]}
            for message in validate_schedule(body["schedule"], body["timezone"])]


def _echo(form: MultiDict, source: Source | None) -> dict[str, Any]:
    """What the user typed, to show again after an error; credentials are left out on purpose."""
    return {"name": form.get("name", ""), "kind": source.kind if source else form.get("kind", "csv"),
            "via": form.get("via", "upload"), "location": redact(form.get("location", "")),
            "schedule": form.get("schedule", ""), "timezone": form.get("timezone", ""),
            "enabled": form.get("enabled") == "1", "max_remove_share": form.get("max_remove_share", ""),
            "options": {name: form.get(f"options.{name}", "") for name in OPTION_NAMES}}


def _with_errors(form: MultiDict, source: Source | None, problems: list[dict[str, str]]) -> SourceForm:
    result = SourceForm(_echo(form, source))
    for item in problems:
        path = item["path"]
        if path.startswith("credentials.") and path not in FIELDS:
            path = "credentials.username"
        if path in FIELDS:
            result.errors.setdefault(path, item["message"])
        else:
            result.general_errors.append(f"{path}: {item['message']}" if path else item["message"])
    return result


def _file_problems(form: MultiDict, upload: FileStorage | None, kind: str, *,
                   required: bool) -> list[dict[str, str]]:
    """The URL or the upload, checked before the source row is written so a bad one leaves nothing behind.

    `required`: an upload must come with this form (a new file source, or one switching from a URL).
    """
    if kind == "push":
        return []
    if form.get("via", "upload") == "url":
        return _url_problems(form)
    if upload is None or not upload.filename:
        return [{"path": "upload", "message": "choose the file to upload"}] if required else []
    if _size(upload.stream) == 0:
        return [{"path": "upload", "message": "the file is empty"}]
    return []


def _size(stream: IO[bytes]) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def save_new(form: MultiDict, upload: FileStorage | None) -> tuple[Source | None, SourceForm | None]:
    """Create from the form (and keep its file): (source, None) or (None, the form with its errors)."""
    body = form_body(form, source=None)
    problems = _file_problems(form, upload, body["kind"], required=True) + _schedule_problems(body)
    try:
        data = SourceCreate.model_validate(body)
    except pydantic.ValidationError as exc:
        return None, _with_errors(form, None, error_list(exc) + problems)
    if problems:
        return None, _with_errors(form, None, problems)
    try:
        source = create_source(data)
    except ApiError as exc:
        db.session.rollback()
        return None, _with_errors(form, None, exc.errors)
    if data.location is None and upload is not None and upload.filename and data.kind != "push":
        save_upload(source, upload.filename, upload.stream)
    return source, None


def save_changes(source: Source, form: MultiDict, upload: FileStorage | None) -> SourceForm | None:
    """Apply the form (and a replacement file, if one came): None when saved, else the form with errors."""
    body = form_body(form, source=source)
    problems = _file_problems(form, upload, source.kind, required=not source.upload_path)
    problems += _schedule_problems(body | {"kind": source.kind})
    try:
        data = SourceUpdate.model_validate(body)
    except pydantic.ValidationError as exc:
        return _with_errors(form, source, error_list(exc) + problems)
    if problems:
        return _with_errors(form, source, problems)
    try:
        update_source(source, data)
    except ApiError as exc:
        db.session.rollback()  # the service may have set attributes before it refused
        return _with_errors(form, source, exc.errors)
    if upload is not None and upload.filename and source.kind != "push" and not source.location:
        save_upload(source, upload.filename, upload.stream)
    return None


def upload_limit() -> int:
    """Largest source file the dashboard accepts (the same cap as a downloaded source)."""
    return int(current_app.config["SOURCE_MAX_BYTES"])

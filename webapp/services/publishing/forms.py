"""The feed form: HTML form fields ↔ the API's FeedCreate/FeedUpdate bodies.

Rules and field overrides are ordered rows of plain inputs (`rules-3-field`, `overrides-1-template`)
so the form works without JavaScript; each row is checked on its own so its error shows next to it.
The basic-auth password is write-only: it is never put back into a form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pydantic
from werkzeug.datastructures import MultiDict

from feeds.rules import OPS, validate_rules
from feeds.writers import FEED_FORMATS, OVERRIDABLE_FIELDS, validate_overrides
from webapp.extensions import db
from webapp.models import Feed
from webapp.schemas.errors import ApiError, error_list
from webapp.schemas.feeds import FeedCreate, FeedUpdate
from webapp.services.platform.crypto import decrypt_json
from webapp.services.publishing.feeds import create_feed, update_feed

OP_LABELS = {
    "eq": "is", "ne": "is not", "contains": "contains", "in": "is one of (comma-separated)",
    "gt": "is more than", "gte": "is at least", "lt": "is less than", "lte": "is at most",
    "is_true": "is true", "is_false": "is false", "empty": "is empty", "not_empty": "is not empty",
}
VALUELESS_OPS = frozenset(("is_true", "is_false", "empty", "not_empty"))
RULE_FIELD_SUGGESTIONS = ("category", "brand", "in_stock", "price", "compare_at_price", "title", "description",
                          "external_id", "item_group_id", "sku", "gtin", "mpn", "condition", "currency",
                          "inventory_quantity", "link", "image_link", "extras.")
OVERRIDE_FIELD_SUGGESTIONS = (*sorted(OVERRIDABLE_FIELDS), "extras.")
FORMAT_HINTS = {
    "klaviyo_xml": "Klaviyo → Catalog → Custom catalog source (XML). Large catalogs are split into numbered files.",
    "klaviyo_json": "Klaviyo custom catalog source (JSON). Large catalogs are split into numbered files.",
    "google_rss": "Google Merchant Center scheduled fetch (RSS 2.0 with g: fields).",
    "meta_csv": "Meta Commerce Manager data feed (CSV).",
}
_ROW_KEY = re.compile(r"^(rules|overrides)-(\d+)-([a-z_]+)$")
_FORM_FIELDS = frozenset(("name", "slug", "format", "source_ids", "max_loss_share", "gzip",
                          "basic_auth", "basic_auth.username", "basic_auth.password"))


@dataclass
class FeedForm:
    """What the template renders: the values to show (never the password) and the errors by field."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    rule_errors: dict[int, str] = field(default_factory=dict)       # row position → message
    override_errors: dict[int, str] = field(default_factory=dict)   # row position → message
    general_errors: list[str] = field(default_factory=list)
    auth_saved: bool = False                                         # a password is stored

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or self.rule_errors or self.override_errors or self.general_errors)


@dataclass
class ParsedRows:
    """Rules and overrides read from the form, with the row each came from and per-row problems."""

    rules: list[dict[str, Any]] = field(default_factory=list)
    rule_rows: list[dict[str, str]] = field(default_factory=list)
    overrides: dict[str, str] = field(default_factory=dict)
    override_rows: list[dict[str, str]] = field(default_factory=list)
    rule_errors: dict[int, str] = field(default_factory=dict)
    override_errors: dict[int, str] = field(default_factory=dict)


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:119] or "feed"


def rule_row(rule: dict[str, Any]) -> dict[str, str]:
    """A stored rule as the strings its form row shows."""
    value = rule.get("value")
    if isinstance(value, list):
        value = ", ".join(str(element) for element in value)
    return {"action": str(rule.get("action", "include")), "field": str(rule.get("field", "")),
            "op": str(rule.get("op", "eq")), "value": "" if value is None else str(value)}


def blank_rule_row() -> dict[str, str]:
    return {"action": "include", "field": "", "op": "eq", "value": ""}


def blank_override_row() -> dict[str, str]:
    return {"field": "", "template": ""}


def new_form() -> FeedForm:
    return FeedForm({"name": "", "slug": "", "format": "klaviyo_xml", "source_ids": [], "rule_rows": [],
                     "override_rows": [], "auth_username": "", "gzip": True, "max_loss_percent": ""})


def edit_form(feed: Feed) -> FeedForm:
    return FeedForm({
        "name": feed.name, "slug": feed.slug, "format": feed.format, "source_ids": [s.id for s in feed.sources],
        "rule_rows": [rule_row(rule) for rule in feed.rules or []],
        "override_rows": [{"field": key, "template": str(value)} for key, value in (feed.field_overrides or {}).items()],
        "auth_username": feed.basic_auth_username or "", "gzip": feed.gzip,
        "max_loss_percent": _percent(feed.max_loss_share)}, auth_saved=bool(feed.basic_auth_password_encrypted))


def _percent(share: float | None) -> str:
    return "" if share is None else f"{share * 100:g}"


def row_indexes(form: MultiDict, group: str) -> list[int]:
    """The row numbers present in the form for `rules` or `overrides`, in order."""
    found = {int(match.group(2)) for key in form if (match := _ROW_KEY.match(key)) and match.group(1) == group}
    return sorted(found)


def next_row_index(form: MultiDict, group: str) -> int:
    indexes = row_indexes(form, group)
    return indexes[-1] + 1 if indexes else 0


def parse_rows(form: MultiDict) -> ParsedRows:
    """Read the rule and override rows (blank rows and rows ticked "remove" are dropped)."""
    parsed = ParsedRows()
    for index in row_indexes(form, "rules"):
        get = lambda name, i=index: (form.get(f"rules-{i}-{name}") or "").strip()  # noqa: E731
        row = {"action": get("action") or "include", "field": get("field"), "op": get("op") or "eq",
               "value": get("value")}
        if get("remove") or (not row["field"] and not row["value"]):
            continue
        position = len(parsed.rule_rows)
        parsed.rule_rows.append(row)
        rule = _rule_from_row(row)
        problems = validate_rules([rule]) if row["field"] else ["choose the field this rule looks at"]
        if problems:
            parsed.rule_errors[position] = "; ".join(re.sub(r"^rule 1( \([^)]*\))?: ", "", p) for p in problems)
        else:
            parsed.rules.append(rule)
    for index in row_indexes(form, "overrides"):
        target = (form.get(f"overrides-{index}-field") or "").strip()
        template = form.get(f"overrides-{index}-template") or ""
        if form.get(f"overrides-{index}-remove") or (not target and not template.strip()):
            continue
        position = len(parsed.override_rows)
        parsed.override_rows.append({"field": target, "template": template})
        if not target:
            parsed.override_errors[position] = "choose the field this template fills"
        elif target in parsed.overrides:
            parsed.override_errors[position] = f"{target} already has a template above"
        elif problems := validate_overrides({target: template}):
            parsed.override_errors[position] = "; ".join(problems)
        else:
            parsed.overrides[target] = template
    return parsed


def _rule_from_row(row: dict[str, str]) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": row["action"], "field": row["field"], "op": row["op"]}
    if row["op"] in VALUELESS_OPS:
        return rule
    if row["op"] == "in":
        rule["value"] = [part.strip() for part in row["value"].split(",") if part.strip()]
    else:
        rule["value"] = row["value"]
    return rule


def source_ids(form: MultiDict) -> list[int]:
    return [int(value) for value in form.getlist("source_ids") if value.isdigit()]


def _echo(form: MultiDict, rows: ParsedRows, feed: Feed | None) -> FeedForm:
    """What the user typed, to show again after an error or an added row (the password is left out)."""
    return FeedForm({
        "name": form.get("name", ""), "slug": form.get("slug", ""), "format": form.get("format", ""),
        "source_ids": source_ids(form), "rule_rows": rows.rule_rows, "override_rows": rows.override_rows,
        "auth_username": form.get("auth_username", ""), "gzip": form.get("gzip") == "1",
        "max_loss_percent": form.get("max_loss_percent", "")},
        rule_errors=rows.rule_errors, override_errors=rows.override_errors,
        auth_saved=bool(feed and feed.basic_auth_password_encrypted))


def echo_form(form: MultiDict, feed: Feed | None, add: str | None = None) -> FeedForm:
    """The form as typed, optionally with one more blank `rules`/`overrides` row ("Add" without JS)."""
    result = _echo(form, parse_rows(form), feed)
    if add == "rules":
        result.values["rule_rows"].append(blank_rule_row())
    elif add == "overrides":
        result.values["override_rows"].append(blank_override_row())
    return result


def form_body(form: MultiDict, rows: ParsedRows, feed: Feed | None, errors: dict[str, str]) -> dict[str, Any]:
    """The JSON body the API would take for this form; form-only problems go into `errors`."""
    name = form.get("name", "").strip()
    slug = form.get("slug", "").strip().lower()
    if not slug and feed is None:
        slug = slugify(name) if name else ""
    body: dict[str, Any] = {"name": name, "format": form.get("format", ""), "source_ids": source_ids(form),
                            "rules": rows.rules, "field_overrides": rows.overrides,
                            "gzip": form.get("gzip") == "1", "max_loss_share": _share(form, errors)}
    if slug or feed is None:
        body["slug"] = slug
    if not body["source_ids"]:
        errors["source_ids"] = "choose at least one source"
    auth = _auth(form, feed, errors)
    if auth is not _KEEP:
        body["basic_auth"] = auth
    return body


def _share(form: MultiDict, errors: dict[str, str]) -> float | None:
    raw = form.get("max_loss_percent", "").strip().rstrip("%").strip()
    if not raw:
        return None
    try:
        percent = float(raw)
    except ValueError:
        errors["max_loss_share"] = "enter a percentage between 0 and 100, or leave it blank"
        return None
    if not 0 <= percent <= 100:
        errors["max_loss_share"] = "enter a percentage between 0 and 100, or leave it blank"
        return None
    return percent / 100


_KEEP = object()


def _auth(form: MultiDict, feed: Feed | None, errors: dict[str, str]) -> Any:
    """The basic_auth body: a new {username, password}, None to remove it, or _KEEP the stored one."""
    username = form.get("auth_username", "").strip()
    password = form.get("auth_password", "")
    if form.get("auth_remove") == "1" or (not username and not password):
        return None if feed is not None and feed.basic_auth_username else (_KEEP if feed else None)
    if not username:
        errors["basic_auth.username"] = "enter a username to go with the password"
        return _KEEP
    if password:
        return {"username": username, "password": password}
    if feed is not None and feed.basic_auth_password_encrypted:
        if username == feed.basic_auth_username:
            return _KEEP
        stored = decrypt_json(feed.basic_auth_password_encrypted).get("password", "")
        return {"username": username, "password": stored}
    errors["basic_auth.password"] = "enter a password (at least 8 characters)"
    return _KEEP


def _with_errors(form: MultiDict, rows: ParsedRows, feed: Feed | None, problems: list[dict[str, str]],
                 form_errors: dict[str, str]) -> FeedForm:
    result = _echo(form, rows, feed)
    result.errors.update(form_errors)
    for item in problems:
        path = item["path"]
        message = item["message"]
        if path.startswith("source_ids"):
            path, message = "source_ids", ("choose at least one source" if "at least" in message else message)
        elif path == "slug" and "format" in message:
            message = "use lowercase letters, digits and dashes (it becomes the file name)"
        if path in _FORM_FIELDS:
            result.errors.setdefault(path, message)
        else:
            result.general_errors.append(f"{path}: {message}" if path else message)
    return result


def save_new(form: MultiDict) -> tuple[Feed | None, FeedForm | None]:
    """Create from the form: (feed, None) or (None, the form with its errors)."""
    return _save(form, None)


def save_changes(feed: Feed, form: MultiDict) -> FeedForm | None:
    """Apply the form to a feed: None when saved, else the form with its errors."""
    return _save(form, feed)[1]


def _save(form: MultiDict, feed: Feed | None) -> tuple[Feed | None, FeedForm | None]:
    rows = parse_rows(form)
    form_errors: dict[str, str] = {}
    body = form_body(form, rows, feed, form_errors)
    problems: list[dict[str, str]] = []
    try:
        data = (FeedUpdate if feed else FeedCreate).model_validate(body)
    except pydantic.ValidationError as exc:
        problems = error_list(exc)
        data = None
    if data is None or form_errors or rows.rule_errors or rows.override_errors:
        return None, _with_errors(form, rows, feed, problems, form_errors)
    try:
        return (update_feed(feed, data) if feed else create_feed(data)), None
    except ApiError as exc:
        db.session.rollback()  # the service may have set attributes before it refused
        return None, _with_errors(form, rows, feed, exc.errors, form_errors)


def format_choices() -> list[tuple[str, str, str]]:
    """(format, label, where it goes) for the format picker."""
    return [(name, fmt.label, FORMAT_HINTS.get(name, "")) for name, fmt in FEED_FORMATS.items()]


def op_choices() -> list[tuple[str, str]]:
    return [(op, OP_LABELS.get(op, op)) for op in OPS]

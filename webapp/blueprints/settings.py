"""Dashboard: settings — users, API keys and what this instance runs on.

Each section is its own fragment (#users, #api-keys, #instance): htmx swaps the section a form changed,
a plain browser gets the whole page. Secrets (a generated password, a new API key) are rendered into that
one response only and never stored anywhere they could be shown again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from webapp.blueprints.common import dashboard_blueprint, is_htmx
from webapp.models.accounts import ROLES
from webapp.security import API_SCOPES, ROLE_HELP, SCOPE_HELP, create_api_key, create_user, revoke_api_key
from webapp.services.overview.instance_info import instance_info
from webapp.services.overview.runtime_status import runtime_status
from webapp.services.platform.accounts import (
    AccountError,
    form_errors,
    get_user,
    list_api_keys,
    list_users,
    set_user_active,
    set_user_admin,
    set_user_role,
)

bp = dashboard_blueprint("settings", __name__, url_prefix="/settings")

SECTIONS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "users": ("settings/_users.html", lambda: {"users": list_users(), "roles": ROLES[::-1], "role_help": ROLE_HELP}),
    "api-keys": ("settings/_api_keys.html", lambda: {"api_keys": list_api_keys(), "api_scopes": API_SCOPES,
                                                     "scope_help": SCOPE_HELP}),
    "instance": ("settings/_instance.html", lambda: {"info": instance_info(runtime_status())}),
}


def _render(section: str | None, *, failed: bool = False, secret: bool = False, **extra: Any):  # noqa: ANN202
    """The changed section for htmx, the whole page otherwise.

    Refused input is 422 for a plain form post but 200 for htmx, which only swaps successful responses.
    """
    if section and is_htmx():
        template, load = SECTIONS[section]
        body = render_template(template, **load(), **extra)
    else:
        context: dict[str, Any] = {}
        for _, load in SECTIONS.values():
            context |= load()
        body = render_template("settings/index.html", **context, **extra)
    headers = {"Cache-Control": "no-store"} if secret else {}
    return body, 422 if failed and not is_htmx() else 200, headers


def _require_admin() -> None:
    if not current_user.is_admin:
        abort(403)


def _back(section: str, message: str, category: str = "success"):  # noqa: ANN202
    """After a toggle: the fresh section for htmx, a redirect (post/redirect/get) for a plain form."""
    if is_htmx():
        return _render(section, notice=(category, message))
    flash(message, category)
    return redirect(url_for("settings.index") + "#" + section)


@bp.get("/")
def index():  # noqa: ANN201
    return _render(None)


@bp.get("/users")
def users():  # noqa: ANN201
    return _render("users")


@bp.get("/api-keys")
def api_keys():  # noqa: ANN201
    return _render("api-keys")


@bp.get("/instance")
def instance():  # noqa: ANN201
    return _render("instance")


@bp.post("/users")
def create_user_view():  # noqa: ANN201
    _require_admin()
    email, password = request.form.get("email", ""), request.form.get("password", "")
    try:
        role = request.form.get("role") or ("admin" if request.form.get("is_admin") == "1" else "member")
        user, plain = create_user(email, password or None, role=role)
    except ValueError as exc:
        return _render("users", failed=True, user_errors=form_errors(exc), user_form={"email": email,
                                                                                      "role": role})
    return _render("users", secret=True, created_user=user, generated_password=None if password else plain)


@bp.post("/users/<int:user_id>/active")
def set_active(user_id: int):  # noqa: ANN201
    _require_admin()
    user, active = get_user(user_id), request.form.get("active") == "1"
    try:
        set_user_active(user, active, current_user)
    except AccountError as exc:
        return _back("users", str(exc), "error")
    return _back("users", f"{user.email} {'enabled' if active else 'disabled'}.")


@bp.post("/users/<int:user_id>/admin")
def set_admin(user_id: int):  # noqa: ANN201
    _require_admin()
    user, is_admin = get_user(user_id), request.form.get("admin") == "1"
    try:
        set_user_admin(user, is_admin, current_user)
    except AccountError as exc:
        return _back("users", str(exc), "error")
    return _back("users", f"{user.email} is {'now an admin' if is_admin else 'no longer an admin'}.")


@bp.post("/users/<int:user_id>/role")
def set_role(user_id: int):  # noqa: ANN201
    _require_admin()
    user, role = get_user(user_id), request.form.get("role", "")
    try:
        set_user_role(user, role, current_user)
    except AccountError as exc:
        return _back("users", str(exc), "error")
    return _back("users", f"{user.email} is now {role}.")


@bp.post("/api-keys")
def create_api_key_view():  # noqa: ANN201
    _require_admin()
    name, scope = request.form.get("name", ""), request.form.get("scope", "ingest")
    try:
        key, plain = create_api_key(name, scope)
    except ValueError as exc:
        return _render("api-keys", failed=True, key_errors=form_errors(exc), key_form={"name": name, "scope": scope})
    return _render("api-keys", secret=True, created_key=key, plain_key=plain)


@bp.post("/api-keys/<int:key_id>/revoke")
def revoke(key_id: int):  # noqa: ANN201
    _require_admin()
    key = revoke_api_key(key_id)
    return _back("api-keys", f"API key “{key.name}” revoked: requests with it now get 401.")

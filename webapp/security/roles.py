"""Dashboard roles: one table (`role_needed`) read for every dashboard request from its endpoint and method
by an app-wide hook, so no view repeats it; a route added later is readable by viewers and changeable by admins
until MEMBER_ACTIONS names it (tests/webapp/test_roles.py walks the URL map)."""

from __future__ import annotations

from flask import abort, request
from flask_login import current_user

from webapp.models.accounts import ROLES
from webapp.security.api_keys import READ_METHODS

# Blueprints that are not the dashboard: their own guards (API keys, feed tokens, none for health and onsite).
NOT_DASHBOARD = frozenset({"api", "feed_serving", "ops", "auth", "static", "onsite", "demo_sink"})
ROLE_HELP = {
    "viewer": "reads every page, changes nothing",
    "member": "works with sources, feeds, imports and retries",
    "admin": "also manages destinations, alerts, replays, API keys and users",
}
# What a member may change besides reading: everything else that changes something needs an admin.
MEMBER_ACTIONS = frozenset({
    "sources.create", "sources.update", "sources.delete", "sources.save_mapping", "sources.mapping_preview",
    "sources.sync", "feeds.create", "feeds.update", "feeds.delete", "feeds.build", "feeds.publish", "feeds.rotate",
    "feeds.preview", "imports.upload", "imports.resume", "orders.retry", "destinations.retry_event",
    "destinations.retry_failed", "destinations.test", "jobs.requeue", "contacts.refresh",
})


def role_needed(endpoint: str | None, method: str) -> str:
    """The least role that may call this dashboard endpoint with this method."""
    if method in READ_METHODS:
        return "viewer"
    return "member" if endpoint in MEMBER_ACTIONS else "admin"


def role_allows(role: str, endpoint: str | None, method: str) -> bool:
    return ROLES.index(role) >= ROLES.index(role_needed(endpoint, method)) if role in ROLES else False


def can(endpoint: str, method: str = "POST") -> bool:
    """For templates: whether the logged-in user's role may call this endpoint (hide what would be a 403)."""
    return bool(current_user.is_authenticated) and role_allows(current_user.role, endpoint, method)


def role_guard() -> None:
    """403 for a logged-in user whose role does not allow this dashboard call (a route added later is read
    by viewers and changed by admins until MEMBER_ACTIONS names it). Not logged in: the blueprint's own guard
    sends them to the login page."""
    if request.endpoint is None or request.blueprint in NOT_DASHBOARD or request.blueprint is None:
        return
    if not current_user.is_authenticated or role_allows(current_user.role, request.endpoint, request.method):
        return
    needed = role_needed(request.endpoint, request.method)
    abort(403, description=f"Your role ({current_user.role}) cannot do this: it needs {needed}"
                           f"{' or admin' if needed == 'member' else ''}. Ask an admin.")

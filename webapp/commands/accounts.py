"""`shoprelay users ...` and `shoprelay apikeys ...`."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from webapp.extensions import db
from webapp.models import ApiKey, User
from webapp.security import API_SCOPES, create_api_key, create_user, hash_password, revoke_api_key

users = AppGroup("users", help="Dashboard users.")
apikeys = AppGroup("apikeys", help="API keys for /api/v1.")
GROUPS = (users, apikeys)


@users.command("create")
@click.argument("email")
@click.option("--password", default=None, help="Default: a generated password, printed once.")
@click.option("--admin/--no-admin", default=True, show_default=True, help="admin, or member (without --role).")
@click.option("--role", type=click.Choice(["admin", "member", "viewer"]), default=None,
              help="admin: also destinations, alerts, keys and users; member: sources, feeds, imports, retries; "
                   "viewer: reads. Wins over --admin/--no-admin.")
def users_create(email: str, password: str | None, admin: bool, role: str | None) -> None:
    """Create a dashboard user."""
    try:
        user, password = create_user(email, password, is_admin=admin, role=role)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {user.email}. Password (shown once): {password}")


@users.command("set-password")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def users_set_password(email: str, password: str) -> None:
    """Reset a user's password."""
    user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"no user {email}")
    if len(password) < 8:
        raise click.ClickException("password: at least 8 characters")
    user.password_hash = hash_password(password)
    db.session.commit()
    click.echo(f"Password of {user.email} changed.")


@users.command("list")
def users_list() -> None:
    for user in db.session.scalars(sa.select(User).order_by(User.id)):
        state = "active" if user.active else "disabled"
        click.echo(f"{user.id}\t{user.email}\t{state}\t{user.role}")


@apikeys.command("create")
@click.argument("name")
@click.option("--scope", type=click.Choice(API_SCOPES), default="admin", show_default=True,
              help="ingest: a store backend (orders, checkouts, products, back in stock; read orders). "
                   "read: read everything, change nothing. admin: everything.")
def apikeys_create(name: str, scope: str) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    try:
        key, plain = create_api_key(name, scope)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(plain)
    click.echo(f"(key #{key.id} '{key.name}', scope {key.scope}: store it now, it cannot be shown again)",
               err=True)


@apikeys.command("list")
def apikeys_list() -> None:
    """Every key: id, name, prefix, scope, state and last use (recorded at most once a minute)."""
    for key in db.session.scalars(sa.select(ApiKey).order_by(ApiKey.id)):
        state = "revoked" if key.revoked_at else "active"
        click.echo(f"{key.id}\t{key.name}\t{key.prefix}…\t{key.scope}\t{state}\t"
                   f"last used {key.last_used_at or 'never'}")


@apikeys.command("revoke")
@click.argument("key_id", type=int)
def apikeys_revoke(key_id: int) -> None:
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise click.ClickException(f"no API key #{key_id}")
    revoke_api_key(key_id)
    click.echo(f"Revoked key #{key_id} '{key.name}'.")

"""Administrative CLI groups, attached to the app's CLI (one module per noun)."""

from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    from webapp.commands import accounts, alerts, catalog, contacts, destinations, orders

    for module in (accounts, alerts, catalog, contacts, destinations, orders):
        for group in module.GROUPS:
            app.cli.add_command(group)

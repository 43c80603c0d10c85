"""Dashboard: destinations — list, create/edit, detail with its logs, and the delivery operations."""

from webapp.blueprints.destinations import actions  # noqa: F401  (registers the POST actions on bp)
from webapp.blueprints.destinations.pages import bp

__all__ = ["bp"]

"""Dashboard: feeds — list, create/edit with a live preview, detail with builds, report and fetch log."""

from webapp.blueprints.feeds import actions  # noqa: F401  (registers the POST actions on bp)
from webapp.blueprints.feeds.pages import bp

__all__ = ["bp"]

"""Dashboard: sources — list, create/edit with the mapping step, detail with sync runs, products browser."""

from webapp.blueprints.sources import actions, forms, products  # noqa: F401  (register their routes on bp)
from webapp.blueprints.sources.pages import bp

__all__ = ["bp"]

"""The products browser (part of the sources area): search, filters, keyset pages, one product's panel."""

from __future__ import annotations

from flask import abort, render_template, request

from webapp.blueprints.common import is_htmx, render_page_or_partial
from webapp.blueprints.sources.pages import bp
from webapp.extensions import db
from webapp.models import Product, Source
from webapp.services.catalog.product_queries import (
    STOCK_CHOICES,
    ProductFilters,
    brand_choices,
    catalog_size,
    list_products,
    product_fields,
    source_choices,
)
from webapp.services.platform_catalogs import back_in_stock


def _cursor(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() else None


@bp.get("/products")
def products():  # noqa: ANN201
    filters = ProductFilters.from_args(request.args)
    results = list_products(filters, after=_cursor("after"), before=_cursor("before"))
    context = {"filters": filters, "results": results, "total": catalog_size(filters.source)}
    if not is_htmx():
        context |= {"sources": source_choices(), "brands": brand_choices(),
                    "stock_choices": STOCK_CHOICES}
    return render_page_or_partial("sources/products.html", "sources/_product_rows.html", **context)


@bp.get("/products/<int:product_id>")
def product(product_id: int):  # noqa: ANN201
    """All of a product's fields and extras: the side panel for htmx, a page of its own otherwise."""
    found = db.session.get(Product, product_id)
    if found is None:
        abort(404)
    context = {"product": found, "fields": product_fields(found), "source": db.session.get(Source, found.source_id),
               "waiting": back_in_stock.waiting_for(found)}
    if is_htmx():
        return render_template("sources/_product_panel.html", **context)
    return render_template("sources/product.html", **context)

"""The order page links a line only to an http(s) URL, whatever an older version stored (issue 19)."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.models import OrderLine

pytestmark = both_databases


def test_a_stored_javascript_url_is_not_rendered_as_a_link(logged_in, api, db):
    assert api.post("/api/v1/orders", json=make_order(id="legacy-1")).status_code == 202
    # As stored before links were checked on the way in.
    db.session.execute(sa.update(OrderLine).where(OrderLine.sku == "WINNIEPOOH").values(
        url="javascript:alert(5)", image_url="data:text/html,<script>alert(1)</script>"))
    db.session.execute(sa.update(OrderLine).where(OrderLine.sku == "TALEOFTWO").values(url=" JavaScript:alert(6)"))
    db.session.commit()
    html = logged_in.get("/orders/legacy-1").get_data(as_text=True)
    assert "Winnie the Pooh" in html and "A Tale of Two Cities" in html
    lowered = html.lower()
    assert 'href="javascript:' not in lowered and 'href=" javascript:' not in lowered
    assert 'src="data:' not in lowered and "alert(5)" not in html


def test_an_http_line_url_is_a_link(logged_in, api):
    assert api.post("/api/v1/orders", json=make_order(id="fresh-1")).status_code == 202
    html = logged_in.get("/orders/fresh-1").get_data(as_text=True)
    assert 'href="https://shop.example/p/1111"' in html

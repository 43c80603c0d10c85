"""Feed URLs are capabilities: their token cannot be guessed, and rotating it retires the old URL for good."""

from __future__ import annotations

import base64
import math

from tests.webapp.publishing.feed_helpers import buffered_clients, build_now  # noqa: F401 - autouse
from webapp.schemas.canonical.products import ProductPush
from webapp.schemas.feeds import FeedCreate
from webapp.services.catalog.product_push import apply_push
from webapp.services.publishing.feeds import create_feed, feed_json, new_token, rotate_token

URL_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _feed(slug: str = "main", **extra):  # noqa: ANN003, ANN202
    upserts = [{"external_id": f"P{i}", "title": f"Product {i}", "link": f"https://s.example/p/{i}",
                "image_link": f"https://s.example/i/{i}.png", "price": 10 + i, "description": f"About {i}",
                "categories": ["Mugs"], "inventory_quantity": 3} for i in range(3)]
    run, _ = apply_push(ProductPush(upserts=upserts))
    return create_feed(FeedCreate(name=slug, slug=slug, format="klaviyo_xml", source_ids=[run.source_id],
                                  **extra))


def test_tokens_carry_at_least_128_random_bits():
    tokens = {new_token() for _ in range(2000)}
    assert len(tokens) == 2000
    for token in tokens:
        assert set(token) <= URL_SAFE
        assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8 >= 128
    # Every position varies: the bits are random, not a counter or a timestamp padded to length.
    length = min(len(token) for token in tokens)
    for position in range(length):
        assert len({token[position] for token in tokens}) > 32
    assert length * math.log2(64) >= 128


def test_a_new_feed_gets_a_fresh_full_length_token(app):
    first, second = _feed("one"), _feed("two")
    assert first.token != second.token
    assert len(first.token) >= 22 and len(second.token) >= 22  # 22 URL-safe characters hold 132 bits


def test_rotation_retires_the_old_url_even_with_the_right_password(app, client, api):
    feed = _feed(basic_auth={"username": "klaviyo", "password": "s3cret-pass"})
    build_now(feed)
    old = feed_json(feed)["url"]
    assert client.get(old, auth=("klaviyo", "s3cret-pass")).status_code == 200
    rotated = api.post(f"/api/v1/feeds/{feed.id}/rotate-token").get_json()
    assert rotated["url"] != old
    gone = client.get(old, auth=("klaviyo", "s3cret-pass"))
    assert gone.status_code == 404 and "rotated" in gone.get_json()["errors"][0]["message"]
    assert client.get(old).status_code == 404  # no 401 either: the old URL says nothing about the feed
    new = rotated["url"].replace("http://localhost", "")
    assert client.get(new, auth=("klaviyo", "s3cret-pass")).status_code == 200
    assert client.get(new).status_code == 401


def test_rotating_twice_never_brings_an_old_token_back(app):
    feed = _feed()
    seen = {feed.token}
    for _ in range(20):
        seen.add(rotate_token(feed))
    assert len(seen) == 21

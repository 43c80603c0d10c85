"""The snippets the Onsite page hands to the store's developer: shoprelay's own, and each configured
platform's own JavaScript (Klaviyo, Sendlane, eSputnik) filled from its destination.

The first-party snippet is defined here once; the README shows the same text (tests compare them).
Platform snippets follow each platform's onsite guide; catalog fields appear as template placeholders
(`{{ product.title }}`) the developer swaps for their own template's variables. Placeholders sit inside
JavaScript strings so a pasted snippet runs even before that edit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

STUB = """<script>
  window.shoprelay = window.shoprelay || {q: []};
  ["identify", "track", "backInStock", "consent"].forEach(function (name) {
    shoprelay[name] = shoprelay[name] || function () { shoprelay.q.push([name].concat([].slice.call(arguments))); };
  });
</script>"""

USAGE = """<script>
  // once the visitor is known (signature: see "Signed identities"):
  //   shoprelay.identify({email: "john.smith@example.com", signature: "<HMAC-SHA256 from your backend>"});
  // on a product page:
  //   shoprelay.track("viewed_product", {product: {product_id: "1111", sku: "WINNIEPOOH", name: "Winnie the Pooh",
  //     price: 9.99, url: "https://shop.example/p/1111", image_url: "https://shop.example/i/1111.png"}});
  // when something goes into the cart:
  //   shoprelay.track("added_to_cart", {product: {...}, cart: {total: 9.99, currency: "USD", items: [...]}});
</script>"""

# Catalog field -> the placeholder the platform snippets use for the store's template variable.
TEMPLATE_FIELDS = {
    "id": "{{ product.id }}", "sku": "{{ product.sku }}", "title": "{{ product.title }}",
    "link": "{{ product.url }}", "image": "{{ product.image_url }}", "price": "{{ product.price }}",
    "compare_at_price": "{{ product.compare_at_price }}", "brand": "{{ product.brand }}",
    "categories": "{{ product.categories }}", "email": "{{ customer.email }}",
}


def first_party_snippet(base_url: str, *, consent: bool = False) -> str:
    """The stub (queues calls made before /t.js loads) and the script tag; `consent` waits for
    `shoprelay.consent(true)` before storing or sending anything."""
    base = base_url.rstrip("/")
    consent_attribute = ' data-consent="required"' if consent else ""
    return f'{STUB}\n<script src="{base}/t.js"{consent_attribute} async></script>'


def _js(value: str) -> str:
    return json.dumps(value)


def _f(name: str) -> str:
    return _js(TEMPLATE_FIELDS[name])


@dataclass(frozen=True)
class PlatformSnippet:
    kind: str
    destination: str
    code: str
    note: str


def klaviyo_snippet(public_key: str | None, destination: str = "Klaviyo") -> PlatformSnippet:
    """klaviyo.js with the account's public key (site id), the `klaviyo` object's queue, identify and
    Viewed Product / trackViewedItem with Klaviyo's property names (its custom-integration guide)."""
    key = public_key or "PUBLIC_API_KEY"
    code = f"""<script>
  window._klOnsite = window._klOnsite || [];
  window.klaviyo = window.klaviyo || {{push: function () {{ window._klOnsite.push.apply(window._klOnsite, arguments); }}}};
</script>
<script async type="text/javascript" src="https://static.klaviyo.com/onsite/js/{key}/klaviyo.js"></script>
<script>
  // Only when the shopper is logged in (leave it out otherwise):
  if ({_f("email")}.indexOf("@") > 0) {{ klaviyo.push(["identify", {{"email": {_f("email")}}}]); }}
  // On a product page:
  var item = {{
    "ProductName": {_f("title")},
    "ProductID": {_f("id")},
    "SKU": {_f("sku")},
    "Categories": {_f("categories")}.split(","),
    "ImageURL": {_f("image")},
    "URL": {_f("link")},
    "Brand": {_f("brand")},
    "Price": Number({_f("price")}),
    "CompareAtPrice": Number({_f("compare_at_price")})
  }};
  klaviyo.push(["track", "Viewed Product", item]);
  klaviyo.push(["trackViewedItem", {{
    "Title": item.ProductName, "ItemId": item.ProductID, "Categories": item.Categories,
    "ImageUrl": item.ImageURL, "Url": item.URL,
    "Metadata": {{"Brand": item.Brand, "Price": item.Price, "CompareAtPrice": item.CompareAtPrice}}
  }}]);
  // When something goes into the cart (cart = your cart):
  //   klaviyo.push(["track", "Added to Cart", {{"$value": cart.total, "AddedItemProductName": item.ProductName,
  //     "AddedItemProductID": item.ProductID, "AddedItemSKU": item.SKU, "AddedItemPrice": item.Price,
  //     "AddedItemQuantity": 1, "ItemNames": cart.names, "CheckoutURL": cart.url, "Items": cart.items}}]);
</script>"""
    note = ("Public key from the account (Klaviyo → Settings → API keys)." if public_key else
            "Replace PUBLIC_API_KEY with the account's public key (site id, Klaviyo → Settings → API keys): "
            "shoprelay could not read it with this destination's key.")
    return PlatformSnippet("klaviyo", destination, code, note)


def sendlane_snippet(integration_token: str | None, destination: str = "Sendlane") -> PlatformSnippet:
    """Sendlane's pusher.js with the custom integration token, and its events pushed to `_Sendlane`."""
    token = integration_token or "INTEGRATION_TOKEN"
    code = f"""<script>window._Sendlane = window._Sendlane || [];</script>
<script src="https://sendlane.com/scripts/pusher.js" async data-token="{token}"></script>
<script>
  // On a product page:
  _Sendlane.push({{
    "event": "product_viewed",
    "product_id": {_f("id")},
    "sku": {_f("sku")},
    "product_name": {_f("title")},
    "item_price": Number({_f("price")}),
    "product_url": {_f("link")},
    "image_url": {_f("image")}
  }});
  // When something goes into the cart:
  //   _Sendlane.push({{"event": "added_to_cart", "product_id": ..., "sku": ..., "quantity": 1, "item_price": ...}});
</script>"""
    note = ("Sendlane recognises the shopper by its own cookie (a click in a Sendlane email, a Sendlane form); "
            "use exactly one pusher.js per page.")
    return PlatformSnippet("sendlane", destination, code, note)


def esputnik_snippet(destination: str = "eSputnik") -> PlatformSnippet:
    """eSputnik's (Yespo's) eS.js web tracking with ProductPage; the site id comes from its web tracking page."""
    code = f"""<script>
  !function (t, e, c, n) {{
    var s = e.createElement(c); s.async = 1; s.src = "https://cdn.esputnik.com/scripts/" + n + ".js";
    var r = e.scripts[0]; r.parentNode.insertBefore(s, r);
    var f = function () {{ f.c(arguments); }}; f.q = []; f.c = function () {{ f.q.push(arguments); }};
    t["eS"] = t["eS"] || f;
  }}(window, document, "script", "YOUR_SITE_ID");
  eS("init", {{TRACKING: false, RECOMS: true}});
  // On a product page:
  eS("sendEvent", "ProductPage", {{"ProductPage": {{"productKey": {_f("id")}, "price": {_f("price")}, "isInStock": 1}}}});
</script>"""
    note = ("Replace YOUR_SITE_ID with the site id from Yespo/eSputnik → Site → Web tracking (it is not the API "
            "key, which never goes into a page).")
    return PlatformSnippet("esputnik", destination, code, note)

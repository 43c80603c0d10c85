/* shoprelay onsite tracker: <script src="https://YOUR-SHOPRELAY/t.js" async></script>
 * window.shoprelay.identify({email: "a@b.com"}) once the visitor is known;
 * window.shoprelay.track("viewed_product", {product: {product_id, sku, name, url, image_url, price, categories, brand}});
 * window.shoprelay.track("added_to_cart", {product: {...}, cart: {id, url, total, currency, items: [...]}});
 * window.shoprelay.backInStock({email, phone, sku | product_id, channels: ["email", "sms"]}) on a sold-out variant
 *   (the identified visitor's email when none is given); the promise says "subscribed" or why not.
 * "Active on Site" is sent once per browser session by itself. Nothing is sent for visitors never identified. */
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = new URL("/t/collect", script ? script.src : window.location.href).toString();
  var store = { get: function (k) { try { return localStorage.getItem(k); } catch (e) { return null; } },
                set: function (k, v) { try { localStorage.setItem(k, v); } catch (e) { /* private mode */ } } };
  var anon = store.get("shoprelay_anon");
  if (!anon) {
    anon = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
    store.set("shoprelay_anon", anon);
  }
  var identity = JSON.parse(store.get("shoprelay_identity") || "{}");

  function send(event, properties) {
    var body = JSON.stringify({ event: event, anonymous_id: anon, email: identity.email || null,
      customer_id: identity.customer_id || null, url: window.location.href, properties: properties || {} });
    if (navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([body], { type: "text/plain" }))) return;
    fetch(endpoint, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" } });
  }

  var api = {
    identify: function (who) {
      identity = { email: who && who.email || identity.email, customer_id: who && who.customer_id || identity.customer_id };
      store.set("shoprelay_identity", JSON.stringify(identity));
      send("identify", {});
    },
    track: function (event, properties) { send(event, properties); },
    backInStock: function (request) {
      var body = JSON.stringify({ event: "back_in_stock", anonymous_id: anon, email: identity.email || null,
        customer_id: identity.customer_id || null, url: window.location.href, properties: request || {} });
      return fetch(endpoint, { method: "POST", body: body, headers: { "Content-Type": "text/plain" } })
        .then(function (response) { return response.json(); });
    }
  };
  var queued = window.shoprelay && window.shoprelay.q;  // calls made before the script loaded
  window.shoprelay = api;
  (queued || []).forEach(function (call) { api[call[0]].apply(api, call.slice(1)); });
  try {
    if (!sessionStorage.getItem("shoprelay_active")) {
      sessionStorage.setItem("shoprelay_active", "1");
      send("active_on_site", {});
    }
  } catch (e) { /* storage blocked: skip the session marker */ }
})();

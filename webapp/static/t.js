/* shoprelay onsite tracker. Install with the snippet from the README / the dashboard's Onsite page: its stub
 * queues shoprelay.identify / track / backInStock / consent calls made before this script has loaded, and this
 * script replays them in order.
 *
 *   shoprelay.identify({email: "a@b.com", signature: "<hex HMAC-SHA256 of the lower-cased email>"})
 *   shoprelay.track("viewed_product", {product: {product_id, sku, name, url, image_url, price, categories, brand}})
 *   shoprelay.track("added_to_cart", {product: {...}, cart: {id, url, total, currency, items: [...]}})
 *   shoprelay.backInStock({email, phone, sku | product_id, channels: ["email", "sms"]})  -> a promise
 *   shoprelay.consent(true | false)   (with data-consent="required" on the script tag: nothing is stored or
 *                                      sent before consent(true))
 *
 * A link from an email identifies the visitor with ?_sr_email=...&_sr_sig=... (signed like identify); a
 * Klaviyo email's ?_kx=... is passed on for Klaviyo destinations. "Active on Site" is sent by itself once per
 * browser session. Nothing is sent for visitors never identified (the server drops it). Events made in one
 * task of the page (the replayed queue, Active on Site, a page's track calls) go as one request. */
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = new URL("/t/collect", script ? script.src : window.location.href).toString();
  var consentRequired = !!(script && script.getAttribute("data-consent") === "required");
  var consented = !consentRequired;
  var waiting = [];  // calls made before consent (consent mode only)
  var anon = null;
  var identity = {};

  var store = {
    get: function (key) { try { return window.localStorage.getItem(key); } catch (e) { return null; } },
    set: function (key, value) { try { window.localStorage.setItem(key, value); } catch (e) { /* blocked */ } },
    drop: function (key) { try { window.localStorage.removeItem(key); } catch (e) { /* blocked */ } }
  };

  function newId() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
  }

  function load() {  // only once storing is allowed
    anon = store.get("shoprelay_anon");
    if (!anon) { anon = newId(); store.set("shoprelay_anon", anon); }
    try { identity = JSON.parse(store.get("shoprelay_identity") || "{}") || {}; } catch (e) { identity = {}; }
  }

  var MAX_BATCH = 20, MAX_CHARS = 15000;  // the collector takes up to 20 events and 16 KB per request
  var buffer = [];

  function entry(event, properties) {
    return {
      event: event, anonymous_id: anon, email: identity.email || null, signature: identity.signature || null,
      customer_id: identity.customer_id || null, kx: identity.kx || null, url: window.location.href,
      properties: properties || {}
    };
  }

  function post(payload) {
    try {
      if (navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([payload], { type: "text/plain" }))) return;
    } catch (e) { /* fall back to fetch */ }
    if (window.fetch) {
      window.fetch(endpoint, { method: "POST", body: payload, keepalive: true, mode: "cors",
        headers: { "Content-Type": "text/plain" } }).catch(function () { /* offline: dropped */ });
    }
  }

  function flush() {  // what a page did together goes as one request ({"events": [...]}), in order
    var events = buffer;
    buffer = [];
    while (events.length) {
      var batch = events.splice(0, MAX_BATCH);
      var payload = batch.length === 1 ? JSON.stringify(batch[0]) : JSON.stringify({ events: batch });
      if (payload.length > MAX_CHARS && batch.length > 1) {
        batch.forEach(function (one) { post(JSON.stringify(one)); });
      } else {
        post(payload);
      }
    }
  }

  function send(event, properties) {
    buffer.push(entry(event, properties));
    if (buffer.length === 1) window.setTimeout(flush, 0);
  }

  window.addEventListener("pagehide", flush);  // a page that navigates away at once still sends

  function remember(update) {
    var next = {};
    ["email", "signature", "customer_id", "kx"].forEach(function (key) {
      next[key] = update[key] !== undefined ? update[key] : identity[key];
    });
    if (update.email && update.email !== identity.email && update.signature === undefined) next.signature = null;
    identity = next;
    store.set("shoprelay_identity", JSON.stringify(identity));
  }

  var calls = {
    identify: function (who) {
      who = who || {};
      remember({ email: who.email ? String(who.email).trim().toLowerCase() : undefined,
                 signature: who.signature !== undefined ? who.signature : undefined,
                 customer_id: who.customer_id !== undefined ? String(who.customer_id) : undefined });
      send("identify", {});
    },
    track: function (event, properties) { send(event, properties); },
    backInStock: function (request) {
      return window.fetch(endpoint, { method: "POST", body: JSON.stringify(entry("back_in_stock", request)), mode: "cors",
        headers: { "Content-Type": "text/plain" } }).then(function (response) { return response.json(); });
    }
  };

  function run(call) {
    var name = call[0], args = Array.prototype.slice.call(call, 1);
    if (name === "consent") return api.consent(args[0]);
    if (!calls.hasOwnProperty(name)) return undefined;
    if (!consented) {
      if (name === "backInStock") return Promise.reject(new Error("shoprelay: no consent yet"));
      waiting.push(call);
      return undefined;
    }
    return calls[name].apply(null, args);
  }

  function fromLink() {  // ?_sr_email=&_sr_sig= and Klaviyo's ?_kx= on the landing page
    var params;
    try { params = new URLSearchParams(window.location.search); } catch (e) { return; }
    if (params.get("_kx")) remember({ kx: params.get("_kx") });
    if (params.get("_sr_email")) calls.identify({ email: params.get("_sr_email"), signature: params.get("_sr_sig") });
  }

  function activeOnSite() {
    try {
      if (window.sessionStorage.getItem("shoprelay_active")) return;
      window.sessionStorage.setItem("shoprelay_active", "1");
    } catch (e) { return; }  // storage blocked: no session marker, no event each page
    send("active_on_site", {});
  }

  function start() {
    load();
    fromLink();
    var queued = waiting;
    waiting = [];
    queued.forEach(run);
    activeOnSite();
  }

  var api = {
    identify: function () { return run(["identify"].concat(Array.prototype.slice.call(arguments))); },
    track: function () { return run(["track"].concat(Array.prototype.slice.call(arguments))); },
    backInStock: function () { return run(["backInStock"].concat(Array.prototype.slice.call(arguments))); },
    consent: function (given) {
      if (given && !consented) { consented = true; start(); }
      else if (!given) {
        consented = false; waiting = []; buffer = []; anon = null; identity = {};
        store.drop("shoprelay_anon"); store.drop("shoprelay_identity");
        try { window.sessionStorage.removeItem("shoprelay_active"); } catch (e) { /* blocked */ }
      }
    },
    loaded: true
  };

  var queued = (window.shoprelay && window.shoprelay.q) || [];  // calls made before this script loaded
  window.shoprelay = api;
  if (consented) {
    waiting = Array.prototype.slice.call(queued);
    start();
  } else {
    Array.prototype.slice.call(queued).forEach(run);  // queued until consent(true); consent() itself runs now
  }
})();

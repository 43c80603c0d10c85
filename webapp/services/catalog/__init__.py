"""Catalog: sources, their syncs (staged, then applied in short chunks), diffs, pushes, schedules,
sweeping runs whose worker died, and the product browser.

May call `platform`, the orders outbox (product events go out like order events) and, lazily,
`publishing` to rebuild the feeds a change touched and `platform_catalogs` to send it to the platforms'
catalogs (a reconcile, back-in-stock restocks).
"""

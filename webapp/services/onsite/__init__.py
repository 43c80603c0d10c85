"""Onsite tracking: the collector's settings and guards (origins, bots, per-address and per-visitor caps),
signed identities, the snippets shown on the Onsite page, and the onsite activity the dashboard reads.

May call `orders` (the outbox, through `orders.onsite`), `contacts` (matching), `delivery` (destinations,
for the platforms' own snippets) and `platform`.
"""

"""Platform catalogs: keeping a platform's own catalog equal to shoprelay's (Klaviyo's Catalog API), and
back-in-stock subscriptions on its variants.

Owns the plan (what the platform should hold: categories, items per item group, variants per SKU), the
ledger (what each platform confirmed, `catalog_entries`), the reconcile runs (`catalog_reconciles`: queue,
recovery, status), back in stock, and the destination's catalog view. Sending lives in `workers/catalogs/`.

May call `platform`, the orders outbox (back-in-stock events), and `catalog` (reading products; lazily, as
`catalog` calls this area after a sync).
"""

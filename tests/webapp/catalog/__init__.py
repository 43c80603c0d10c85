"""Catalog: source pages, the products browser, syncs (staged, applied, killed, beside ingest)."""

"""Orders: ingest (batches, COPY, races), order state, the outbox, imports, checkouts, order pages."""

"""Orders: ingest, order state, the outbox that turns orders into events, imports, checkouts and onsite
activity.

May call `contacts` (matching and LTV on every order) and `platform`.
"""

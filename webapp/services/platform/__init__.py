"""Platform: small helpers every area shares (statements, keyset pages, JSON, progress, crypto, write
races, bulk rows, database-busy answers, SVG charts, time buckets) and the dashboard accounts.

Calls no area.
"""

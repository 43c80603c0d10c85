"""Overview: KPIs, the attention list, catalog freshness, jobs, runtime status, health, metrics,
onboarding and instance facts.

May call `delivery` and `platform`; `alerts` reads its runtime status (workers, scheduler).
"""

"""Overview: KPIs, charts, the attention list, jobs and health."""

"""Delivery: destinations and their forms, retries and replays, per-order timelines, latency,
counters, roll-ups and the retention of delivered events.

May call `orders` (an order's delivery state) and `platform`.
"""

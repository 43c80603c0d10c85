"""Delivery: destination pages, rate-limit pauses as the dashboard shows them."""

"""Alerts: channels (Apprise URLs), conditions read from the other areas' state, incidents and their notices.

May call `overview` (runtime status of workers and scheduler), `catalog` (sync notes) and `platform`; nothing calls it.
"""

"""RQ job (every 5 minutes): turn stale started checkouts into abandoned-checkout events."""

from webapp.services.orders.checkouts import detect_abandoned


def detect_abandoned_checkouts_job() -> dict:
    return {"abandoned": detect_abandoned()}

"""RQ job (every 10 minutes): refresh RFM scores across all contacts."""

import logging

from webapp.services.contacts.rfm import refresh_rfm

log = logging.getLogger(__name__)


def refresh_rfm_job() -> dict:
    scored = refresh_rfm()
    log.info("RFM refreshed for %s contacts", scored)
    return {"scored": scored}

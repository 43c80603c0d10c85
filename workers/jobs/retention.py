"""RQ job (nightly): prune delivered traffic past its retention period."""

import logging

from webapp.services.delivery.retention import prune

log = logging.getLogger(__name__)


def prune_job() -> dict:
    result = prune()
    log.info("retention: %s", result)
    return result

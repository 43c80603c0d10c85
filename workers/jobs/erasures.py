"""RQ jobs: clean an erased person's local data chunk by chunk (webapp.services.contacts.erasure; the delivery
jobs send the deletion requests), and settle or resume erasures (periodic).

A worker asked to stop (warm shutdown) stops between chunks and hands the rest to a new job, which goes on
from the cursor in the erasure's row.
"""

from __future__ import annotations

import logging

from webapp.services.contacts import erasure, erasure_recovery
from webapp.services.onsite import person_index
from workers import shutdown

log = logging.getLogger(__name__)


def erase_contact_job(erasure_id: str) -> dict:
    try:
        record = erasure.run_erasure(erasure_id, should_stop=shutdown.requested)
    except LookupError:
        log.info("erasure %s: gone, nothing to do", erasure_id)
        return {"erasure_id": erasure_id, "status": "missing"}
    if record.status == "running" and record.local_done_at is None:  # stopped between chunks
        erasure_recovery.hand_over(erasure_id, record.job_id)
        log.info("erasure %s: %s of %s rows cleaned, the rest handed to a new job", erasure_id, record.done,
                 record.total)
    else:
        log.info("erasure %s %s: %s rows cleaned", erasure_id, record.status, record.done)
    return {"erasure_id": erasure_id, "status": record.status, "done": record.done}


def recover_erasures_job() -> dict:
    return erasure_recovery.recover()


def onsite_person_index_job() -> dict:
    """Index the browsers remembered before the onsite person index existed (and again after a flushed Redis or a
    new SECRET_KEY), so erasures stop scanning every browser; one Redis GET while the index is complete."""
    return person_index.ensure_complete(should_stop=shutdown.requested)

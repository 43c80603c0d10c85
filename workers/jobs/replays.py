"""RQ jobs: queue a replay's events chunk by chunk (webapp.services.delivery.replays; the delivery jobs send
them), and hand replays whose runner died to a new job (periodic).

A worker asked to stop (warm shutdown) stops between chunks and hands the rest to a new job, which goes on
from the cursor in the replay's row.
"""

from __future__ import annotations

import logging

from webapp.services.delivery import replays
from workers import shutdown

log = logging.getLogger(__name__)


def replay_window_job(replay_id: str) -> dict:
    try:
        replay = replays.run_replay(replay_id, should_stop=shutdown.requested)
    except LookupError:  # its destination was deleted meanwhile (the row went with it)
        log.info("replay %s: gone, nothing to do", replay_id)
        return {"replay_id": replay_id, "status": "missing"}
    if replay.status == "running":  # stopped between chunks
        replays.hand_over(replay_id, replay.job_id)
        log.info("replay %s: %s of %s events queued, the rest handed to a new job", replay_id, replay.done,
                 replay.total)
        replay = replays.get_replay(replay_id) or replay
    else:
        log.info("replay %s %s: %s events queued in %s chunks", replay_id, replay.status, replay.done,
                 replay.chunks)
    return {"replay_id": replay_id, "status": replay.status, "done": replay.done}


def recover_replays_job() -> dict:
    return replays.recover()

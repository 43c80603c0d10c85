"""Send a channel's due notices: one message per (batch, event), retried with backoff, failures recorded.

Runs in its own job on the "alerts" queue (never inside delivery). Notices are claimed with a guarded UPDATE
(a lease: two jobs for one channel never send the same message twice) and the session holds no transaction
while apprise talks to the service. A failure postpones every pending notice of that channel to the same time,
so a channel that comes back gets its messages in order; after MAX_ATTEMPTS a notice is given up (`failed`).
The database is the truth: the cron evaluation signals every channel that has notices due (a lost Redis job
delays a notice by a minute, never loses it).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from webapp.extensions import db
from webapp.models import AlertChannel, AlertNotice, utcnow
from webapp.services.alerts import apprise_urls, notify
from webapp.services.platform.crypto import decrypt_json

MAX_ATTEMPTS = 6
BACKOFF_SECONDS = (60, 300, 900, 3600, 3 * 3600)  # after attempts 1..5: about 4.5 hours in all
LEASE = timedelta(minutes=5)  # a job that dies mid-send hands its notices back after this long
BATCH_LIMIT = 200
_NOTICES = AlertNotice.__table__


def channel_url(channel: AlertChannel) -> str:
    return decrypt_json(channel.url_encrypted)["url"]


def send_due(channel_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Send what is due for one channel, oldest batch first; stop at the first failure (order is kept)."""
    now = now or utcnow()
    channel = db.session.get(AlertChannel, channel_id)
    if channel is None:
        return {"sent": 0, "failed": 0}
    due = db.session.scalars(sa.select(AlertNotice).options(selectinload(AlertNotice.incident)).where(
        AlertNotice.channel_id == channel_id, AlertNotice.state == "pending", AlertNotice.next_attempt_at <= now)
        .order_by(AlertNotice.id).limit(BATCH_LIMIT)).all()
    if not due:
        return {"sent": 0, "failed": 0}
    if not channel.enabled:
        db.session.execute(sa.update(_NOTICES).where(_NOTICES.c.id.in_([n.id for n in due]))
                           .values(state="skipped", last_error="the channel was disabled"))
        db.session.commit()
        return {"sent": 0, "failed": 0, "skipped": len(due)}
    try:
        url = channel_url(channel)
    except ValueError as exc:  # the instance's key changed: nothing can be sent until the URL is entered again
        _failed(channel_id, [n.id for n in due], str(exc), now)
        return {"sent": 0, "failed": len(due)}
    groups: dict[tuple[str, str], list[AlertNotice]] = defaultdict(list)
    for notice in due:
        groups[(notice.batch, notice.event)].append(notice)
    # Words first, from the rows as loaded: nothing below reads an ORM object again.
    messages = [([notice.id for notice in notices], notify.message(event, [notice.incident for notice in notices]))
                for (_, event), notices in groups.items()]
    sent = 0
    for ids, message in messages:
        if not _claim(ids, now):
            continue  # another job holds them
        result = apprise_urls.send(url, message.title, message.body, message.notify_type)
        finished = utcnow()
        if not result.ok:
            _failed(channel_id, ids, result.error or "the service refused the message", finished)
            return {"sent": sent, "failed": len(ids)}
        db.session.execute(sa.update(_NOTICES).where(_NOTICES.c.id.in_(ids))
                           .values(state="sent", sent_at=finished, last_error=None))
        db.session.execute(sa.update(AlertChannel.__table__).where(AlertChannel.id == channel_id)
                           .values(last_sent_at=finished, failing_since=None))
        db.session.commit()
        sent += len(ids)
    return {"sent": sent, "failed": 0}


def _claim(ids: list[int], now: datetime) -> bool:
    """Take the notices for LEASE and count the attempt; False if another job took any of them first."""
    claimed = db.session.execute(sa.update(_NOTICES).where(
        _NOTICES.c.id.in_(ids), _NOTICES.c.state == "pending", _NOTICES.c.next_attempt_at <= now)
        .values(next_attempt_at=now + LEASE, attempts=_NOTICES.c.attempts + 1)).rowcount
    if claimed != len(ids):
        db.session.rollback()
        return False
    db.session.commit()  # no transaction is held while apprise talks to the service
    return True


def _failed(channel_id: int, ids: list[int], error: str, now: datetime) -> None:
    """Record the failure on the notices and the channel; retry later (or give up), keeping the order."""
    error = error[:1000]
    retry_at = now + timedelta(seconds=BACKOFF_SECONDS[0])
    for notice in db.session.scalars(sa.select(AlertNotice).where(AlertNotice.id.in_(ids))):
        notice.last_error = error
        if notice.attempts >= MAX_ATTEMPTS:
            notice.state = "failed"
        else:
            notice.next_attempt_at = now + timedelta(
                seconds=BACKOFF_SECONDS[min(max(notice.attempts, 1), len(BACKOFF_SECONDS)) - 1])
            retry_at = max(retry_at, notice.next_attempt_at)
    # Later notices of this channel wait as long, so they never overtake the ones that failed.
    db.session.execute(sa.update(_NOTICES).where(
        _NOTICES.c.channel_id == channel_id, _NOTICES.c.state == "pending", _NOTICES.c.id.not_in(ids),
        _NOTICES.c.next_attempt_at < retry_at).values(next_attempt_at=retry_at))
    table = AlertChannel.__table__
    db.session.execute(sa.update(table).where(table.c.id == channel_id).values(
        last_error=error, last_error_at=now, failing_since=sa.func.coalesce(table.c.failing_since, now)))
    db.session.commit()


def send_all_due(now: datetime | None = None) -> dict[int, dict[str, Any]]:
    """Send every channel's due notices in this process (the scheduler's watchdog, when no worker is alive)."""
    return {channel_id: send_due(channel_id, now) for channel_id in due_channels(now)}


def due_channels(now: datetime | None = None) -> list[int]:
    now = now or utcnow()
    return list(db.session.scalars(sa.select(AlertNotice.channel_id).where(
        AlertNotice.state == "pending", AlertNotice.next_attempt_at <= now).distinct().order_by(
        AlertNotice.channel_id)))


def signal_due(now: datetime | None = None) -> list[str]:
    """The cron's sweep: a sending job for every channel with notices due (retries, lost signals)."""
    from webapp.services.alerts.incidents import signal_channels

    return signal_channels(due_channels(now))


def send_test(channel: AlertChannel) -> dict[str, Any]:
    """The Test button: one test message now, its outcome recorded on the channel like any notice's."""
    try:
        url = channel_url(channel)
    except ValueError as exc:
        return {"ok": False, "message": str(exc), "duration_ms": 0}
    message = notify.test_message()
    channel_id = channel.id
    db.session.commit()  # nothing held while the service answers
    result = apprise_urls.send(url, message.title, message.body, message.notify_type)
    now = utcnow()
    table = AlertChannel.__table__
    if result.ok:
        db.session.execute(sa.update(table).where(table.c.id == channel_id)
                           .values(last_sent_at=now, failing_since=None))
    else:
        db.session.execute(sa.update(table).where(table.c.id == channel_id).values(
            last_error=result.error, last_error_at=now))
    db.session.commit()
    return {"ok": result.ok, "message": "Sent: check that it arrived." if result.ok else result.error,
            "duration_ms": result.duration_ms}


def recent_failures(limit: int = 20) -> list[AlertNotice]:
    """Notices that failed at least once and are not sent: what the Alerts page lists under channel failures."""
    return list(db.session.scalars(sa.select(AlertNotice).where(
        AlertNotice.state.in_(("pending", "failed")), AlertNotice.last_error.is_not(None))
        .order_by(AlertNotice.id.desc()).limit(limit)))


def pending_counts() -> dict[int, int]:
    return dict(db.session.execute(sa.select(AlertNotice.channel_id, sa.func.count()).where(
        AlertNotice.state == "pending").group_by(AlertNotice.channel_id)).all())

"""What an erasure cleans outside the database (webapp/services/contacts/erasure.py): the uploaded import files
that quote the person, and the browsers the onsite collector remembers as them (Redis hashes)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app
from redis.exceptions import RedisError

from webapp.models import utcnow
from webapp.services.contacts.erasure_steps import ONSITE_KEYS, Work
from webapp.services.contacts.scrub import ERASED
from webapp.services.onsite import person_index

log = logging.getLogger(__name__)


def clean_files_and_identities(work: Work) -> dict[str, int]:
    """Uploaded import files (kept to resume an import) lose the person's values line by line (the line count
    stays, so a resumed import keeps its place); onsite identities of the address are forgotten. Files uploaded
    and browsers identified after the erasure was asked for are the new contact's and stay."""
    return {"files": _clean_import_files(work),
            "identities": forget_onsite(work.email, work.customer_ids, asked_at=work.asked_at)}


def _clean_import_files(work: Work) -> int:
    pattern = work.pattern()
    folder = Path(current_app.config["UPLOADS_DIR"]) / "imports"
    if pattern is None or not folder.is_dir():
        return 0
    cleaned = 0
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.stat().st_mtime > work.asked_at.timestamp():
            continue
        if not _mentions(path, pattern):
            continue
        temporary = path.with_name(path.name + ".erasing")
        with path.open(encoding="utf-8", errors="surrogateescape", newline="") as source, \
                temporary.open("w", encoding="utf-8", errors="surrogateescape", newline="") as target:
            for line in source:
                target.write(pattern.sub(ERASED, line))
        os.replace(temporary, path)
        cleaned += 1
    return cleaned


def _mentions(path: Path, pattern: re.Pattern[str]) -> bool:
    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        return any(pattern.search(line) for line in handle)


def forget_onsite(email: str, customer_ids: set[str], *, asked_at: datetime) -> int:
    """Browser ids remembered for this person (Redis hashes of the onsite collector: email, customer id).

    The request forgets them at once, so the person's browsers are nobody from then on; it reads only the
    browsers the person index names (onsite.person_index), and scans every onsite key only while that index is
    not complete yet (its backfill has not run: slow with many browsers, see the README). The job looks again
    at its end (Redis may have been away then) and spares the browsers identified after `asked_at`: the new
    contact's. The collector stores when a browser last gave an email or customer id (`identified_at`); for a
    browser stored before it did, the expiry it resets to ANON_TTL on every claim tells roughly when."""
    url = current_app.config.get("REDIS_URL")
    if not url or not email:
        return 0
    from workers.queue import connect

    def theirs(known: dict[bytes, bytes]) -> bool:
        said = {name.decode(errors="replace"): value.decode(errors="replace").strip() for name, value in known.items()}
        return said.get("email", "").lower() == email or said.get("customer_id", "") in customer_ids

    try:
        redis = connect(url)
        indexed = person_index.browsers_of(redis, email, customer_ids)
        keys = redis.scan_iter(match=ONSITE_KEYS, count=1000) if indexed is None else indexed
        found = [(key, known) for key, known in _hashes(redis, keys) if theirs(known)]
        doomed: list[bytes] = []
        if found:  # a browser the index names that has changed person since is not found: someone else's now
            stamped = {key: float(known[b"identified_at"]) for key, known in found if known.get(b"identified_at")}
            doomed = [key for key in stamped if stamped[key] < asked_at.timestamp()] + _identified_before(
                redis, [key for key, _ in found if key not in stamped], asked_at)
        if doomed:
            person_index.forget(redis, doomed, email, customer_ids)
        return len(doomed)
    except RedisError as exc:
        log.warning("erasure: onsite identities not checked (%s)", exc)
        return 0


def _identified_before(redis: Any, keys: list[bytes], asked_at: datetime) -> list[bytes]:
    """The browsers among `keys` whose identity was last given before `asked_at` (or that keep no expiry), read
    from their expiry: for browsers stored without `identified_at`."""
    from webapp.services.orders.onsite import ANON_TTL

    if not keys:
        return []
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.pttl(key)
    since_ms = (utcnow() - asked_at).total_seconds() * 1000
    return [key for key, left in zip(keys, pipe.execute(), strict=True)
            if left < 0 or ANON_TTL * 1000 - left >= since_ms]


def _hashes(redis: Any, keys: Iterable[bytes]) -> Iterable[tuple[bytes, dict[bytes, bytes]]]:
    batch: list[bytes] = []
    for key in keys:
        batch.append(key)
        if len(batch) >= 500:
            yield from _read(redis, batch)
            batch = []
    if batch:
        yield from _read(redis, batch)


def _read(redis: Any, keys: list[bytes]) -> Iterable[tuple[bytes, dict[bytes, bytes]]]:
    pipe = redis.pipeline()
    for key in keys:
        pipe.type(key)
    types = pipe.execute()
    hashes = [key for key, kind in zip(keys, types, strict=True) if kind in (b"hash", "hash")]
    pipe = redis.pipeline()
    for key in hashes:
        pipe.hgetall(key)
    return zip(hashes, pipe.execute(), strict=True)

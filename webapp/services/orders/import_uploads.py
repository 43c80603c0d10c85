"""Dashboard imports: keep the uploaded file, create (or resume) its ImportRun, queue the job."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from feeds.decompress import compression_of
from webapp.extensions import db
from webapp.models import ImportRun
from webapp.services.orders.imports import start_or_resume

log = logging.getLogger(__name__)
ALLOWED = (".jsonl", ".ndjson", ".json", ".csv")


def save_import_file(filename: str, stream: IO[bytes]) -> Path:
    """Keep the upload under instance/uploads/imports; ValueError("file: ...") for one the import cannot read
    (wrong kind, empty, compressed, over SHOPRELAY_SOURCE_MAX_BYTES), before a run is queued for it."""
    suffix = Path(filename).suffix.lower()
    if suffix not in ALLOWED:
        raise ValueError(f"file: use JSON Lines (.jsonl) or CSV (.csv), not {suffix or 'a file without extension'}")
    folder = Path(current_app.config["UPLOADS_DIR"]) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "upload.part"
    digest = hashlib.sha256()
    max_bytes = int(current_app.config["SOURCE_MAX_BYTES"])
    written = 0
    with tmp.open("wb") as handle:
        while chunk := stream.read(1 << 20):
            written += len(chunk)
            if written > max_bytes:
                break
            digest.update(chunk)
            handle.write(chunk)
    problem = _refused(tmp, written, max_bytes)
    if problem:
        tmp.unlink()
        raise ValueError(f"file: {problem}")
    path = folder / f"{digest.hexdigest()[:16]}{suffix}"  # same content, same file: resuming finds it
    tmp.replace(path)
    return path


def _refused(path: Path, size: int, max_bytes: int) -> str | None:
    if size == 0:
        return "the uploaded file is empty"
    if size > max_bytes:
        return f"the file is larger than the {max_bytes / (1024 * 1024):g} MB cap (SHOPRELAY_SOURCE_MAX_BYTES)"
    compression = compression_of(path)
    if compression is not None:
        return (f"the file is {'a ZIP archive' if compression == 'zip' else 'gzip-compressed'}; imports read plain "
                f"JSON Lines or CSV: unpack it and upload the file inside")
    return None


def queue_import(path: Path, historical: bool) -> ImportRun:
    from workers.queue import JOB_IMPORT_ORDERS, connect, enqueue

    run = start_or_resume(path, historical)
    run.status = "queued" if run.status != "running" else run.status
    db.session.commit()
    url = current_app.config.get("REDIS_URL")
    if url:
        try:
            enqueue(connect(url), "default", JOB_IMPORT_ORDERS, run.id, job_timeout=6 * 3600)
        except RedisError as exc:
            log.warning("could not queue import %s: %s", run.id, exc)
    return run


def recent_imports(limit: int = 20) -> list[ImportRun]:
    return list(db.session.scalars(sa.select(ImportRun).order_by(ImportRun.id.desc()).limit(limit)).all())

"""Sources: create / update / delete, schedule bookkeeping, serialisation."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from flask import current_app

from feeds.readers import discard_unpacked
from feeds.redaction import strip_userinfo
from webapp.extensions import db
from webapp.models import Source, SyncRun
from webapp.schemas.errors import ApiError, problem
from webapp.schemas.sources import SourceCreate, SourceCredentials, SourceUpdate
from webapp.services.catalog.schedules import next_run_after, validate_schedule
from webapp.services.catalog.sync_notes import needs_store_url
from webapp.services.platform.crypto import decrypt_json, encrypt_json
from webapp.services.platform.jsonutil import iso


def _check_schedule(schedule: str, timezone: str) -> None:
    problems = validate_schedule(schedule, timezone)
    if problems:
        raise ApiError(422, [problem([message.split(":", 1)[0]], message.split(": ", 1)[1])
                             for message in problems])


def lift_url_credentials(location: str, given: dict[str, Any] | None,
                         stored: dict[str, Any] | None = None) -> tuple[str, dict[str, Any] | None]:
    """The location without user:password@, and the credentials to encrypt instead: the location column, the API
    answer and every message carry the URL in plain text, so a password inside it would be shown everywhere.
    Credentials `given` with it win; the URL's win over the `stored` ones (a header token is kept).

    Raises ValueError when the location is not a URL urlsplit can read.
    """
    parts = urlsplit(location)
    if parts.username is None and parts.password is None:
        return location, given
    if given is None or not {"username", "password"} & set(given):
        from_url = {"username": unquote(parts.username or ""), "password": unquote(parts.password or "")}
        given = (dict(stored or {}) if given is None else given) | from_url
    return strip_userinfo(location), given


def _lift_url_credentials(data: SourceUpdate, stored: dict[str, Any] | None = None) -> None:
    if not data.location:
        return
    given = data.credentials.model_dump(exclude_none=True) if data.credentials is not None else None
    location, credentials = lift_url_credentials(data.location, given, stored)
    if location != data.location:
        data.location, data.credentials = location, SourceCredentials(**(credentials or {}))


def lift_stored_url_credentials(connection: sa.Connection) -> int:
    """Move user:password@ out of every stored source location into its encrypted credentials, as saving the
    source does now (versions before it kept them in the URL). Idempotent; returns how many sources changed.

    Takes a Connection, not the session, so that the data migration (a7d2e4f1c013) runs it inside its own
    transaction; it reads only the three columns it needs, so later columns of the model do not matter.
    """
    sources = sa.table("sources", sa.column("id", sa.Integer), sa.column("location", sa.Text),
                       sa.column("credentials_encrypted", sa.Text))
    rows = connection.execute(sa.select(sources.c.id, sources.c.location, sources.c.credentials_encrypted)
                              .where(sources.c.location.like("%@%")).order_by(sources.c.id)).all()
    moved = 0
    for row in rows:
        try:
            stored = decrypt_json(row.credentials_encrypted)
        except ValueError:
            stored = {}  # saved under another key: the URL's credentials replace them, as on an edit
        try:
            location, credentials = lift_url_credentials(row.location, None, stored)
        except ValueError:
            continue  # not a URL (the sync says so); nothing to lift
        if location == row.location:
            continue
        connection.execute(sa.update(sources).where(sources.c.id == row.id).values(
            location=location, credentials_encrypted=encrypt_json(credentials) if credentials else None))
        moved += 1
    return moved


def _stored_credentials(source: Source) -> dict[str, Any]:
    try:
        return decrypt_json(source.credentials_encrypted)
    except ValueError:
        return {}  # saved under another key: the new URL's credentials replace them


def create_source(data: SourceCreate) -> Source:
    _check_schedule(data.schedule, data.timezone)
    _lift_url_credentials(data)
    source = Source(name=data.name, kind=data.kind, location=data.location, mapping=data.mapping,
                    options=data.options or {}, schedule=data.schedule, timezone=data.timezone,
                    enabled=data.enabled, max_remove_share=data.max_remove_share)
    if data.credentials is not None:
        source.credentials_encrypted = encrypt_json(data.credentials.model_dump(exclude_none=True))
    source.next_run_at = next_run_after(source.schedule, source.timezone, datetime.now(UTC))
    db.session.add(source)
    db.session.commit()
    return source


def update_source(source: Source, data: SourceUpdate) -> Source:
    schedule = data.schedule or source.schedule
    timezone = data.timezone or source.timezone
    _check_schedule(schedule, timezone)
    _lift_url_credentials(data, _stored_credentials(source))
    for name in ("name", "location", "mapping", "options", "schedule", "timezone", "enabled", "max_remove_share"):
        if name in data.model_fields_set:
            value = getattr(data, name)
            if value is None and name in ("name", "schedule", "timezone", "enabled"):
                continue
            setattr(source, name, value if value is not None or name != "options" else {})
    if data.model_fields_set & {"location", "mapping", "options", "credentials"}:
        # A new URL, mapping or reader option must be read in full: a 304 would skip it.
        source.http_etag = source.http_last_modified = source.content_digest = None
    if data.credentials is not None:
        source.credentials_encrypted = encrypt_json(data.credentials.model_dump(exclude_none=True)) \
            if data.credentials.model_dump(exclude_none=True) else None
    if source.location and source.upload_path:
        source.upload_path = None  # read from the URL now: the uploaded export goes (below, once saved)
    source.next_run_at = next_run_after(source.schedule, source.timezone, datetime.now(UTC))
    db.session.commit()
    discard_replaced_uploads(source.id)
    return source


def source_warnings(source: Source) -> list[dict[str, str]]:
    """What the saved source cannot do yet (the API's `warnings`, the form's notice after saving)."""
    if needs_store_url(source.kind, source.options):
        label = "WooCommerce export" if source.kind == "woocommerce" else "Shopify products.json"
        return [{"path": "options.store_url",
                 "message": f"no Store URL: a {label} has no product URLs, so without one every product is "
                            "left out of the feeds; set it to the shop's address, e.g. https://shop.example"}]
    return []


def save_upload(source: Source, filename: str, stream: Any) -> Path:
    """Keep an uploaded source file under instance/uploads (the sync reads it from there). Each upload gets a
    name of its own: a sync reading the previous one (it may open it again, e.g. for a second pass) keeps reading
    that file, which goes, with its unpacked copies, once no sync reads it (discard_replaced_uploads)."""
    suffix = Path(filename).suffix.lower()[:10] or ".dat"
    path = Path(current_app.config["UPLOADS_DIR"]) / f"source-{source.id}-upload-{secrets.token_hex(4)}{suffix}"
    tmp = path.with_suffix(path.suffix + ".part")
    with tmp.open("wb") as handle:
        while chunk := stream.read(1 << 20):
            handle.write(chunk)
    tmp.replace(path)
    source.upload_path = str(path)
    source.content_digest = None
    db.session.commit()
    discard_replaced_uploads(source.id)
    return path


def _in_uploads(path: Path) -> bool:
    return path.resolve().is_relative_to(Path(current_app.config["UPLOADS_DIR"]).resolve())


def discard_replaced_uploads(source_id: int) -> list[Path]:
    """Delete the uploaded files the source no longer reads (a new upload or a URL replaced them), with their
    unpacked copies: the file is the store's whole product export. Call it after the change is committed. While a sync of
    the source is reading, nothing goes (it may open the file it started with again, e.g. for a second pass):
    the sync calls this again when it ends. Returns the files deleted."""
    source = db.session.get(Source, source_id)
    uploads = Path(current_app.config["UPLOADS_DIR"])
    if source is None or not uploads.is_dir() or db.session.scalar(sa.select(SyncRun.id).where(
            SyncRun.source_id == source_id, SyncRun.status == "running", SyncRun.phase == "reading").limit(1)):
        return []
    current = Path(source.upload_path).name if source.upload_path else None
    # The names save_upload gives (source-7-upload-1a2b3c4d.csv; before: source-7-upload.csv) and their unpacked
    # copies (…csv.<size>-<mtime>.unpacked); not the ".part" of an upload being written, nor an unpacker's
    # temporary file (it deletes that itself).
    names = re.compile(rf"(source-{source_id}-upload(?:-[0-9a-f]+)?\.[^.]*)(\.\d+-\d+\.unpacked)?")
    gone = []
    for path in sorted(uploads.iterdir()):
        match = names.fullmatch(path.name)
        if match and match.group(1) != current and path.is_file():
            path.unlink(missing_ok=True)
            gone.append(path)
    return gone


def source_files(source_id: int) -> list[Path]:
    """Every file the source left in the uploads folder: its upload, the last download, preview downloads, and
    their unpacked copies (a .gz / .zip is read from one unpacked beside it) and half-written temporary files."""
    uploads = Path(current_app.config["UPLOADS_DIR"])
    if not uploads.is_dir():
        return []
    names = (f"source-{source_id}-", f"source-{source_id}.", f".source-{source_id}-", f".source-{source_id}.")
    return sorted(path for path in uploads.iterdir() if path.name.startswith(names) and path.is_file())


def delete_source(source: Source) -> None:
    source_id, upload = source.id, source.upload_path
    db.session.delete(source)
    db.session.commit()
    if upload and _in_uploads(Path(upload)):
        Path(upload).unlink(missing_ok=True)
        discard_unpacked(Path(upload))
    for path in source_files(source_id):
        path.unlink(missing_ok=True)


def latest_run(source_id: int) -> SyncRun | None:
    return db.session.scalar(sa.select(SyncRun).where(SyncRun.source_id == source_id).order_by(SyncRun.id.desc()))


def run_json(run: SyncRun) -> dict[str, Any]:
    duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
    return {"id": run.id, "source_id": run.source_id, "status": run.status, "trigger": run.trigger,
            "counts": {"added": run.added, "updated": run.updated, "unchanged": run.unchanged,
                       "removed": run.removed, "skipped": run.skipped, "rows_read": run.rows_read,
                       "rows_total": run.rows_total},
            "not_modified": run.not_modified, "error": run.error, "problems": run.problems,
            "created_at": iso(run.created_at), "started_at": iso(run.started_at),
            "finished_at": iso(run.finished_at), "duration_seconds": duration, "progress": _live(run)}


def _live(run: SyncRun) -> dict[str, Any] | None:
    """Where a queued or running sync stands now (what its source page shows), None once it ended."""
    from webapp.services.catalog.source_queries import run_progress

    if run.status not in ("queued", "running"):
        return None
    live = run_progress(run)
    return {"phase": run.phase, "done": live.rows_read, "total": live.rows_total,
            "total_estimated": live.estimated, "percent": live.percent}


def source_json(source: Source) -> dict[str, Any]:
    last = latest_run(source.id)
    return {"id": source.id, "name": source.name, "kind": source.kind, "location": source.location,
            "mapping": source.mapping, "options": source.options, "schedule": source.schedule,
            "timezone": source.timezone, "enabled": source.enabled, "max_remove_share": source.max_remove_share,
            "credentials_set": source.credentials_encrypted is not None, "uploaded": bool(source.upload_path),
            "product_count": source.product_count, "next_run_at": iso(source.next_run_at),
            "last_run": run_json(last) if last else None}

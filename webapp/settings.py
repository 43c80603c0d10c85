"""Every setting comes from the environment (12-factor), parsed strictly, once, in one place.

`SETTINGS` documents each one; the README's configuration table is generated from the same list.
A bad value fails fast with a message that names the variable.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet


class SettingsError(ValueError):
    """A setting has a value shoprelay cannot use."""


def _int(value: str) -> int:
    return int(value)


def _float(value: str) -> float:
    return float(value)


def _number(value: str, kind: type[int] | type[float], expected: str) -> Any:
    """int() / float(), failing with what the setting expects rather than Python's "invalid literal"."""
    try:
        return kind(value)
    except ValueError:
        raise ValueError(expected) from None


def _positive_float(value: str) -> float:
    number = _number(value, float, "must be a positive number")
    if not 0 < number < math.inf:  # also refuses nan and inf
        raise ValueError("must be a positive number")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("must be zero or a positive number")
    return number


def _share(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError("must be between 0 and 1")
    return number


def _positive_int(value: str) -> int:
    number = _number(value, int, "must be a positive integer")
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be zero or a positive integer")
    return number


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _str(value: str) -> str:
    return value


def _database_url(value: str) -> str:
    if value.startswith("postgres://"):  # Heroku-style URLs
        value = "postgresql://" + value[len("postgres://"):]
    if value.startswith("postgresql://"):
        value = "postgresql+psycopg://" + value[len("postgresql://"):]
    if not value.startswith(("sqlite:", "postgresql+psycopg:")):
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    return value


def _redis_url(value: str) -> str:
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be a redis:// URL")
    return value


def _allow_list(value: str) -> str:
    """Hosts, addresses and CIDR ranges shoprelay may call although they are private (outbound_urls)."""
    from webapp.services.platform.outbound_urls import parse_allow_list

    parse_allow_list(value)  # ValueError naming the entry
    return value


def _phone_region(value: str) -> str:
    """A region phonenumbers knows (ISO 3166 alpha-2, e.g. US, GB, DE) to read phones typed without +."""
    import phonenumbers

    region = value.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("must be a two-letter country code such as US, GB or DE")
    return region


def _metrics_token(value: str) -> str:
    if len(value.strip()) < 16:
        raise ValueError("must be at least 16 characters (a random token: openssl rand -hex 24)")
    return value.strip()


def _log_level(value: str) -> str:
    upper = value.upper()
    if upper not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return upper


@dataclass(frozen=True)
class Setting:
    env: str
    key: str
    parse: Callable[[str], Any]
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "DATABASE_URL", _database_url, None,
            "Database; default SQLite file `instance/shoprelay.db`. `postgresql://user@host/db` at scale."),
    Setting("REDIS_URL", "REDIS_URL", _redis_url, None,
            "Redis for queues and rate limits; unset = `shoprelay up` starts an embedded Redis."),
    Setting("SECRET_KEY", "SECRET_KEY", _str, None,
            "Signs sessions and CSRF tokens; generated into `instance/secret_key` when unset."),
    Setting("SHOPRELAY_ENCRYPTION_KEY", "ENCRYPTION_KEY", _str, None,
            "Fernet key encrypting platform credentials; generated into `instance/encryption.key` when unset."),
    Setting("SHOPRELAY_INSTANCE_PATH", "INSTANCE_PATH", _str, "instance",
            "Folder for the SQLite file, generated keys, uploads and published feeds."),
    Setting("SHOPRELAY_BASE_URL", "BASE_URL", _str, None,
            "Public URL of this instance (used in feed URLs); default: the request's host."),
    Setting("SHOPRELAY_LOG_LEVEL", "LOG_LEVEL", _log_level, "INFO", "DEBUG, INFO, WARNING or ERROR."),
    Setting("SHOPRELAY_API_MAX_BYTES", "API_MAX_BYTES", _positive_int, 16 * 1024 * 1024,
            "Largest accepted API request body (bytes); larger answers 413."),
    Setting("SHOPRELAY_SOURCE_MAX_BYTES", "SOURCE_MAX_BYTES", _positive_int, 2 * 1024 * 1024 * 1024,
            "Largest source file fetched or uploaded (bytes)."),
    Setting("SHOPRELAY_DB_WAIT_SECONDS", "DB_WAIT_SECONDS", _positive_float, 5.0,
            "How long a web request waits for the database (SQLite's write lock, a PostgreSQL connection) before "
            "answering 503 with Retry-After. Workers wait 30 s."),
    Setting("SHOPRELAY_FETCH_TIMEOUT", "FETCH_TIMEOUT", _float, 60.0,
            "Seconds before fetching a source URL gives up."),
    Setting("SHOPRELAY_SYNC_MAX_REMOVE_SHARE", "SYNC_MAX_REMOVE_SHARE", _share, 0.5,
            "A sync that would remove more than this share of a source's products is held for confirmation."),
    Setting("SHOPRELAY_FEED_MAX_LOSS_SHARE", "FEED_MAX_LOSS_SHARE", _share, 0.5,
            "A feed build that skips more than this share of its products, or has this share fewer items than "
            "the published build, is held back instead of published."),
    Setting("SHOPRELAY_FEED_SPLIT_BYTES", "FEED_SPLIT_BYTES", _positive_int, 50 * 1024 * 1024,
            "Klaviyo feeds are split into parts of at most this many bytes (Klaviyo: 100 MB max, 50 MB advised)."),
    Setting("SHOPRELAY_DELIVERY_BATCH", "DELIVERY_BATCH", _positive_int, 1000,
            "Events one delivery job takes per round (1000 = one full Klaviyo bulk request per round)."),
    Setting("SHOPRELAY_DELIVERY_TIMEOUT", "DELIVERY_TIMEOUT", _float, 15.0,
            "Seconds before a platform request counts as timed out (and is retried)."),
    Setting("SHOPRELAY_DELIVERY_LEASE_SECONDS", "DELIVERY_LEASE_SECONDS", _positive_int, 300,
            "A worker's claim on events it is sending; when it dies, others take them after this long."),
    Setting("SHOPRELAY_RETRY_BASE_SECONDS", "RETRY_BASE_SECONDS", _positive_float, 10.0,
            "First wait before a failed delivery is tried again; it doubles with each attempt up to 1 h (±20 % "
            "jitter), and is never shorter than the platform's Retry-After."),
    Setting("SHOPRELAY_MAX_ATTEMPTS", "MAX_ATTEMPTS", _positive_int, 8,
            "An event is dead-lettered only after at least this many attempts..."),
    Setting("SHOPRELAY_MAX_EVENT_AGE_HOURS", "MAX_EVENT_AGE_HOURS", _float, 72.0,
            "...and once it is older than this many hours."),
    Setting("SHOPRELAY_BREAKER_MINUTES", "BREAKER_MINUTES", _float, 30.0,
            "A destination failing continuously this long is paused with the reason."),
    Setting("SHOPRELAY_SWEEP_SECONDS", "SWEEP_SECONDS", _positive_int, 60,
            "Seconds between the scheduler's sweeps for due and stuck work: retries that came due, signals lost "
            "with Redis, sync runs, replays and erasures whose worker died. Retries wait at most this long past their due time."),
    Setting("SHOPRELAY_CHUNK_ATTEMPTS", "CHUNK_ATTEMPTS", _positive_int, 3,
            "A replay or sync apply whose worker dies this many times at the same chunk (nothing committed in "
            "between: a row that crashes or exhausts the worker) fails with that reason instead of being "
            "resumed again."),
    Setting("SHOPRELAY_BULK_THRESHOLD", "BULK_THRESHOLD", _positive_int, 50,
            "Due events above which delivery switches to the platform's bulk endpoint."),
    Setting("SHOPRELAY_ABANDONED_CHECKOUT_MINUTES", "ABANDONED_CHECKOUT_MINUTES", _positive_int, 60,
            "A started checkout with no order after this delay becomes an abandoned checkout."),
    Setting("SHOPRELAY_DEFAULT_PHONE_REGION", "DEFAULT_PHONE_REGION", _phone_region, None,
            "Country (ISO 3166 alpha-2, e.g. US) that reads a phone typed without + when its order's addresses "
            "carry no `country_code`; unset: such phones are kept as given, with a warning, and get no SMS."),
    Setting("SHOPRELAY_RETENTION_BODY_DAYS", "RETENTION_BODY_DAYS", _positive_int, 30,
            "Delivered attempts' request/response bodies are pruned after this many days."),
    Setting("SHOPRELAY_RETENTION_ROW_DAYS", "RETENTION_ROW_DAYS", _positive_int, 180,
            "Delivered events' attempt rows are pruned after this many days (failures are kept)."),
    Setting("SHOPRELAY_FEED_STALE_HOURS", "FEED_STALE_HOURS", _positive_float, 26.0,
            "A feed its platform has fetched before but not for this many hours raises a `feed_stale` alert "
            "(platforms fetch at least daily)."),
    Setting("SHOPRELAY_ALERT_QUIET_MINUTES", "ALERT_QUIET_MINUTES", _non_negative_float, 5.0,
            "A problem that ends and comes back within this many minutes stays one incident (no new alert); "
            "its \"resolved\" notice waits this long."),
    Setting("SHOPRELAY_ALLOW_PRIVATE_URLS", "ALLOW_PRIVATE_URLS", _allow_list, "",
            "Comma-separated host names, addresses and CIDR ranges (each optionally `:port`) that source, "
            "destination, webhook and alert URLs may reach although they are loopback, private, link-local or "
            "metadata addresses, e.g. `127.0.0.1,localhost,::1` for local fakes; empty: none."),
    Setting("SHOPRELAY_METRICS_TOKEN", "METRICS_TOKEN", _metrics_token, None,
            "When set, `GET /metrics` needs `Authorization: Bearer <token>` (401 otherwise); unset: open."),
    Setting("SHOPRELAY_TRUSTED_PROXIES", "TRUSTED_PROXIES", _non_negative_int, 0,
            "Reverse proxies in front of the web server whose X-Forwarded-For/-Proto/-Host/-Port are believed "
            "(the client's address for login throttling, HTTPS for Secure cookies); 0: none."),
    Setting("SHOPRELAY_LOGIN_MAX_FAILURES", "LOGIN_MAX_FAILURES", _positive_int, 5,
            "Failed logins allowed per account and per client address before each further try must wait "
            "(1 s, doubling up to 15 minutes)."),
    Setting("SHOPRELAY_WEB_THREADS", "WEB_THREADS", _positive_int, 8, "Threads per process of `shoprelay web`."),
    Setting("SHOPRELAY_WEB_WORKERS", "WEB_WORKERS", _positive_int, 1,
            "Processes of `shoprelay web`: 1 runs waitress; more run gunicorn (POSIX), one per CPU is typical."),
)


def load_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse every setting from the environment; raise SettingsError naming the bad variable."""
    return parse_settings(SETTINGS, environ)


def parse_settings(settings: tuple[Setting, ...], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse these settings from the environment (unset or empty: the default); raise SettingsError naming
    the bad variable. An area with settings of its own (onsite) keeps its table beside its code."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in settings:
        raw = environ.get(setting.env)
        if raw is None or raw == "":
            values[setting.key] = setting.default
            continue
        try:
            values[setting.key] = setting.parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{setting.env}={raw!r} is not valid: {exc}") from None
    return values


def resolve_instance(values: dict[str, Any]) -> dict[str, Any]:
    """Fill what depends on the instance folder: SQLite path and the generated, persisted secrets."""
    instance = Path(values["INSTANCE_PATH"]).resolve()
    instance.mkdir(parents=True, exist_ok=True)
    values["INSTANCE_PATH"] = str(instance)
    if not values.get("DATABASE_URL"):
        values["DATABASE_URL"] = f"sqlite:///{instance / 'shoprelay.db'}"
    if not values.get("SECRET_KEY"):
        values["SECRET_KEY"] = _persisted_secret(instance / "secret_key", lambda: secrets.token_hex(32))
    if not values.get("ENCRYPTION_KEY"):
        values["ENCRYPTION_KEY"] = _persisted_secret(
            instance / "encryption.key", lambda: Fernet.generate_key().decode())
    try:
        Fernet(values["ENCRYPTION_KEY"].encode())
    except (ValueError, TypeError):
        raise SettingsError("SHOPRELAY_ENCRYPTION_KEY is not valid: must be a Fernet key "
                            "(32 url-safe base64-encoded bytes)") from None
    return values


def _persisted_secret(path: Path, make: Callable[[], str]) -> str:
    """Read a generated secret, or create it once with owner-only permissions."""
    if path.exists():
        return path.read_text().strip()
    value = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its value
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value

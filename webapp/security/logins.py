"""Login throttling: failed logins counted per account and per client address in Redis (hashed), with
waits that grow past an allowance; a try during a wait is refused without checking the password."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from flask import current_app

log = logging.getLogger(__name__)

LOGIN_FIRST_WAIT = 1.0  # seconds after the first failure past the allowance; doubles with each further one
LOGIN_MAX_WAIT = 15 * 60.0
LOGIN_ADDRESS_FACTOR = 4  # an address (an office behind one NAT) gets this many times an account's allowance
LOGIN_FORGET_SECONDS = 3600  # failures are forgotten this long after the last one


@dataclass(frozen=True)
class LoginWait:
    seconds: float
    reason: str  # "account" or "address"

    @property
    def message(self) -> str:
        whom = "this account" if self.reason == "account" else "your network address"
        return f"Too many failed logins for {whom}. Try again in {_duration(self.seconds)}."

    @property
    def retry_after(self) -> str:
        return str(max(1, math.ceil(self.seconds)))


def _duration(seconds: float) -> str:
    whole = max(1, math.ceil(seconds))
    if whole < 60:
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = math.ceil(whole / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _login_keys(email: str, address: str) -> dict[str, str]:
    """Redis keys of the two counters; hashed, so Redis holds no email address or IP in clear."""
    def digest(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()[:32]

    return {"account": f"shoprelay:login:account:{digest(email.strip().lower())}",
            "address": f"shoprelay:login:address:{digest(address)}"}


def _login_redis():  # noqa: ANN202
    from webapp.extensions import get_redis

    return get_redis()


def login_wait(email: str, address: str, now: float | None = None) -> LoginWait | None:
    """How long this account or address must still wait before another try, or None when it may try.

    Redis unreachable: logins are not throttled (logged), rather than nobody being able to log in.
    """
    now = time.time() if now is None else now
    allowance = current_app.config.get("LOGIN_MAX_FAILURES", 5)
    try:
        redis = _login_redis()
        keys = _login_keys(email, address)
        with redis.pipeline(transaction=False) as pipe:
            for key in keys.values():
                pipe.hmget(key, "failures", "last")
            counters = pipe.execute()
    except Exception as exc:  # noqa: BLE001 - any Redis failure: do not lock everyone out
        log.warning("login throttling is off for this request (Redis: %s)", exc)
        return None
    longest: LoginWait | None = None
    for (reason, _), (failures, last) in zip(keys.items(), counters, strict=True):
        limit = allowance * (LOGIN_ADDRESS_FACTOR if reason == "address" else 1)
        count = int(failures or 0)
        if count < limit or last is None:
            continue
        wait = min(LOGIN_MAX_WAIT, LOGIN_FIRST_WAIT * 2 ** (count - limit)) - (now - float(last))
        if wait > 0 and (longest is None or wait > longest.seconds):
            longest = LoginWait(wait, reason)
    return longest


def login_failed(email: str, address: str, now: float | None = None) -> None:
    """Count a failed login against the account and the address."""
    now = time.time() if now is None else now
    try:
        redis = _login_redis()
        with redis.pipeline(transaction=True) as pipe:
            for key in _login_keys(email, address).values():
                pipe.hincrby(key, "failures", 1)
                pipe.hset(key, "last", repr(now))
                pipe.expire(key, LOGIN_FORGET_SECONDS)
            pipe.execute()
    except Exception as exc:  # noqa: BLE001
        log.warning("a failed login was not counted (Redis: %s)", exc)


def login_succeeded(email: str) -> None:
    """A correct password clears the account's count (not the address's: one's own account must not reset
    an address that is guessing others')."""
    try:
        _login_redis().delete(_login_keys(email, "")["account"])
    except Exception as exc:  # noqa: BLE001
        log.warning("a login's failure count was not cleared (Redis: %s)", exc)

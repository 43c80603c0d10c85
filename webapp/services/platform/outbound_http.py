"""The outbound URL policy (`outbound_urls`) applied where connections are made, so no request reaches an
address the policy refuses — whatever DNS answers later, and on every redirect hop.

- httpx (sources, platforms, webhooks): `GuardedTransport` connects through a network backend that resolves
  the host once, checks every address and connects to an address it checked. Host header and TLS SNI stay the
  URL's host (httpcore takes them from the request, not from the socket), so certificates verify as usual.
  Through a proxy (HTTPS_PROXY, ALL_PROXY; NO_PROXY hosts go direct) the proxy resolves the name, so the target
  is checked by its own lookup just before the request (a rebinding window of that one lookup remains there).
- Anything else (apprise's `requests` and `smtplib`): `guarded_sockets()` filters `socket.getaddrinfo` answers
  for the code it wraps (a context variable, so apprise's worker threads inherit it); the socket connects to
  an address that was checked.

A refusal is an `httpx.ConnectError` (`refusal_of` finds its reason) or a `socket.gaierror`: the caller's usual
network-error path reports it and nothing was sent.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import httpcore
import httpx

from webapp.services.platform import outbound_urls
from webapp.services.platform.outbound_urls import OutboundRefused, Policy, current_policy

PolicySource = Callable[[], Policy]
_PRECHECK_SECONDS = 60.0  # a proxied target's lookup is reused this long
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's own defaults


class Refused(httpcore.ConnectError):
    """The policy refused every address of the host: no connection was opened."""


def refusal_of(exc: BaseException) -> str | None:
    """The guard's reason when `exc` (an httpx error) comes from a refusal, else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (Refused, OutboundRefused)):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def proxy_for(url: httpx.URL, proxies: dict[str, str]) -> str | None:
    """The proxy a request to `url` goes through under these proxy settings (urllib's `getproxies()`),
    or None for a direct connection: the scheme's proxy, else ALL_PROXY, unless NO_PROXY lists the host."""
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if not proxy:
        return None
    if urllib.request.proxy_bypass_environment(url.host, {"no": proxies.get("no", "")}):
        return None
    return proxy


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, but a TCP connection only ever goes to an address the policy allows."""

    def __init__(self, policy: PolicySource = current_policy) -> None:
        self.policy = policy

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        try:
            addresses = outbound_urls.allowed_addresses(host, port, self.policy())
        except OutboundRefused as exc:
            raise Refused(str(exc)) from None
        except OSError as exc:  # the name does not resolve: what the plain backend would have said
            raise httpcore.ConnectError(str(exc)) from None
        failure: Exception | None = None
        for address in addresses:  # the checked addresses themselves: no second lookup
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure


class GuardedTransport(httpx.BaseTransport):
    """One route (direct, or through one proxy) of pooled keep-alive connections under the policy."""

    def __init__(self, *, proxy: str | None = None, limits: httpx.Limits = DEFAULT_LIMITS,
                 policy: PolicySource = current_policy, verify: Any = True, trust_env: bool = True) -> None:
        self.policy = policy
        self.proxy = proxy
        self._checked: dict[tuple[str, int], float] = {}
        self._inner = httpx.HTTPTransport(limits=limits, proxy=proxy, verify=verify, trust_env=trust_env)
        if proxy is None:
            # httpx builds its pool without a way to pass a network backend: the same pool, with ours.
            # tests/webapp/platform/test_outbound_urls.py fails if an httpx release stops using `_pool`.
            self._inner._pool = httpcore.ConnectionPool(
                ssl_context=httpx.create_ssl_context(verify=verify, trust_env=trust_env),
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry, network_backend=GuardedBackend(policy))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.proxy is not None:
            self._precheck(request)
        return self._inner.handle_request(request)

    def _precheck(self, request: httpx.Request) -> None:
        """Through a proxy the proxy resolves the name: check it by our own lookup first (cached a minute)."""
        url = request.url
        port = url.port or outbound_urls.default_port(url.scheme)
        key = (url.raw_host.decode("ascii"), port)
        now = time.monotonic()
        if self._checked.get(key, 0.0) > now:
            return
        try:
            outbound_urls.allowed_addresses(key[0], port, self.policy())
        except OutboundRefused as exc:
            raise httpx.ConnectError(str(exc), request=request) from Refused(str(exc))
        except OSError:
            pass  # the proxy may resolve names we cannot: it answers for them
        if len(self._checked) > 1024:
            self._checked.clear()
        self._checked[key] = now + _PRECHECK_SECONDS

    def close(self) -> None:
        self._inner.close()


class OutboundTransport(httpx.BaseTransport):
    """Routes each request like httpx would under the environment's proxy settings, every route guarded."""

    def __init__(self, *, limits: httpx.Limits = DEFAULT_LIMITS, policy: PolicySource = current_policy,
                 proxies: dict[str, str] | None = None) -> None:
        self.limits, self.policy = limits, policy
        self.proxies = urllib.request.getproxies() if proxies is None else proxies
        self._routes: dict[str | None, GuardedTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        proxy = proxy_for(request.url, self.proxies)
        route = self._routes.get(proxy)
        if route is None:
            with self._lock:
                route = self._routes.setdefault(proxy, GuardedTransport(proxy=proxy, limits=self.limits,
                                                                        policy=self.policy))
        return route.handle_request(request)

    def close(self) -> None:
        for route in self._routes.values():
            route.close()
        self._routes.clear()


def outbound_client(timeout: float, *, policy: PolicySource = current_policy, **kwargs: Any) -> httpx.Client:
    """An httpx client for URLs users gave (sources): every connection, redirect hops included, guarded.

    `trust_env=False` only stops the client adding unguarded proxy routes of its own; the transport reads the
    same proxy settings.
    """
    return httpx.Client(timeout=httpx.Timeout(timeout), transport=OutboundTransport(policy=policy),
                        trust_env=False, **kwargs)


# ---- other libraries: a guard on name resolution for the code inside `guarded_sockets()` ----

_ACTIVE: contextvars.ContextVar[tuple[Policy, frozenset[str]] | None] = contextvars.ContextVar(
    "shoprelay_outbound_policy", default=None)
_install_lock = threading.Lock()
_system_getaddrinfo: Callable[..., Any] | None = None


def _guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    assert _system_getaddrinfo is not None
    infos = _system_getaddrinfo(host, port, *args, **kwargs)
    active = _ACTIVE.get()
    if active is None or host is None:
        return infos
    policy, exempt = active
    name = host.decode("idna") if isinstance(host, bytes) else str(host)
    if outbound_urls.normalise_host(name) in exempt:  # the configured proxy itself
        return infos
    number = int(port) if isinstance(port, int) or (isinstance(port, (str, bytes)) and str(port).isdigit()) else 0
    try:
        return outbound_urls.filter_addrinfo(name, number, infos, policy)
    except OutboundRefused as exc:
        raise socket.gaierror(socket.EAI_FAIL, str(exc)) from None


def _install() -> None:
    global _system_getaddrinfo
    with _install_lock:
        if _system_getaddrinfo is None:
            _system_getaddrinfo = socket.getaddrinfo
            socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]


@contextlib.contextmanager
def guarded_sockets(policy: Policy | None = None) -> Iterator[None]:
    """Within the block (and threads started with its context), name lookups only return addresses the policy
    allows; a host with none fails to resolve with the reason. Proxy hosts from the environment are exempt."""
    _install()
    exempt = frozenset(outbound_urls.normalise_host(httpx.URL(value).host)
                       for key, value in urllib.request.getproxies().items()
                       if key != "no" and "://" in value)
    token = _ACTIVE.set((current_policy() if policy is None else policy, exempt))
    try:
        yield
    finally:
        _ACTIVE.reset(token)

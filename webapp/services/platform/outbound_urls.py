"""Which addresses shoprelay may call: the one policy against server-side request forgery (SSRF).

Every URL shoprelay calls for its users (source locations, destination base URLs, webhook URLs, alert channels)
is refused when its host is, or resolves to, an address inside a network rather than on the internet: loopback,
private (RFC 1918, IPv6 ULA), link-local, shared (CGNAT), multicast, unspecified, reserved or a cloud metadata
endpoint — unless `SHOPRELAY_ALLOW_PRIVATE_URLS` allows it. The check runs on the addresses a name resolves to,
so a public-looking name pointing inward is refused too; `outbound_http` applies it at connect time and then
connects to the very address it checked (no second lookup a rebinding DNS server could answer differently).

The allow list is comma-separated: host names (`localhost`, `klaviyo-fake.internal`: the name may resolve
anywhere), addresses and CIDR ranges (`127.0.0.1`, `::1`, `10.0.0.0/8`: whatever name resolves there), each
optionally with a port (`127.0.0.1:8000`, `[::1]:8000`, `localhost:8000`: that port only). Cloud metadata
addresses are allowed only when listed exactly (a range never opens them).

Standard library only (and Flask's `current_app`, read lazily), so settings, schemas, services and workers can
all import it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

ENV = "SHOPRELAY_ALLOW_PRIVATE_URLS"
CONFIG_KEY = "ALLOW_PRIVATE_URLS"
HINT = f"{ENV} lists the hosts and ranges allowed"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata endpoints (AWS/GCP/Azure/OpenStack, AWS over IPv6, ECS tasks, Alibaba, Oracle): most are
# link-local or private anyway, listed so the reason names them and a broad range in the allow list keeps
# them closed.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(address) for address in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192"))
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_AMBIGUOUS = "not allowed: {host} is an IPv4 address in a form other than dotted decimal (write a.b.c.d)"


class OutboundRefused(ValueError):
    """A URL or address shoprelay will not call; the message says why, for the person who gave it."""


@dataclass(frozen=True)
class Policy:
    """What `SHOPRELAY_ALLOW_PRIVATE_URLS` allows: names, networks, each with an optional port (None = any)."""

    names: frozenset[tuple[str, int | None]] = frozenset()
    networks: tuple[tuple[IPNetwork, int | None], ...] = ()

    def allows_name(self, host: str, port: int) -> bool:
        return (host, None) in self.names or (host, port) in self.names

    def allows_address(self, address: IPAddress, port: int) -> bool:
        for network, allowed_port in self.networks:
            if allowed_port not in (None, port) or address.version != network.version:
                continue
            if address in METADATA_ADDRESSES and network.num_addresses != 1:
                continue  # metadata endpoints open only when listed one by one
            if address in network:
                return True
        return False


NO_PRIVATE = Policy()


@lru_cache(maxsize=32)
def parse_allow_list(value: str | None) -> Policy:
    """The policy for an allow-list value; ValueError naming the entry that is neither a host nor a range."""
    names: set[tuple[str, int | None]] = set()
    networks: list[tuple[IPNetwork, int | None]] = []
    for raw in (value or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        target, port = _split_port(entry)
        try:
            networks.append((ipaddress.ip_network(target.strip("[]"), strict=False), port))
            continue
        except ValueError:
            pass
        name = normalise_host(target)
        if not name or not re.fullmatch(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?", name) or is_numeric_host(name):
            raise ValueError(f"{entry!r} is not a host name, an address or a CIDR range")
        names.add((name, port))
    return Policy(frozenset(names), tuple(networks))


def _split_port(entry: str) -> tuple[str, int | None]:
    """`host:port`, `[v6]:port`, `a.b.c.d:port` → (target, port); a bare IPv6 address or range keeps its colons."""
    match = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", entry)
    if match:
        return match.group(1), _port(match.group(2), entry)
    if entry.count(":") == 1:
        target, _, port = entry.partition(":")
        return target, _port(port, entry)
    return entry, None


def _port(value: str | None, entry: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{entry!r} has a port outside 1-65535")
    return int(value)


def policy_of(value: Policy | str | None) -> Policy:
    return value if isinstance(value, Policy) else parse_allow_list(value)


def current_policy() -> Policy:
    """The running app's policy (its `ALLOW_PRIVATE_URLS` setting); outside an app, the environment's."""
    from flask import current_app, has_app_context

    if has_app_context():
        return policy_of(current_app.config.get(CONFIG_KEY))
    return policy_of(os.environ.get(ENV))


def normalise_host(host: str) -> str:
    """Lower-case, no brackets, no trailing dot, no IPv6 zone: the form names and addresses are compared in."""
    host = host.strip().strip("[]").lower().rstrip(".")
    return host.split("%", 1)[0] if ":" in host else host


def is_numeric_host(host: str) -> bool:
    """A host written as an IPv4 address in a form other than dotted decimal (`2130706433`, `0x7f.1`, `127.1`),
    which the system resolver quietly turns into an address: never legitimate, refused whatever it names."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMERIC_PART.match(part) for part in parts):
        return False
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return True
    return False


def inward_reason(address: IPAddress) -> str | None:
    """Why `address` is inside a network rather than on the internet (\"a loopback address\"), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None)
        if embedded is not None:
            return inward_reason(embedded)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address in _CGNAT:
        return "a shared (CGNAT) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "an address that is not publicly routable"
    return None


def _unwrap(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is the IPv4 address for the allow list too."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def address_problem(address: IPAddress, port: int, policy: Policy, host: str | None = None) -> str | None:
    """Why shoprelay will not connect to `address` (reached as `host`), or None when it may."""
    plain = _unwrap(address)
    reason = inward_reason(plain)
    if reason is None or policy.allows_address(plain, port):
        return None
    if host is None or normalise_host(host) == str(address):
        return f"{address} is {reason}"
    return f"{host} resolves to {address}, {reason}"


def resolve(host: str, port: int) -> list[str]:
    """The addresses a name resolves to (the system resolver; tests swap this function for a hosts table).

    Raises OSError (socket.gaierror) when the name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def allowed_addresses(host: str, port: int, policy: Policy | None = None,
                      resolver: Callable[[str, int], list[str]] | None = None) -> list[str]:
    """The addresses of `host` shoprelay may connect to, in the resolver's order.

    Raises OutboundRefused naming the address and why when none may be used, OSError when the name does
    not resolve. Addresses the policy refuses are left out when others remain (a name answering with one
    public and one private address is only ever called on the public one).
    """
    policy = current_policy() if policy is None else policy
    host = normalise_host(host)
    if is_numeric_host(host):
        raise OutboundRefused(_AMBIGUOUS.format(host=host))
    literal = _literal(host)
    if literal is not None:
        problem = address_problem(literal, port, policy)
        if problem:
            raise OutboundRefused(_refusal(problem))
        return [str(literal)]
    if policy.allows_name(host, port):
        return (resolver or resolve)(host, port)
    if host in METADATA_NAMES:
        raise OutboundRefused(_refusal(f"{host} is a cloud metadata host"))
    found = (resolver or resolve)(host, port)
    allowed, problems = [], []
    for text in found:
        address = _literal(normalise_host(text))
        if address is None:
            continue
        problem = address_problem(address, port, policy, host)
        if problem:
            problems.append(problem)
        else:
            allowed.append(text)
    if not allowed:
        raise OutboundRefused(_refusal(problems[0] if problems else f"{host} resolves to no usable address"))
    return allowed


def _refusal(problem: str) -> str:
    return f"not allowed: {problem} ({HINT})"


def default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def check_url(url: str, policy: Policy | None = None,
              resolver: Callable[[str, int], list[str]] | None = None) -> None:
    """Raise OutboundRefused when `url` points inward (OSError when its host does not resolve)."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise OutboundRefused(f"is not a valid URL ({exc})") from None
    host = parsed.raw_host.decode("ascii") if parsed.raw_host else ""
    allowed_addresses(host, parsed.port or default_port(parsed.scheme), policy, resolver)


def url_problem(url: str, policy: Policy | None = None) -> str | None:
    """What is wrong with calling `url` under the policy, or None: checked when a URL is given (a 422 naming
    the field). A name that does not resolve today passes: it is checked again on every connection."""
    try:
        check_url(url, policy)
    except OutboundRefused as exc:
        return str(exc)
    except OSError:
        return None
    return None


def host_problem(host: str, port: int, policy: Policy | None = None) -> str | None:
    """`url_problem` for a bare host and port (an SMTP server, a self-hosted notification service)."""
    try:
        allowed_addresses(host, port, policy)
    except OutboundRefused as exc:
        return str(exc)
    except OSError:
        return None
    return None


def filter_addrinfo(host: str, port: int, infos: Iterable[tuple[Any, ...]],
                    policy: Policy) -> list[tuple[Any, ...]]:
    """The `socket.getaddrinfo` entries for `host` that may be connected to; OutboundRefused when none."""
    host = normalise_host(host)
    if is_numeric_host(host):
        raise OutboundRefused(_AMBIGUOUS.format(host=host))
    if policy.allows_name(host, port):
        return list(infos)
    kept, problems = [], []
    for info in infos:
        address = _literal(normalise_host(str(info[4][0])))
        problem = "an address that is not IP" if address is None else address_problem(
            address, port, policy, None if _literal(host) else host)
        if problem:
            problems.append(problem)
        else:
            kept.append(info)
    if not kept:
        raise OutboundRefused(_refusal(problems[0] if problems else f"{host} resolves to no usable address"))
    return kept

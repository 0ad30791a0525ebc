"""Where the notifier may send a webhook: never to loopback, private or link-local addresses.

An office registers a URL; without this guard, anyone with an office token could
aim the notifier at the machines beside it (the store, the broker's management
port, a cloud metadata address). So a URL is checked when it is registered and
again right before each send (its name may since resolve elsewhere: DNS
rebinding), and the send goes to the very address that was checked
(:class:`Target`), never to a second lookup. ``VCS_WEBHOOK_ALLOWED_NETWORKS``
opens chosen networks (a receiver on the office's intranet, the tests' loopback).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

MAX_URL_LENGTH = 2000


class UnsafeUrl(ValueError):
    """A webhook URL the notifier must not call; the message says why, for a person."""


def parse_networks(cidrs: str | Sequence[str]) -> tuple[IPNetwork, ...]:
    """``"10.0.0.0/8, 127.0.0.1/32"`` as networks; ValueError naming a bad entry."""
    entries = cidrs.split(",") if isinstance(cidrs, str) else list(cidrs)
    networks = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not a CIDR network ({exc})") from exc
    return tuple(networks)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (the system resolver, off the event loop)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeUrl(f"the host {host!r} cannot be resolved ({exc.strerror})") from exc
    return [ipaddress.ip_address(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL and the address to connect to (the one that was checked)."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Which addresses a webhook may reach: public ones, and the ``allowed`` networks."""

    allowed: tuple[IPNetwork, ...] = ()
    resolver: Resolver = resolve

    def allows(self, address: IPAddress) -> bool:
        """Whether ``address`` is in one of the networks opened by the settings."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.allowed)

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be called (None: it may)."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if self.allows(address):
            return None
        if address.is_unspecified:
            return f"{address}, not a public address"
        if address.is_loopback:
            return f"{address}, a loopback address"
        if address.is_link_local:
            return f"{address}, a link-local address"
        if address.is_private:
            return f"{address}, a private address"
        if not address.is_global or address.is_multicast:
            return f"{address}, not a public address"
        return None

    async def check(self, url: str) -> Target:
        """The address to send to, or :class:`UnsafeUrl`: a URL that is not absolute http(s),
        carries user info, or whose host resolves to any address this policy refuses."""
        host, port, scheme = _parts(url)
        addresses = await self.resolver(host, port)
        if not addresses:
            raise UnsafeUrl(f"the host {host!r} resolves to no address")
        for address in addresses:
            reason = self.refusal(address)
            if reason is not None:
                raise UnsafeUrl(f"the URL's host {host!r} resolves to {reason}")
        if scheme == "http" and not all(self.allows(a) for a in addresses):
            raise UnsafeUrl("must start with https:// (plain http only inside allowed networks)")
        return Target(url=url, scheme=scheme, host=host, port=port, address=addresses[0])


def _parts(url: str) -> tuple[str, int, str]:
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL ({exc})") from exc
    if parts.scheme not in ("https", "http"):
        raise UnsafeUrl("must start with https://")
    if not parts.hostname:
        raise UnsafeUrl("has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("must not carry a user name or password")
    if parts.fragment:
        raise UnsafeUrl("must not have a #fragment")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80), parts.scheme

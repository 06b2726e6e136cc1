"""The address guard for requests the exchange makes to member-supplied URLs (webhooks).

A URL is accepted only if every address its host resolves to is a public unicast address, in
whatever spelling the host was written (decimal `2130706433`, octal `0177.0.0.1`, hex, short
`127.1`, IPv4-mapped `::ffff:127.0.0.1`, NAT64 `64:ff9b::7f00:1`, 6to4 `2002:7f00:1::`...): the
host is resolved first, and the resolved addresses are what is judged. The caller then connects
to one of exactly those addresses (see `alerts.services.transport`), so a second DNS answer
(rebinding) never reaches a private address.

Loopback is refused unless the caller passes `allow_loopback` (a test-only setting); nothing
else is ever allowed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .exceptions import PhalanxError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[Any]]

MAX_URL_LENGTH = 2000

# Cloud metadata services. Most sit in ranges refused anyway; Azure's wire server is public.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "168.63.129.16", "100.100.100.200", "192.0.0.192", "fd00:ec2::254")
)
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
TEREDO = ipaddress.ip_network("2001::/32")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class AddressRefused(PhalanxError):
    """A URL the exchange will not send to. `code` says why, for delivery logs and API errors."""

    code = "blocked_address"


@dataclass(frozen=True)
class CheckedTarget:
    """A URL whose host resolved only to allowed addresses: connect to one of `addresses`."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the translation forms."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64_WELL_KNOWN or ip in IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    return None


def refusal_reason(ip: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why the exchange must not connect to `ip`, or None if it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped address"
        if ip == ipaddress.IPv6Address("::1"):
            return None if allow_loopback else "loopback"
        if ip in TEREDO or ip in NAT64_LOCAL_USE:
            return "tunnel or translation prefix"
        inner = embedded_ipv4(ip)
        if inner is not None:
            # `::ffff:127.0.0.1` and friends reach the IPv4 address: judge that one. Loopback
            # stays refused in these spellings even when the test setting allows plain loopback.
            reason = refusal_reason(inner)
            return f"{reason}, embedded in IPv6" if reason else None
    if ip.is_loopback:
        return None if allow_loopback else "loopback"
    if ip in METADATA_ADDRESSES:
        return "metadata service"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if isinstance(ip, ipaddress.IPv4Address) and ip in CARRIER_GRADE_NAT:
        return "carrier-grade NAT"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "reserved"
    return None


def _split(url: str, *, allow_http: bool) -> tuple[str, str, int, str]:
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise AddressRefused("The URL is empty or too long.", code="bad_url")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise AddressRefused("The URL contains spaces or control characters.", code="bad_url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise AddressRefused("The URL cannot be parsed.", code="bad_url") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_http):
        raise AddressRefused("Webhook URLs must use https.", code="https_required")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("Credentials in the URL are not accepted.", code="bad_url")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise AddressRefused("The URL has no host.", code="bad_url")
    try:
        # IDNA turns lookalike dots and letters into the name the resolver would use anyway.
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise AddressRefused("The host name is not a valid domain name.", code="bad_url") from None
    if len(host) > 253:
        raise AddressRefused("The host name is too long.", code="bad_url")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port or (443 if scheme == "https" else 80), path


def resolve(host: str, port: int, resolver: Resolver = socket.getaddrinfo) -> tuple[str, ...]:
    """Every address `host` resolves to, deduplicated, in the resolver's order."""
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise AddressRefused(f"The host {host!r} does not resolve.", code="unresolvable") from None
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise AddressRefused(f"The host {host!r} does not resolve.", code="unresolvable")
    return tuple(addresses)


def check_url(
    url: str,
    *,
    allow_loopback: bool = False,
    allow_http: bool = False,
    resolver: Resolver = socket.getaddrinfo,
) -> CheckedTarget:
    """Parse, resolve and judge `url`. Raises `AddressRefused` unless every address is allowed."""
    scheme, host, port, path = _split(url, allow_http=allow_http)
    addresses = resolve(host, port, resolver)
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise AddressRefused("The host resolved to an unreadable address.") from None
        reason = refusal_reason(ip, allow_loopback=allow_loopback)
        if reason is not None:
            # The message names the class of address, never the address: a member must not be
            # able to map the exchange's own network by registering URLs.
            raise AddressRefused(f"The URL's host resolves to a refused address ({reason}).")
    return CheckedTarget(scheme=scheme, host=host, port=port, path=path, addresses=addresses)

"""Where a webhook may connect: public addresses only, checked when the request is sent.

A user's webhook URL makes the server send requests on their behalf, so without a check it could
reach the server's own network: 127.0.0.1 (Redis, Flower, the admin), the LAN (10/8, 192.168/16)
or a cloud's metadata service (169.254.169.254). The rules:

- the URL is http or https, has a host and no user:password;
- the host name is resolved at send time and EVERY address it resolves to must be public (not
  private, loopback, link-local, multicast, reserved, unspecified, shared 100.64/10, and not an
  IPv4 address hidden in an IPv6 one); numeric forms such as `2130706433` or `0177.1` resolve like
  any name and are checked the same way;
- the request then goes to the address that was checked (with the name as Host and TLS server
  name), so a name that answers a public address to the check and a private one to the connect
  (DNS rebinding) gets nowhere; redirects are never followed.

ALERT_WEBHOOK_ALLOW_PRIVATE=true lifts the address rule (an operator whose receivers are on their
own network, and the tests' local receiver).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa")


class AddressRefused(Exception):
    """The webhook's host is, or resolves to, an address it may not reach."""


def address_problem(ip: IPAddress) -> str:
    """Why a webhook may not connect to this address, as "a loopback address" ("" if it may)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or (ip.sixtofour if ip.sixtofour is not None else None)
        if embedded is None and ip.teredo is not None:
            embedded = ip.teredo[1]
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{problem} ({embedded}, inside an IPv6 address)" if problem else ""
    checks = (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("shared address space", isinstance(ip, ipaddress.IPv4Address) and ip in SHARED_ADDRESS_SPACE),
        ("not globally routable", not ip.is_global),
    )
    for name, hit in checks:
        if hit:
            return f"{'an' if name[0] in 'aeiou' else 'a'} {name} address"
    return ""


def allow_private() -> bool:
    return bool(settings.ALERT_WEBHOOK_ALLOW_PRIVATE)


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str  # as written in the URL (a name or an address)
    port: int
    address: str  # the checked address the request goes to


def url_problem(url: str) -> str:
    """What is wrong with a webhook URL as written ("" if nothing); names are checked at send time."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "the URL must start with https:// or http://"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL are not allowed: the receiver checks the signature instead"
    if port == 0:
        return "port 0 is not a port"
    if allow_private():
        return ""
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        if parts.hostname == "localhost" or parts.hostname.endswith(LOCAL_SUFFIXES):
            # Names that only ever mean this machine or its network: refused before any lookup.
            return f"refused: {parts.hostname} is a local name"
        return ""
    problem = address_problem(literal)
    return f"refused: {literal} is {problem}" if problem else ""


def resolve(url: str) -> Target:
    """Resolve the URL's host and check every address; the Target to connect to, or AddressRefused."""
    problem = url_problem(url)
    if problem:
        raise AddressRefused(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise LookupError(f"{host} could not be resolved ({exc})") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise LookupError(f"{host} has no address")
    if not allow_private():
        for ip in addresses:
            problem = address_problem(ip)
            if problem:
                # Every address is checked: a name with one public and one private answer is refused.
                raise AddressRefused(f"refused: {host} resolves to {ip}, {problem}")
    return Target(scheme=parts.scheme, host=host, port=port, address=str(addresses[0]))

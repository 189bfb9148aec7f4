"""Checks on a customer's image URL before a provider is asked to fetch it.

The provider downloads the image from inside its own network, so a URL that points at a
loopback, private, link-local, multicast, reserved or cloud metadata address could reach
machines the customer must not reach. The host name is resolved here, and every address
it resolves to must be public; IPv4 addresses embedded in IPv6 ones are checked as IPv4.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from chalicelib.errors import InvalidRequest

FIELD = "url"
MAX_URL_LENGTH = 2048
MAX_HOSTNAME_LENGTH = 253
ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Addresses that Python's ipaddress module treats as global but no image may come from.
BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "169.254.169.254/32",  # instance metadata on AWS, Google Cloud, Azure and OpenStack
        "169.254.170.2/32",  # Amazon ECS task metadata
        "fd00:ec2::254/128",  # AWS instance metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud instance metadata
        "192.0.0.0/24",  # IETF protocol assignments (RFC 6890), incl. Oracle Cloud metadata at .192
        "64:ff9b:1::/48",  # local-use NAT64 prefix (RFC 8215)
    )
)


def check_image_url(url: str) -> str:
    """Return `url` if a provider may fetch it; raise InvalidRequest naming the problem.

    NOTE: the provider resolves the host name again when it downloads, so a name whose
    DNS answer changes between the two lookups (DNS rebinding) is not caught here.
    """
    scheme, host, port = split_url(url)
    addresses = resolve_host(host, port if port is not None else DEFAULT_PORTS[scheme])
    check_addresses(host, addresses)
    return url


def split_url(url: str) -> tuple[str, str, int | None]:
    """Return the scheme, host and port of an http(s) URL after the syntax checks."""
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(f"url must be at most {MAX_URL_LENGTH} characters")
    if not url.isprintable() or any(character.isspace() or character == "\\" for character in url):
        raise _invalid("url must not contain spaces, control characters or backslashes")

    try:
        parts = urlsplit(url)
    except ValueError:
        raise _invalid("url is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise _invalid(f"url must start with http:// or https://, not {scheme + '://' if scheme else 'nothing'}")
    if "@" in parts.netloc:
        raise _invalid("url must not contain a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _invalid("url has no host name")
    if len(host) > MAX_HOSTNAME_LENGTH or "%" in host:
        raise _invalid("url host name is not valid")
    try:
        port = parts.port
    except ValueError:
        raise _invalid("url has an invalid port") from None
    return scheme, host, port


def resolve_host(host: str, port: int) -> list[str]:
    """Resolve `host` with the system resolver; an IP literal resolves to itself."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise _invalid(f"host name {host!r} could not be resolved") from None
    return [str(answer[4][0]) for answer in answers]


def check_addresses(host: str, addresses: Iterable[str]) -> None:
    """Raise InvalidRequest unless every address is public; an empty resolution fails too."""
    checked = 0
    for text in addresses:
        address = ipaddress.ip_address(text.partition("%")[0])
        reason = blocked_reason(address)
        if reason is not None:
            where = f"{address} is" if _is_literal(host) else f"{host} resolves to {address},"
            raise _invalid(f"{where} a {reason} address; images can be fetched from public addresses only")
        checked += 1
    if checked == 0:
        raise _invalid(f"host name {host!r} resolved to no address")


def blocked_reason(address: IpAddress) -> str | None:
    """Name the kind of non-public address `address` is, or return None if it is public."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = blocked_reason(embedded)
        if reason is not None:
            return f"{reason} (embedded in IPv6)"

    checks = (
        (any(address in network for network in BLOCKED_NETWORKS), "cloud metadata or protocol"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_unspecified, "unspecified"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "site-local"),
        (not address.is_global, "non-public"),
    )
    return next((reason for matched, reason in checks if matched), None)


def _embedded_ipv4(address: IpAddress) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address inside an IPv4-mapped, 6to4 or Teredo IPv6 address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, field=FIELD)

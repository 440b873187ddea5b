"""What may be fetched: the settings of a fetch, the allow-list, and which addresses are refused.

Checks are pure functions of a URL or an address, so the fetcher can apply them to the first URL, to
every redirect and to every address a name resolves to, and tests can call them directly.

>>> refusal(ipaddress.ip_address("::ffff:169.254.169.254"))
'169.254.169.254 is a link-local address'
>>> host_allowed("cdn.example.org", ("*.example.org",))
True
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

import httpx

from cutout.fetch.errors import ForbiddenUrl, InvalidUrl
from transform import variables
from transform.variables import BY_NAME

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: NAT64's well-known prefix embeds an IPv4 address in the last 32 bits (RFC 6052); a gateway would
#: forward 64:ff9b::7f00:1 to 127.0.0.1.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: Labels of letters, digits, '-' and '_' (some CDNs use it) joined by dots: what DNS can be asked about.
_HOST_NAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*\.?")


@dataclass(frozen=True)
class FetchPolicy:
    """How a fetch is bounded. ``allow`` empty means fetching is off; ``("*",)`` allows any host."""

    # The defaults are the settings table's (one place per fact); from_environ reads the same rows.
    allow: tuple[str, ...] = BY_NAME["CUTOUT_FETCH_ALLOW"].default
    allow_private: bool = BY_NAME["CUTOUT_FETCH_ALLOW_PRIVATE"].default
    #: Non-public networks allowed all the same (``10.1.0.0/16``), when allow_private is off.
    allow_networks: tuple[str, ...] = BY_NAME["CUTOUT_FETCH_ALLOW_NETWORKS"].default
    max_bytes: int = BY_NAME["CUTOUT_FETCH_MAX_BYTES"].default
    connect_timeout: float = BY_NAME["CUTOUT_FETCH_CONNECT_TIMEOUT"].default
    timeout: float = BY_NAME["CUTOUT_FETCH_TIMEOUT"].default
    max_redirects: int = 3
    #: The setting ``allow`` came from, for the messages that tell an operator what to change.
    allow_name: str = "CUTOUT_FETCH_ALLOW"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> FetchPolicy:
        """The image fetcher's policy from the ``fetch`` variables of the settings table (raises
        VariableError naming a bad one)."""
        values = variables.read("fetch", environ)
        return cls(
            allow=values["CUTOUT_FETCH_ALLOW"],
            allow_private=values["CUTOUT_FETCH_ALLOW_PRIVATE"],
            allow_networks=values["CUTOUT_FETCH_ALLOW_NETWORKS"],
            max_bytes=values["CUTOUT_FETCH_MAX_BYTES"],
            connect_timeout=values["CUTOUT_FETCH_CONNECT_TIMEOUT"],
            timeout=values["CUTOUT_FETCH_TIMEOUT"],
        )

    def with_allow(self, allow: tuple[str, ...], allow_name: str) -> FetchPolicy:
        return replace(self, allow=allow, allow_name=allow_name)


def _kind(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast one, as words; None when it is."""
    checks = (
        ("an unspecified", address.is_unspecified),
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a reserved", address.is_reserved),
        ("a private", address.is_private),
        ("a site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        # Whatever else IANA marks not globally reachable (100.64.0.0/10 shared address space, ...).
        ("a non-public", not address.is_global),
    )
    return next((words for words, hit in checks if hit), None)


def _embedded(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries and the network would reach: mapped, 6to4, NAT64."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why a fetch may not connect to ``address`` (unless private addresses are allowed); None: it may."""
    inner = _embedded(address)
    if inner is not None:
        why = _kind(inner)
        if why is not None:
            return f"{inner} is {why} address"
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return None  # the kernel connects to the IPv4 address itself; ::ffff:0:0/96 is "reserved"
    why = _kind(address)
    return None if why is None else f"{address} is {why} address"


def check_address(address: IPAddress, host: str, policy: FetchPolicy) -> None:
    if policy.allow_private or _in_networks(address, policy.allow_networks):
        return
    why = refusal(address)
    if why is not None:
        # The host name is the client's own input; the address is what it resolved to here.
        raise ForbiddenUrl(f"Fetching {host} is not allowed: {why}")


def _in_networks(address: IPAddress, networks: tuple[str, ...]) -> bool:
    # An IPv4-mapped address is compared as the IPv4 address it stands for.
    plain = _embedded(address) if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else None
    return any((plain or address) in ipaddress.ip_network(net, strict=False) for net in networks)


def host_allowed(host: str, allow: tuple[str, ...]) -> bool:
    """``host`` (lower case, IDNA-encoded) matches one of ``allow``'s names or glob patterns."""
    return any(fnmatchcase(host, pattern.strip().lower()) for pattern in allow)


def check_url(url: httpx.URL, policy: FetchPolicy) -> str:
    """Refuse what may never be fetched, before resolving anything; the host, as matched."""
    if not url.scheme:  # "example.org/a.jpg": httpx reads it as a relative path
        raise InvalidUrl("The URL has no scheme: write it in full, with http:// or https://")
    if url.scheme not in ("http", "https"):
        raise ForbiddenUrl(f"Only http and https URLs can be fetched, not {url.scheme}: URLs")
    if url.userinfo:
        # Credentials in a URL end up in logs and in the Referer of whatever the server redirects to.
        raise ForbiddenUrl("URLs with a user name or password are not fetched")
    host = url.raw_host.decode("ascii").lower()
    if not host:
        raise InvalidUrl("The URL has no host")
    if not (_HOST_NAME.fullmatch(host) or _is_address(host)):
        raise InvalidUrl(f"The URL's host {host[:100]!r} is not a valid host name")
    if bad_port(url):  # a redirect's Location is not read by parse_url
        raise InvalidUrl(f"The URL's port {url.port} is not between 1 and 65535")
    if not policy.allow:
        raise ForbiddenUrl(f"Fetching URLs is turned off on this server ({policy.allow_name} is empty)")
    if not host_allowed(host, policy.allow):
        raise ForbiddenUrl(f"Fetching from {host} is not allowed (not in {policy.allow_name})")
    if _is_address(host):  # known now, not only once resolved: a webhook to 127.0.0.1 is refused at once
        check_address(ipaddress.ip_address(host.strip("[]")), host, policy)
    return host


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_url(text: str) -> httpx.URL:
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidUrl(f"Not a valid URL: {text[:200]!r} ({str(exc)[:100]})", detail=str(exc)) from None
    # httpx takes any number as a port, and the resolver wraps it: :65536 was fetched from port 0, :99999
    # from 34463 (another service than the URL names); a webhook to it would be retried for hours as if
    # its receiver were down.
    if bad_port(url):
        raise InvalidUrl(f"Not a valid URL: {text[:200]!r} (port {url.port} is not between 1 and 65535)")
    return url


def bad_port(url: httpx.URL) -> bool:
    """Whether ``url`` names a port no connection can use (parse_url's URLs, and a redirect's)."""
    return url.port is not None and not 1 <= url.port <= 65535

"""The pure checks: which addresses are refused, the allow-list, the settings."""

from __future__ import annotations

import doctest
import ipaddress
from types import ModuleType

import httpx
import pytest

import cutout.fetch.fetcher
import cutout.fetch.policy
from cutout.fetch import FetchPolicy, ForbiddenUrl, PinnedTransport, check_address, host_allowed, refusal
from cutout.fetch.policy import check_url, parse_url
from transform.variables import VariableError

REFUSED = {
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "10.0.0.5": "private",
    "172.16.3.4": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "0.0.0.0": "unspecified",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "100.64.0.1": "non-public",  # carrier-grade NAT
    "192.0.2.1": "private",  # documentation
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "ff02::1": "multicast",
    "fec0::1": "site-local",
    "::ffff:127.0.0.1": "loopback",  # IPv4-mapped: the IPv4 address is what the kernel connects to
    "::ffff:169.254.169.254": "link-local",
    "::ffff:10.0.0.1": "private",
    "2002:7f00:1::1": "loopback",  # 6to4 of 127.0.0.1
    "64:ff9b::a9fe:a9fe": "link-local",  # NAT64 of 169.254.169.254
}


@pytest.mark.parametrize("text", REFUSED)
def test_non_public_addresses_are_refused_with_the_reason(text: str) -> None:
    why = refusal(ipaddress.ip_address(text))
    assert why is not None and f"{REFUSED[text]} address" in why
    with pytest.raises(ForbiddenUrl, match=REFUSED[text]) as refused:
        check_address(ipaddress.ip_address(text), "h.test", FetchPolicy(allow=("*",)))
    assert refused.value.code == "forbidden_url" and refused.value.status == 403


@pytest.mark.parametrize("text", ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(text: str) -> None:
    assert refusal(ipaddress.ip_address(text)) is None


def test_allow_private_and_allowed_networks() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    check_address(loopback, "h", FetchPolicy(allow_private=True))
    check_address(loopback, "h", FetchPolicy(allow_networks=("127.0.0.0/8",)))
    check_address(ipaddress.ip_address("::ffff:10.1.2.3"), "h", FetchPolicy(allow_networks=("10.1.0.0/16",)))
    with pytest.raises(ForbiddenUrl):
        check_address(ipaddress.ip_address("10.2.0.1"), "h", FetchPolicy(allow_networks=("10.1.0.0/16",)))


@pytest.mark.parametrize(
    ("host", "allow", "allowed"),
    [
        ("cdn.example.org", ("*",), True),
        ("cdn.example.org", ("*.example.org",), True),
        ("a.b.example.org", ("*.example.org",), True),
        ("example.org", ("*.example.org",), False),
        ("example.org", ("example.org",), True),
        ("evil-example.org", ("*.example.org",), False),
        ("example.org.evil.test", ("example.org",), False),
        ("img.example.org", ("IMG.Example.org",), True),
        ("anything", (), False),
    ],
)
def test_allow_list_names_and_patterns(host: str, allow: tuple[str, ...], allowed: bool) -> None:
    assert host_allowed(host, allow) is allowed


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.org/a.jpg", "Only http and https"),
        ("file:///etc/passwd", "Only http and https"),
        ("gopher://example.org/", "Only http and https"),
        ("http://user:pw@example.org/a.jpg", "user name or password"),
        ("http://other.test/a.jpg", "other.test is not allowed \\(not in CUTOUT_FETCH_ALLOW\\)"),
    ],
)
def test_urls_refused_before_resolving(url: str, message: str) -> None:
    with pytest.raises(ForbiddenUrl, match=message):
        check_url(parse_url(url), FetchPolicy(allow=("example.org",)))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://0177.0.0.1/a.jpg", "Not a valid URL"),  # octal: httpx refuses to guess, as we must
        ("example.org/a.jpg", "no scheme"),
        ("http:///a.jpg", "no host"),
        ("http://[not-an-address/", "not a valid host name|Not a valid URL"),
        ("http://exa mple.org/a.jpg", "not a valid host name"),
        # httpx takes any port, and getaddrinfo wraps it: these were fetched from port 0 and 34463
        ("http://example.org:65536/a.jpg", "port 65536 is not between 1 and 65535"),
        ("http://example.org:99999/a.jpg", "port 99999 is not between 1 and 65535"),
        ("http://example.org:0/a.jpg", "port 0 is not between 1 and 65535"),
        ("http://127.0.0.1:0/hook", "port 0 is not between 1 and 65535"),
    ],
)
def test_what_is_no_url_is_the_clients_400(url: str, message: str) -> None:
    """Not a URL at all is a mistake in the request (400, invalid_parameter), not a URL the policy
    refuses (403, forbidden_url); still refused before anything is resolved."""
    with pytest.raises(ForbiddenUrl, match=message) as refused:
        check_url(parse_url(url), FetchPolicy(allow=("*",)))
    assert (refused.value.status, refused.value.code) == (400, "invalid_parameter")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://[::1]/x", "https://10.0.0.7/a.jpg",
                                 "http://169.254.169.254/latest/meta-data/"])
def test_a_private_address_written_in_the_url_is_refused_before_anything(url: str) -> None:
    with pytest.raises(ForbiddenUrl, match="is not allowed: .* address"):
        check_url(parse_url(url), FetchPolicy(allow=("*",)))
    assert check_url(parse_url(url), FetchPolicy(allow=("*",), allow_private=True))  # allowed when asked
    assert check_url(parse_url("http://93.184.216.34/a.jpg"), FetchPolicy(allow=("*",))) == "93.184.216.34"


def test_empty_allow_list_turns_fetching_off() -> None:
    with pytest.raises(ForbiddenUrl, match="turned off.*CUTOUT_FETCH_ALLOW is empty"):
        check_url(parse_url("https://example.org/a.jpg"), FetchPolicy())


def test_policy_from_the_settings_table() -> None:
    policy = FetchPolicy.from_environ(
        {
            "CUTOUT_FETCH_ALLOW": "*.example.org, images.test",
            "CUTOUT_FETCH_ALLOW_PRIVATE": "1",
            "CUTOUT_FETCH_ALLOW_NETWORKS": "10.1.2.3, fd00::/8",
            "CUTOUT_FETCH_MAX_BYTES": "2M",
            "CUTOUT_FETCH_TIMEOUT": "12.5",
        }
    )
    assert policy.allow == ("*.example.org", "images.test")
    assert policy.allow_private and policy.allow_networks == ("10.1.2.3/32", "fd00::/8")
    assert policy.max_bytes == 2 << 20 and policy.timeout == 12.5 and policy.connect_timeout == 5.0
    assert FetchPolicy.from_environ({}) == FetchPolicy()
    with pytest.raises(VariableError, match="^CUTOUT_FETCH_ALLOW_NETWORKS: expected"):
        FetchPolicy.from_environ({"CUTOUT_FETCH_ALLOW_NETWORKS": "10.0.0.0/33"})


@pytest.mark.parametrize("module", [cutout.fetch.policy, cutout.fetch.fetcher], ids=lambda m: m.__name__)
def test_the_docstring_examples_hold(module: ModuleType) -> None:
    assert doctest.testmod(module).failed == 0


@pytest.mark.anyio
async def test_the_transport_refuses_a_host_nobody_checked() -> None:
    """Even if other code followed a redirect through the pinned transport, it could not reach a new host."""
    transport = PinnedTransport({"images.test": ipaddress.ip_address("127.0.0.2")})
    with pytest.raises(ForbiddenUrl, match="other.test is not allowed: its address was not checked"):
        await transport.handle_async_request(httpx.Request("GET", "http://other.test/a.jpg"))
    await transport.aclose()

"""Connections that can only go where the policy allows: each name resolved once, the connection pinned.

``GuardedClient.open`` checks a URL (scheme, allow-list), resolves its host once per client, refuses the
name when any of its addresses is not public, and pins it: ``PinnedTransport`` rewrites every request to
the pinned address and keeps the name for the ``Host`` header and TLS (SNI and certificate checks), so a
DNS answer that changes between the check and the connection (DNS rebinding) cannot move it, and a
request for a host nobody checked (a redirect followed by someone else's code) is refused, not sent.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable

import anyio
import httpx

from cutout.fetch.errors import DownloadTimeout, FailedDownload, ForbiddenUrl
from cutout.fetch.policy import FetchPolicy, IPAddress, check_address, check_url

#: ``(host, port) -> addresses``; tests and callers with their own DNS pass another one.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host`` (an IDNA-encoded name or an address literal), as the OS resolves them."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FailedDownload(f"The host {host} could not be resolved", detail=str(exc)) from None
    # The scope of a link-local IPv6 address (fe80::1%eth0) is dropped: such an address is refused anyway.
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


class PinnedTransport(httpx.AsyncBaseTransport):
    """Sends each request to the address pinned for its host, never to a fresh DNS answer."""

    def __init__(self, pins: dict[str, IPAddress], verify: ssl.SSLContext | bool = True) -> None:
        self.pins = pins
        # trust_env=False: no proxy from the environment (it would see the URL, not our pinned address).
        self._inner = httpx.AsyncHTTPTransport(verify=verify, trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.raw_host.decode("ascii").lower()
        address = self.pins.get(host)
        if address is None:
            raise ForbiddenUrl(f"Fetching {host} is not allowed: its address was not checked")
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=str(address)),
            headers=request.headers,  # Host: still the name, set by the client from the original URL
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": host},
        )
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()


class GuardedClient:
    """An httpx client whose every request passed ``check_url`` and the address checks. Redirects are
    not followed here: callers re-open each hop, so each is checked (``cutout.fetch.fetcher``)."""

    def __init__(
        self, policy: FetchPolicy, *, resolver: Resolver = resolve, verify: ssl.SSLContext | bool = True
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.pins: dict[str, IPAddress] = {}
        timeout = httpx.Timeout(policy.timeout, connect=policy.connect_timeout)
        self._client = httpx.AsyncClient(
            transport=PinnedTransport(self.pins, verify),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,  # nor .netrc credentials
        )

    async def __aenter__(self) -> GuardedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def _pin(self, host: str, port: int) -> None:
        if host in self.pins:  # resolved once per client: a redirect back to a host reuses its address
            return
        addresses = await self.resolver(host, port)
        if not addresses:
            raise FailedDownload(f"The host {host} has no address")
        for address in addresses:  # every one: the OS may pick any of them when connecting
            check_address(address, host, self.policy)
        self.pins[host] = addresses[0]

    async def open(
        self,
        method: str,
        url: httpx.URL,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """The response, its body not read yet (close it). Raises ForbiddenUrl, FailedDownload or
        DownloadTimeout, never an httpx exception."""
        host = check_url(url, self.policy)
        await self._pin(host, url.port or (443 if url.scheme == "https" else 80))
        request = self._client.build_request(method, url, headers=headers, content=content)
        try:
            return await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise timeout_error(host, exc) from None
        except httpx.HTTPError as exc:
            raise transport_error(host, exc) from None

    def address(self, url: httpx.URL) -> str:
        return str(self.pins.get(url.raw_host.decode("ascii").lower(), ""))


def timeout_error(host: str, exc: httpx.TimeoutException) -> DownloadTimeout:
    if isinstance(exc, httpx.ConnectTimeout):
        return DownloadTimeout(f"Could not connect to {host} in time", detail=repr(exc))
    return DownloadTimeout(f"{host} did not answer in time", detail=repr(exc))


def transport_error(host: str, exc: httpx.HTTPError) -> FailedDownload:
    return FailedDownload(f"Could not download from {host}: {describe(exc)}", detail=repr(exc))


def describe(exc: httpx.HTTPError) -> str:
    """A short public description of a transport failure: the kind, and the first line of the reason."""
    kinds = {
        httpx.ConnectError: "connection failed",
        httpx.RemoteProtocolError: "the server broke the HTTP protocol",
        httpx.ReadError: "the connection broke while reading",
        httpx.WriteError: "the connection broke while sending",
    }
    kind = next((words for cls, words in kinds.items() if isinstance(exc, cls)), type(exc).__name__)
    reason = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{kind} ({reason})" if reason else kind

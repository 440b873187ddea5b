"""The fetcher against real HTTP servers on loopback: what it fetches, and everything it refuses."""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import replace

import pytest

from cutout.fetch import (
    DownloadTimeout,
    FailedDownload,
    FetchPolicy,
    FileTooLarge,
    ForbiddenUrl,
    InvalidFileType,
    IPAddress,
    NotModified,
    Resolver,
    Validators,
    fetch,
    resolve,
    revalidate,
)
from tests.fetch.conftest import ORIGIN_HOST
from tests.fetch.servers import (
    LocalServer,
    RecordingHandler,
    answer,
    chunked,
    redirect,
    stall,
    trickle,
    until_close,
)

pytestmark = pytest.mark.anyio


class FakeDns:
    """A resolver with fixed answers that counts its questions; other names go to the real one."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        if host in self.answers:
            return [ipaddress.ip_address(a) for a in self.answers[host]]
        return await resolve(host, port)


async def test_fetches_a_real_jpeg_with_its_validators(
    origin: LocalServer, policy: FetchPolicy, jpeg: bytes
) -> None:
    headers = {"ETag": '"v1"', "Last-Modified": "Wed, 21 Oct 2026 07:28:00 GMT"}
    origin.routes["/photo.jpg"] = answer(200, jpeg, "image/jpeg", headers)
    fetched = await fetch(origin.url("/photo.jpg"), policy)
    assert fetched.content == jpeg and fetched.format == "jpg" and fetched.content_type == "image/jpeg"
    assert fetched.validators == Validators('"v1"', "Wed, 21 Oct 2026 07:28:00 GMT")
    assert fetched.address == ORIGIN_HOST and fetched.redirects == ()
    seen = origin.seen[0]
    assert seen.headers["accept-encoding"] == "identity" and "authorization" not in seen.headers


async def test_octet_stream_chunked_and_until_close_bodies(
    origin: LocalServer, policy: FetchPolicy, png: bytes
) -> None:
    origin.routes["/a"] = answer(200, png, "application/octet-stream")
    origin.routes["/b"] = chunked(png, "image/png; charset=binary", chunk=7)
    origin.routes["/c"] = until_close(png, "IMAGE/PNG")
    for path in ("/a", "/b", "/c"):
        fetched = await fetch(origin.url(path), policy)
        assert fetched.content == png and fetched.format == "png", path


async def test_the_name_is_resolved_once_and_the_connection_pinned(
    origin: LocalServer, victim: LocalServer, policy: FetchPolicy, jpeg: bytes
) -> None:
    """DNS rebinding: the second answer (127.0.0.1) is never asked for; the redirect back to the same
    name goes to the address checked first, and Host still carries the name."""
    port = origin.port
    answers = [[ORIGIN_HOST], ["127.0.0.1"]]

    async def rebinding(host: str, _: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in answers.pop(0)]

    origin.routes["/start"] = redirect(f"http://images.test:{port}/photo.jpg")
    origin.routes["/photo.jpg"] = answer(200, jpeg, "image/jpeg")
    victim.routes["/photo.jpg"] = answer(200, b"\xff\xd8\xffnot this one", "image/jpeg")
    fetched = await fetch(f"http://images.test:{port}/start", policy, resolver=rebinding)
    assert fetched.content == jpeg and fetched.address == ORIGIN_HOST
    assert fetched.redirects == (f"http://images.test:{port}/start",)
    assert len(answers) == 1 and victim.seen == []
    assert [s.headers["host"] for s in origin.seen] == [f"images.test:{port}"] * 2


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://127.0.0.1:{victim}/photo.jpg", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::1]:{victim}/photo.jpg", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]:{victim}/photo.jpg", "127.0.0.1 is a loopback address"),
        ("http://10.0.0.5/photo.jpg", "10.0.0.5 is a private address"),
        ("http://internal.test/photo.jpg", "192.168.0.10 is a private address"),
        ("http://localhost:{victim}/photo.jpg", "127.0.0.1 is a loopback address"),  # the real resolver
        ("http://0.0.0.0:{victim}/photo.jpg", "0.0.0.0 is an unspecified address"),
        # Legacy spellings of 127.0.0.1 that inet_aton (and so getaddrinfo) accepts.
        ("http://2130706433:{victim}/photo.jpg", "127.0.0.1 is a loopback address"),
        ("http://0x7f.1:{victim}/photo.jpg", "127.0.0.1 is a loopback address"),
    ],
)
async def test_redirects_to_non_public_addresses_are_refused(
    origin: LocalServer, victim: LocalServer, policy: FetchPolicy, target: str, reason: str
) -> None:
    victim.routes["/photo.jpg"] = answer(200, b"\xff\xd8\xff secret", "image/jpeg")
    origin.routes["/start"] = redirect(target.format(victim=victim.port))
    dns = FakeDns({"internal.test": ["192.168.0.10"]})
    with pytest.raises(ForbiddenUrl, match=f"is not allowed: {reason}") as refused:
        await fetch(origin.url("/start"), policy, resolver=dns)
    assert refused.value.code == "forbidden_url" and refused.value.status == 403
    assert victim.seen == []


async def test_a_name_that_resolves_to_a_private_address_is_refused_before_connecting(
    victim: LocalServer, policy: FetchPolicy
) -> None:
    victim.routes["/photo.jpg"] = answer(200, b"\xff\xd8\xff secret", "image/jpeg")
    cases: list[tuple[str, Resolver]] = [
        (f"http://localhost:{victim.port}/photo.jpg", resolve),
        (f"http://rebind.test:{victim.port}/photo.jpg", FakeDns({"rebind.test": ["8.8.8.8", "127.0.0.1"]})),
    ]
    for url, dns in cases:
        with pytest.raises(ForbiddenUrl, match="127.0.0.1 is a loopback address"):
            await fetch(url, policy, resolver=dns)
    assert victim.seen == []


async def test_allow_private_lets_loopback_through(
    victim: LocalServer, policy: FetchPolicy, png: bytes
) -> None:
    victim.routes["/p.png"] = answer(200, png, "image/png")
    fetched = await fetch(f"http://localhost:{victim.port}/p.png", replace(policy, allow_private=True))
    assert fetched.content == png and fetched.address == "127.0.0.1"


async def test_the_allow_list_is_checked_on_every_hop(
    origin: LocalServer, policy: FetchPolicy, png: bytes
) -> None:
    dns = FakeDns({"cdn.example.org": [ORIGIN_HOST], "other.test": [ORIGIN_HOST]})
    origin.routes["/p.png"] = answer(200, png, "image/png")
    origin.routes["/away"] = redirect(f"http://other.test:{origin.port}/p.png")
    only_cdn = replace(policy, allow=("*.example.org",))
    fetched = await fetch(f"http://cdn.example.org:{origin.port}/p.png", only_cdn, resolver=dns)
    assert fetched.content == png
    with pytest.raises(ForbiddenUrl, match="other.test is not allowed"):
        await fetch(f"http://cdn.example.org:{origin.port}/away", only_cdn, resolver=dns)
    with pytest.raises(ForbiddenUrl, match="turned off"):
        await fetch(origin.url("/p.png"), replace(policy, allow=()))
    assert "other.test" not in dns.asked  # refused by name, before any DNS question


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://{host}/p.png", "gopher://{host}/"])
async def test_redirects_to_other_schemes_are_refused(
    origin: LocalServer, policy: FetchPolicy, target: str
) -> None:
    origin.routes["/start"] = redirect(target.format(host=ORIGIN_HOST))
    with pytest.raises(ForbiddenUrl, match="Only http and https"):
        await fetch(origin.url("/start"), policy)


async def test_redirect_loops_and_more_than_three_redirects(
    origin: LocalServer, policy: FetchPolicy, png: bytes
) -> None:
    origin.routes["/a"] = redirect("/b")
    origin.routes["/b"] = redirect(origin.url("/a"), status=301)
    with pytest.raises(FailedDownload, match="Redirect loop") as looped:
        await fetch(origin.url("/a"), policy)
    assert looped.value.code == "failed_image_download"
    for n in range(1, 5):
        origin.routes[f"/r{n}"] = redirect(f"/r{n + 1}", status=307)
    origin.routes["/r5"] = answer(200, png, "image/png")
    fetched = await fetch(origin.url("/r2"), policy)  # three redirects: the limit
    assert fetched.content == png and len(fetched.redirects) == 3
    origin.seen.clear()
    with pytest.raises(FailedDownload, match="Too many redirects \\(more than 3\\)"):
        await fetch(origin.url("/r1"), policy)
    assert origin.paths() == ["/r1", "/r2", "/r3", "/r4"]  # the fifth URL is never asked for


@pytest.mark.parametrize("shape", ["content-length", "chunked", "until-close"])
async def test_bodies_over_the_limit_are_refused_while_streaming(
    origin: LocalServer, policy: FetchPolicy, jpeg: bytes, shape: str
) -> None:
    big = jpeg + b"\0" * (3 << 20)
    route = {
        "content-length": answer(200, big, "image/jpeg"),
        "chunked": chunked(big, "image/jpeg"),
        "until-close": until_close(big, "image/jpeg"),
    }[shape]
    origin.routes["/big.jpg"] = route
    with pytest.raises(FileTooLarge, match=f"download limit of {1 << 20} bytes") as refused:
        await fetch(origin.url("/big.jpg"), policy)
    assert refused.value.code == "file_too_large" and refused.value.status == 413
    if shape == "content-length":
        assert "declared" in str(refused.value)  # refused from the header, before the body


async def test_a_slow_loris_is_cut_at_the_total_timeout(
    origin: LocalServer, policy: FetchPolicy, jpeg: bytes
) -> None:
    """A byte every 0.1 s never trips a read timeout; the total one (2 s) ends it."""
    origin.routes["/slow.jpg"] = trickle(jpeg[:100], "image/jpeg")
    started = time.monotonic()
    with pytest.raises(DownloadTimeout, match="took longer than 2 s") as cut:
        await fetch(origin.url("/slow.jpg"), policy)
    assert 1.9 < time.monotonic() - started < 3.5
    assert cut.value.code == "download_timeout" and isinstance(cut.value, FailedDownload)


async def test_a_silent_server_times_out(origin: LocalServer, policy: FetchPolicy) -> None:
    origin.routes["/silent"] = stall(5)
    started = time.monotonic()
    with pytest.raises(DownloadTimeout):
        await fetch(origin.url("/silent"), replace(policy, timeout=1.0))
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("text/html", b"<html>hello</html>", "sent text/html, not an image"),
        (None, b"\xff\xd8\xff\xe0rest", "sent no Content-Type, not an image"),
        ("application/json", b"{}", "sent application/json"),
        (
            "image/jpeg",
            b"<html>not really a jpeg at all</html>",
            "not a JPEG, PNG, GIF, WebP, AVIF, HEIC or TIFF",
        ),
        ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "not a JPEG"),
        ("image/png", b"\x89PN", "not a JPEG"),  # shorter than the signatures
        ("image/png", b"", "empty body"),
    ],
)
async def test_wrong_types_and_magic_bytes_are_refused(
    origin: LocalServer, policy: FetchPolicy, content_type: str | None, body: bytes, message: str
) -> None:
    origin.routes["/x"] = answer(200, body, content_type)
    with pytest.raises(InvalidFileType, match=message) as refused:
        await fetch(origin.url("/x"), policy)
    assert refused.value.code == "invalid_file_type" and refused.value.status == 415


async def test_a_compressed_body_is_refused(origin: LocalServer, policy: FetchPolicy, png: bytes) -> None:
    origin.routes["/z"] = answer(200, png, "image/png", {"Content-Encoding": "gzip"})
    with pytest.raises(InvalidFileType, match="gzip-encoded"):
        await fetch(origin.url("/z"), policy)


async def test_error_statuses_and_unreachable_servers(origin: LocalServer, policy: FetchPolicy) -> None:
    with pytest.raises(FailedDownload, match="answered 404 Not Found") as missing:
        await fetch(origin.url("/nothing"), policy)
    assert missing.value.upstream_status == 404 and missing.value.status == 400
    closed = f"http://{ORIGIN_HOST}:1/p.png"
    with pytest.raises(FailedDownload, match="Could not download from 127.0.0.2: connection failed"):
        await fetch(closed, policy)

    async def nothing(host: str, port: int) -> list[IPAddress]:
        return []

    with pytest.raises(FailedDownload, match="has no address"):
        await fetch("http://void.test/p.png", policy, resolver=nothing)
    with pytest.raises(ForbiddenUrl, match="not a valid host name"):
        await fetch("http://[not-an-address/", policy)


async def test_revalidation_with_etag_and_last_modified(
    origin: LocalServer, policy: FetchPolicy, jpeg: bytes
) -> None:
    def conditional(handler: RecordingHandler) -> None:
        etag = handler.headers.get("If-None-Match")
        since = handler.headers.get("If-Modified-Since")
        if etag == '"v1"' or (etag is None and since == "Wed, 21 Oct 2026 07:28:00 GMT"):
            handler.send_response(304)
            handler.send_header("ETag", '"v1"')
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        answer(200, jpeg, "image/jpeg", {"ETag": '"v2"'})(handler)

    origin.routes["/photo.jpg"] = conditional
    url = origin.url("/photo.jpg")
    same = await revalidate(url, Validators(etag='"v1"'), policy)
    assert same == NotModified(url, Validators(etag='"v1"'))
    by_date = await revalidate(url, Validators(last_modified="Wed, 21 Oct 2026 07:28:00 GMT"), policy)
    assert isinstance(by_date, NotModified)
    changed = await revalidate(url, Validators(etag='"v0"'), policy)
    assert not isinstance(changed, NotModified)
    assert changed.content == jpeg and changed.validators.etag == '"v2"'
    assert origin.seen[0].headers["if-none-match"] == '"v1"'
    origin.routes["/plain"] = answer(304, b"", None)
    with pytest.raises(FailedDownload, match="answered 304"):  # a 304 nobody asked for is not an image
        await fetch(origin.url("/plain"), policy)


async def test_a_server_that_never_accepts_hits_the_connect_timeout(policy: FetchPolicy) -> None:
    """A listening socket whose backlog is full drops further SYNs: the connection never opens."""
    with socket.socket() as listener:
        listener.bind((ORIGIN_HOST, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex((ORIGIN_HOST, port))
        time.sleep(0.1)
        started = time.monotonic()
        try:
            with pytest.raises(DownloadTimeout, match=f"Could not connect to {ORIGIN_HOST} in time"):
                await fetch(f"http://{ORIGIN_HOST}:{port}/p.png", replace(policy, connect_timeout=0.3))
        finally:
            for filler in fillers:
                filler.close()
        assert time.monotonic() - started < 1.5  # the connect timeout, well before the total one (2 s)

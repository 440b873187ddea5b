"""Pinning keeps TLS honest: the connection goes to the checked address, while SNI and the certificate
check use the URL's name (a certificate for another name is refused, as without pinning)."""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cutout.fetch import FailedDownload, FetchPolicy, IPAddress, fetch
from tests.conftest import require
from tests.fetch.conftest import ORIGIN_HOST
from tests.fetch.servers import LocalServer, answer, serving

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    require(shutil.which("openssl") is not None, "openssl not installed (makes the test certificate)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=images.test",
         "-addext", "subjectAltName=DNS:images.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def https_origin(certificate: tuple[Path, Path]) -> Iterator[tuple[LocalServer, list[str | None]]]:
    names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,misc]
    with serving(ORIGIN_HOST, context) as server:
        yield server, names


async def to_origin(host: str, port: int) -> list[IPAddress]:
    return [ipaddress.ip_address(ORIGIN_HOST)]


async def test_https_keeps_the_name_for_sni_and_the_certificate(
    https_origin: tuple[LocalServer, list[str | None]],
    certificate: tuple[Path, Path],
    policy: FetchPolicy,
    png: bytes,
) -> None:
    server, names = https_origin
    server.routes["/p.png"] = answer(200, png, "image/png")
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    fetched = await fetch(
        f"https://images.test:{server.port}/p.png", policy, resolver=to_origin, verify=trust
    )
    assert fetched.content == png and fetched.address == ORIGIN_HOST
    assert names == ["images.test"] and server.seen[0].headers["host"] == f"images.test:{server.port}"
    # The same address under another name: the certificate does not match it, so nothing is fetched.
    with pytest.raises(FailedDownload, match="connection failed"):
        await fetch(f"https://other.test:{server.port}/p.png", policy, resolver=to_origin, verify=trust)
    assert len(server.seen) == 1

"""Originals and extensions in an image format Cloudinary knows and cutout cannot read or write (PSD,
PDF, SVG, camera raw ...): a 400 naming the format, not a 404 that says the file is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.helpers import SAMPLES, ClientFactory


@pytest.fixture
def originals(tmp_path: Path) -> Path:
    folder = tmp_path / "originals"
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "poster.psd").write_bytes(b"8BPS\x00\x01" + b"\x00" * 64)
    (folder / "photo.jpg").write_bytes((SAMPLES / "docs" / "road.jpg").read_bytes())
    (folder / "logo.SVG").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
    return folder


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "/image/upload/c_scale,w_100/docs/poster.jpg",
            "Unsupported original format .psd - docs/poster: cutout reads jpg, jpeg, png, webp, avif, gif, "
            "tif, tiff, heic, jxl, bmp originals",
        ),
        ("/image/upload/logo.png", "Unsupported original format .SVG - logo: cutout reads jpg,"),
        ("/image/upload/l_logo/fl_layer_apply/docs/poster.jpg", "Unsupported original format .psd"),
        # The extension is the format (Cloudinary's public ids have none): one it cannot deliver.
        ("/image/upload/photo.psd", "Invalid extension .psd: can deliver jpg, png, webp, avif, gif, tiff"),
        ("/image/upload/c_scale,w_10/photo.pdf", "Invalid extension .pdf: can deliver"),
        ("/image/upload/docs/poster.psd", "Unsupported original format .psd - docs/poster"),
    ],
)
def test_unreadable_formats_are_400s(
    make_client: ClientFactory, originals: Path, url: str, message: str
) -> None:
    response = make_client(originals=originals).get(url)
    assert response.status_code == 400, response.text
    assert response.text.startswith(message)
    assert response.headers["X-Cld-Error"].startswith(message)


def test_a_missing_original_is_still_a_404(make_client: ClientFactory, originals: Path) -> None:
    assert make_client(originals=originals).get("/image/upload/docs/absent.jpg").status_code == 404

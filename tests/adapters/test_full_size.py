"""An image over 6144 px comes back at its own size where the API and the vendors promise it ("full"):
the native API's default size, remove.bg's ``size=full``, Azure's foregroundMatting. The mask is made at
6144 (as Cloudinary's URLs scale such an image first) and laid on the whole photo
(``e_background_removal:fullsize_y``). Smaller sizes asked are made from the capped cut-out, as before."""

from __future__ import annotations

import pyvips
from starlette.testclient import TestClient

from tests.adapters.conftest import KEY

WIDE = (7000, 300)


def panorama() -> bytes:
    """A wide photo-like JPEG (noise, so it compresses as a photo does): 2.1 MP, 7000 px across."""
    width, height = WIDE
    noise = pyvips.Image.gaussnoise(width, height, sigma=40, mean=128).cast("uchar")
    return bytes(noise.bandjoin([noise, noise]).copy(interpretation="srgb").jpegsave_buffer(Q=80))


def size(data: bytes) -> tuple[int, int, int]:
    image = pyvips.Image.new_from_buffer(data, "")
    return image.width, image.height, image.bands


def test_the_native_api(client: TestClient) -> None:
    jpeg = {"Content-Type": "image/jpeg", "Authorization": f"Bearer {KEY}"}
    full = client.post("/v1/remove-background", content=panorama(), headers=jpeg)
    assert full.status_code == 200, full.text
    assert size(full.content) == (*WIDE, 4)
    small = client.post("/v1/remove-background", content=panorama(), headers=jpeg,
                        params={"size": "1400x1400"})  # fmt: skip
    assert size(small.content)[:2] == (1400, 60)


def test_removebg_full(client: TestClient) -> None:
    answer = client.post("/v1.0/removebg", headers={"X-Api-Key": KEY}, data={"size": "full"},
                         files={"image_file": ("wide.jpg", panorama())})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert (answer.headers["x-width"], answer.headers["x-height"]) == ("7000", "300")
    assert size(answer.content)[:2] == WIDE


def test_azure_foreground_matting(client: TestClient) -> None:
    answer = client.post("/computervision/imageanalysis:segment", content=panorama(),
                         params={"api-version": "2023-02-01-preview", "mode": "foregroundMatting"},
                         headers={"Ocp-Apim-Subscription-Key": KEY,
                                  "Content-Type": "application/octet-stream"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert size(answer.content) == (*WIDE, 1)  # "the same size as the original"

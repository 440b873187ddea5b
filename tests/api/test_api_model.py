"""The API with the real model, where the pixels matter: the mask is one band the size of the input, the
box lies inside the image and matches the mask, bg_color fills the background, and the same image twice
(by bytes, then as a data URI) costs one inference by /metrics."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import pyvips

from tests.app.helpers import SAMPLES, ClientFactory, metric

URL = "/v1/remove-background"
JPEG = {"Content-Type": "image/jpeg"}


class Counting:
    """The real segmenter, counting its runs: the process-wide inference metric also counts late jobs of
    earlier tests' stand-in segmenters, which made the metric check flaky in a full run."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.runs = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def segment(self, image: pyvips.Image, *, fine_edges: bool) -> object:
        self.runs += 1
        return self.inner.segment(image, fine_edges=fine_edges)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_real_model_mask_box_background_and_one_inference(make_api: ClientFactory, segmenter: object) -> None:
    counting = Counting(segmenter)
    client = make_api(segmenter=counting, api_wait_seconds=300)
    data = (SAMPLES / "docs" / "rmv_bgd" / "dog_couch_orig.jpg").read_bytes()
    source = pyvips.Image.new_from_buffer(data, "")
    before = metric(client, "cutout_inference_total")

    alpha = client.post(URL, content=data, headers=JPEG, params={"channels": "alpha"})
    assert alpha.status_code == 200, alpha.text
    mask = pyvips.Image.new_from_buffer(alpha.content, "")
    assert (mask.width, mask.height, mask.bands) == (source.width, source.height, 1)
    left, top, width, height = (
        int(alpha.headers[f"x-foreground-{k}"]) for k in ("left", "top", "width", "height")
    )
    assert 0 <= left and 0 <= top and left + width <= mask.width and top + height <= mask.height
    assert 0 < width * height < mask.width * mask.height
    rows, columns = (
        np.flatnonzero((mask.numpy() > 127).any(axis=1)),
        np.flatnonzero((mask.numpy() > 127).any(axis=0)),
    )
    assert (left, top) == (columns[0], rows[0])
    assert (width, height) == (columns[-1] - left + 1, rows[-1] - top + 1)
    assert 0 < float(alpha.headers["x-confidence"]) <= 1

    encoded = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    red = client.post(URL, json={"image_file_b64": encoded, "bg_color": "ff0000", "format": "png"})
    assert red.status_code == 200, red.text
    composite = pyvips.Image.new_from_buffer(red.content, "")
    assert composite.bands == 3
    # Where the mask says background, the composite is the colour asked for.
    corner = [int(v) for v in composite.getpoint(2, 2)]
    assert mask.getpoint(2, 2)[0] < 10 and corner[0] > 240 and corner[1] < 20 and corner[2] < 20
    # A background image under the cut-out, limited to the left half and with a shadow: the same mask.
    params = {"bg_public_id": "docs/bg_beach", "roi": "0 0 50% 100%", "shadow": "1", "format": "png"}
    beach = client.post(URL, content=data, headers=JPEG, params=params)
    assert beach.status_code == 200, beach.text
    placed = pyvips.Image.new_from_buffer(beach.content, "")
    assert (placed.width, placed.height, placed.bands) == (source.width, source.height, 3)
    assert int(beach.headers["x-foreground-left"]) + int(beach.headers["x-foreground-width"]) <= round(
        source.width / 2
    )
    background = pyvips.Image.new_from_file(str(SAMPLES / "docs" / "bg_beach.jpg"))
    cover = max(source.width / background.width, source.height / background.height)
    fitted = background.resize(cover).crop(0, 0, source.width, source.height)  # the same spot, roughly
    right = placed.crop(source.width * 3 // 4, 0, source.width // 4, source.height).numpy().mean()
    assert (
        abs(right - fitted.crop(fitted.width * 3 // 4, 0, fitted.width // 4, source.height).numpy().mean())
        < 40
    )
    assert counting.runs == 1
    assert metric(client, "cutout_inference_total") - before >= 1

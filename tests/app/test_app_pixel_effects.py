"""The colour, detail and keying effects over HTTP: a URL renders them, and a value out of range is a 400
whose X-Cld-Error names the parameter and the accepted range."""

from __future__ import annotations

from typing import Any

import pyvips


def _decoded(content: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(content, "")


def test_effects_render_from_the_url(client: Any) -> None:
    plain = _decoded(client.get("/demo/image/upload/docs/road.png").content)
    vignette = client.get("/demo/image/upload/e_vignette:60/docs/road.png")
    assert vignette.status_code == 200, vignette.headers.get("x-cld-error")
    image = _decoded(vignette.content)
    assert (image.width, image.height) == (plain.width, plain.height)
    assert sum(image.getpoint(0, 0)) < sum(plain.getpoint(0, 0)) / 4  # the corner darkened
    centre = (plain.width // 2, plain.height // 2)
    assert image.getpoint(*centre) == plain.getpoint(*centre)

    keyed = client.get("/demo/image/upload/c_scale,w_200/co_white,e_make_transparent:20/docs/road")
    assert keyed.status_code == 200 and keyed.headers["content-type"] == "image/png"  # transparent now
    assert _decoded(keyed.content).bands == 4
    chained = "e_blackwhite:30/e_pixelate:8/e_replace_color:red:40:white/e_opacity_threshold/e_hue:-20"
    assert client.get(f"/demo/image/upload/{chained}/docs/road.jpg").status_code == 200


def test_out_of_range_values_are_a_400_naming_the_range(client: Any) -> None:
    for value, expected in [
        ("e_gamma:151", "e_gamma:151: gamma level must be an integer from -50 to 150"),
        ("e_pixelate:0", "e_pixelate:0: pixel square size must be an integer from 1 to 200"),
        ("e_replace_color:red:50:nocolour", "; nocolour is not supported"),
        ("e_unsharp_mask:3000", "unsharp_mask strength must be an integer from 1 to 2000"),
    ]:
        answer = client.get(f"/demo/image/upload/{value}/docs/road.jpg")
        assert answer.status_code == 400, value
        assert expected in answer.headers["x-cld-error"], answer.headers["x-cld-error"]

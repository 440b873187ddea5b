"""Blending a layer and blurred padding, end to end over HTTP: each URL its own derivative (cached apart
from the plain layer or pad), and a blend mode without a layer a 400 naming it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyvips

ROAD = "docs/road.jpg"


def _pixels(content: bytes) -> np.ndarray:
    image = pyvips.Image.new_from_buffer(content, "")
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                      shape=(image.height, image.width, image.bands)).astype(int)  # fmt: skip


def _get(client: Any, chain: str) -> np.ndarray:
    answer = client.get(f"/image/upload/{chain}/f_png/{ROAD}")
    assert answer.status_code == 200, answer.headers.get("x-cld-error")
    return _pixels(answer.content)


def test_a_multiplied_layer_darkens_both_and_is_its_own_derivative(client: Any) -> None:
    base = _get(client, "c_scale,w_200")
    over = _get(client, "c_scale,w_200/l_docs:bg_beach,w_100/fl_layer_apply")
    multiplied = _get(client, "c_scale,w_200/l_docs:bg_beach,w_100/fl_layer_apply,e_multiply")
    assert base.shape == over.shape == multiplied.shape
    box = (slice(base.shape[0] // 2 - 10, base.shape[0] // 2 + 10), slice(90, 110))  # under the layer
    assert (multiplied[box] <= np.minimum(base[box], over[box]) + 1).all()
    assert (multiplied[box] < over[box] - 1).any()  # not the plain layer served from the cache
    assert np.array_equal(multiplied[:5], base[:5])  # above the layer: the image as it was
    # Asked again: the same bytes (the cached derivative), still not the plain layer's.
    assert np.array_equal(_get(client, "c_scale,w_200/l_docs:bg_beach,w_100/fl_layer_apply,e_multiply"),
                          multiplied)  # fmt: skip


def test_cut_out_and_blurred_pad_over_http(client: Any) -> None:
    cut = _get(client, "c_scale,w_200/l_text:Arial_40_bold:CUT/fl_layer_apply,e_cut_out")
    assert cut.shape[2] == 4 and cut[..., 3].min() == 0 and cut[0, 0, 3] == 255
    padded = _get(client, "b_blurred:400:15,c_pad,h_480,w_480")
    black = _get(client, "b_black,c_pad,h_480,w_480")
    assert padded.shape == black.shape == (480, 480, 3)
    assert (black[5, 5] == 0).all() and padded[5, 5].sum() > 30  # the pad: the image, blurred


def test_a_blend_mode_without_a_layer_is_a_400_naming_it(client: Any) -> None:
    for path, named in (
        (f"/image/upload/e_multiply/{ROAD}", "e_multiply"),
        (f"/image/upload/l_docs:bg_beach/fl_layer_apply,e_grayscale/{ROAD}", "e_grayscale"),
        (f"/image/upload/b_blurred:3000,c_pad,h_100,w_100/{ROAD}", "b_blurred:3000"),
    ):
        answer = client.get(path)
        assert answer.status_code == 400, path
        assert named in answer.headers["x-cld-error"], answer.headers["x-cld-error"]

"""Conditions and variables over HTTP: URLs as Cloudinary's SDK writes them, the result's size and pixels,
cache keys, signed URLs and strict mode, and conditions on an asset's tags and context (Upload API)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvips
from cloudinary.utils import cloudinary_url
from starlette.testclient import TestClient

from cutout.resolve import MEMO_SECONDS
from grammar import parse_path
from tests.app.helpers import SAMPLES, ClientFactory, EllipseSegmenter, wait_for_200

KEY, SECRET = "key-1", "secret-1"


def sdk(public_id: str, **options: Any) -> str:
    url, _ = cloudinary_url(public_id, cloud_name="demo", secure=False, cname="testserver", **options)
    return str(url).removeprefix("http://testserver")


def size(response: Any) -> tuple[int, int]:
    assert response.status_code == 200, response.headers.get("x-cld-error")
    image = pyvips.Image.new_from_buffer(response.content, "")
    return image.width, image.height


def grey(response: Any) -> bool:
    pixels = np.asarray(pyvips.Image.new_from_buffer(response.content, "").numpy(), dtype=np.int16)
    return pixels.ndim == 2 or int(np.abs(pixels[..., 0] - pixels[..., 2]).max()) <= 3


def key_of(client: TestClient, path: str) -> str:
    return str(client.app.state.service.resolver.prepare(parse_path(path), accept=None).key)  # type: ignore[attr-defined]


def test_sdk_urls_with_conditions_and_variables(client: TestClient) -> None:
    """docs/road is 640x427."""
    cases = [
        ({"transformation": [{"if": "width > 500"}, {"width": 500, "crop": "scale"}, {"if": "end"}]},
         "if_w_gt_500/c_scale,w_500/if_end", (500, 334)),
        ({"transformation": [{"if": "width > 1000"}, {"width": 500, "crop": "scale"}, {"if": "end"}]},
         "if_w_gt_1000/c_scale,w_500/if_end", (640, 427)),
        ({"transformation": [{"if": "aspect_ratio < 1.0"}, {"width": 100, "height": 100, "crop": "fill"},
                             {"if": "else"}, {"width": 200, "height": 100, "crop": "fill"}, {"if": "end"}]},
         "if_ar_lt_1.0/c_fill,h_100,w_100/if_else/c_fill,h_100,w_200/if_end", (200, 100)),
        ({"if": "initial_width >= 640 && initial_height < 500", "width": 64, "crop": "scale"},
         "if_iw_gte_640_and_ih_lt_500,c_scale,w_64", (64, 43)),
        ({"transformation": [{"variables": [["$small", 150], ["$big", "2 * $small"]]},
                             {"width": "$big", "height": "$small", "crop": "fill"}]},
         "$small_150,$big_2_mul_$small/c_fill,h_$small,w_$big", (300, 150)),
        ({"transformation": [{"$w": "initial_width / 4"}, {"width": "$w", "crop": "scale"}]},
         "$w_iw_div_4/c_scale,w_$w", (160, 107)),
    ]  # fmt: skip
    for options, transformation, expected in cases:
        url = sdk("docs/road", **options)
        assert url == f"/demo/image/upload/{transformation}/v1/docs/road", url
        assert size(client.get(url)) == expected, url


def test_sdk_text_layers_with_variables(client: TestClient) -> None:
    name = sdk("docs/road", transformation=[
        {"variables": [["$name", "!Jane!"]]},
        {"overlay": {"font_family": "Arial", "font_size": 40, "text": "Hello $(name)"}},
        {"flags": "layer_apply"},
    ])  # fmt: skip
    upload = "/demo/image/upload"
    assert name == f"{upload}/$name_!Jane!/l_text:Arial_40:Hello%20$(name)/fl_layer_apply/v1/docs/road"
    written = client.get(f"{upload}/l_text:Arial_40:Hello%20Jane/fl_layer_apply/v1/docs/road")
    assert client.get(name).content == written.content
    style = sdk("docs/road", transformation=[
        {"$style": "!Arial_12!"}, {"overlay": {"text": "hello-world", "text_style": "$style"}},
        {"flags": "layer_apply"},
    ])  # fmt: skip
    assert style == f"{upload}/$style_!Arial_12!/l_text:$style:hello-world/fl_layer_apply/v1/docs/road"
    written = client.get(f"{upload}/l_text:Arial_12:hello-world/fl_layer_apply/v1/docs/road")
    assert client.get(style).content == written.content


def test_a_condition_on_the_current_image_and_one_on_the_original(client: TestClient) -> None:
    scaled = "/image/upload/c_scale,w_300/if_{}_lt_500/e_grayscale/if_end/docs/road.jpg"
    assert grey(client.get(scaled.format("w")))  # 300 now
    assert not grey(client.get(scaled.format("iw")))  # 640 at first


def test_background_removal_in_a_branch(client: TestClient, stub: EllipseSegmenter) -> None:
    """A plan with background removal in a branch is made as one (423 until done), whichever branch its
    image takes; the model runs only for the images that take it."""
    taken = wait_for_200(client, "/image/upload/if_iw_gt_500/e_background_removal/if_end/f_png/docs/road")
    assert taken.status_code == 200 and pyvips.Image.new_from_buffer(taken.content, "").bands == 4
    assert stub.calls == 1
    other = wait_for_200(client, "/image/upload/if_iw_gt_5000/e_background_removal/if_end/f_png/docs/road")
    assert other.status_code == 200 and pyvips.Image.new_from_buffer(other.content, "").bands == 3
    assert stub.calls == 1


def test_cache_keys(client: TestClient) -> None:
    same = key_of(client, "/image/upload/if_w_gt_500/c_scale,w_500/if_end/docs/road.jpg")
    assert same == key_of(client, "/image/upload/if_w_gt_500/w_500,c_scale/if_end/docs/road.jpg")
    assert same != key_of(client, "/image/upload/if_w_gt_501/c_scale,w_500/if_end/docs/road.jpg")
    assert same != key_of(client, "/image/upload/c_scale,w_500/docs/road.jpg")
    # What the URL decides is folded: the plain transformation's entry.
    assert key_of(client, "/image/upload/$w_500/c_scale,w_$w/docs/road.jpg") == key_of(
        client, "/image/upload/c_scale,w_500/docs/road.jpg"
    )
    served = client.get("/image/upload/if_w_gt_500/c_scale,w_500/if_end/docs/road.jpg")
    again = client.get("/image/upload/if_w_gt_500/c_scale,w_500/if_end/docs/road.jpg")
    assert served.content == again.content and served.headers["etag"] == again.headers["etag"]


def test_bad_input_is_a_400_naming_it(client: TestClient) -> None:
    cases = {
        "if_w_gt_500/c_scale,w_500": "Invalid transformation: if_ without its if_end (every if_ block is "
                                     "closed by if_end)",
        "c_scale,w_500/if_end": "Invalid transformation: if_end without an if_ before it",
        "if_wd_gt_5/e_grayscale/if_end": "Invalid transformation parameter - if_wd_gt_5: unknown name 'wd' "
                                         "(names are w, h, ar, iw, ih, iar, fc, pc, tags, ctx:!key!, or a "
                                         "$variable)",
        "c_scale,w_$w": "Invalid transformation parameter - w_$w: $w is not defined (set it earlier in the "
                        "chain: $w_<value>)",
        # known only once the original is read: still a 400 naming it, with the value it had
        "c_scale,w_iw_sub_700": "Invalid transformation parameter - w_iw_sub_700 (= -60 here): width must "
                                "be a positive integer up to 16384 (pixels) or a decimal fraction up to "
                                "100.0",
        "$d_ih_sub_427/c_scale,w_iw_div_$d": "Invalid transformation parameter - w_iw_div_$d: division by "
                                            "zero (_div_ 0)",
    }  # fmt: skip
    for transformation, message in cases.items():
        response = client.get(f"/image/upload/{transformation}/docs/road.jpg")
        assert response.status_code == 400, transformation
        assert response.headers["x-cld-error"] == message.replace("%", "%25")
        assert response.text == message + "\n"


def test_signed_urls_and_strict_mode(make_client: ClientFactory) -> None:
    client = make_client(strict=True, api_secret="abcd", allowed_transformations=("c_scale,w_50",))
    options = {"transformation": [{"if": "width > 500"}, {"width": 100, "crop": "scale"}, {"if": "end"}]}
    signed = sdk("docs/road", sign_url=True, api_secret="abcd", **options)
    assert signed.startswith("/demo/image/upload/s--") and "if_w_gt_500" in signed
    assert size(client.get(signed)) == (100, 67)
    unsigned = sdk("docs/road", **options)
    refused = client.get(unsigned)
    assert refused.status_code == 401
    assert refused.headers["x-cld-error"] == "Transformation if_w_gt_500/c_scale,w_100/if_end is not allowed"
    forged = signed.replace("if_w_gt_500", "if_w_gt_100")
    assert client.get(forged).status_code == 401
    # Variables the URL decides fold to the allowed transformation.
    assert size(client.get("/demo/image/upload/$w_50/c_scale,w_$w/docs/road")) == (50, 33)
    assert client.get("/demo/image/upload/$w_51/c_scale,w_$w/docs/road").status_code == 401


def test_a_named_transformation_with_the_urls_variables(make_client: ClientFactory, tmp_path: Path) -> None:
    from cutout.settings import load_settings

    named = tmp_path / "named.toml"
    named.write_text('passport = "c_fill,h_$size,w_$size"\n')
    loaded = load_settings({"CUTOUT_NAMED_TRANSFORMATIONS": str(named)})  # checked at start-up, unbound
    client = make_client(named=loaded.named)
    assert size(client.get("/image/upload/$size_80/t_passport/docs/road.jpg")) == (80, 80)
    missing = client.get("/image/upload/t_passport/docs/road.jpg")
    assert missing.status_code == 400 and "$size is not defined" in missing.text


@pytest.fixture
def uploads(make_client: ClientFactory, tmp_path: Path) -> TestClient:
    originals = tmp_path / "originals"
    shutil.copytree(SAMPLES, originals)
    return make_client(originals=originals, upload=True, api_key=KEY, api_secret=SECRET)


def _upload(client: TestClient, public_id: str, **fields: str) -> dict[str, Any]:
    road = (SAMPLES / "docs" / "road.jpg").read_bytes()
    answer = client.post("/v1_1/demo/image/upload", data={"public_id": public_id, **fields},
                         auth=(KEY, SECRET), files={"file": ("road.jpg", road)})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_conditions_on_tags_and_context(uploads: TestClient) -> None:
    up = _upload(uploads, "shop/shoe", tags="sale,new", context="kind=shoes|price=120")
    _upload(uploads, "shop/hat", context="kind=hats")
    sale = "/image/upload/c_scale,w_80/if_!sale!_in_tags/e_grayscale/if_end/shop/{}.jpg"
    assert grey(uploads.get(sale.format("shoe"))) and not grey(uploads.get(sale.format("hat")))
    both = "/image/upload/c_scale,w_80/if_!sale:new!_in_tags,e_grayscale/shop/{}.jpg"
    assert grey(uploads.get(both.format("shoe")))
    kind = "/image/upload/c_scale,w_80/if_ctx:!kind!_eq_!shoes!/e_grayscale/if_end/shop/{}.jpg"
    assert grey(uploads.get(kind.format("shoe"))) and not grey(uploads.get(kind.format("hat")))
    price = "/image/upload/$p_ctx:!price!_to_f/c_scale,w_$p/shop/shoe.jpg"
    assert size(uploads.get(price))[0] == 120
    # A file put in the folder by hand has no record: no tags.
    assert not grey(uploads.get(sale.replace("shop/{}", "docs/road")))
    # Not immutable even with its version: retagging changes the image under the same URL.
    versioned = sale.format("shoe").replace("/shop/", f"/v{up['version']}/shop/")
    first = uploads.get(versioned)
    assert grey(first) and "immutable" not in first.headers["cache-control"]
    before = key_of(uploads, versioned)
    command = {"command": "remove", "tag": "sale", "public_ids[]": "shop/shoe"}
    removed = uploads.post("/v1_1/demo/image/tags", auth=(KEY, SECRET), data=command)
    assert removed.status_code == 200, removed.text
    time.sleep(MEMO_SECONDS + 0.1)  # how long the resolver trusts a preparation
    assert key_of(uploads, versioned) != before
    assert not grey(uploads.get(versioned))

"""Transformation components whose structural characters a client, proxy or CDN percent-encoded
(``%24w_300``, ``ar_16%3A9``, ``if_%21sale%21_in_tags``, ``c_scale%2Cw_300``) mean what the decoded ones
mean: the same image, one cached derivative, the signature the SDK made still good."""

from __future__ import annotations

from typing import Any

import pytest
import pyvips
from cloudinary.utils import cloudinary_url

from tests.app.helpers import ClientFactory, metric

U = "/demo/image/upload"
PAIRS = [
    (f"{U}/%24w_300/c_scale,w_%24w/docs/road.jpg", f"{U}/$w_300/c_scale,w_$w/docs/road.jpg"),
    (f"{U}/ar_16%3A9,c_fill,w_160/docs/road.jpg", f"{U}/ar_16:9,c_fill,w_160/docs/road.jpg"),
    (f"{U}/if_%21sale%21_in_tags,w_10/docs/road.jpg", f"{U}/if_!sale!_in_tags,w_10/docs/road.jpg"),
    (f"{U}/c_scale%2Cw_120/docs/road.jpg", f"{U}/c_scale,w_120/docs/road.jpg"),
]


@pytest.mark.parametrize(("encoded", "plain"), PAIRS)
def test_an_encoded_component_delivers_what_the_decoded_one_does(
    client: Any, encoded: str, plain: str
) -> None:
    first = client.get(plain)
    assert first.status_code == 200, first.headers.get("x-cld-error")
    hits = metric(client, "cutout_cache_hits_total")
    second = client.get(encoded)
    assert second.status_code == 200, second.headers.get("x-cld-error")
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    assert metric(client, "cutout_cache_hits_total") == hits + 1  # one derivative for both spellings
    again = client.get(encoded)  # the memoised (fast) path answers the encoded URL the same
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]


def test_the_qa_url_is_a_300_pixel_image(client: Any) -> None:
    answer = client.get("/image/upload/%24w_300/c_scale,w_%24w/docs/road.jpg")
    assert answer.status_code == 200, answer.headers.get("x-cld-error")
    assert pyvips.Image.new_from_buffer(answer.content, "").width == 300


def test_a_text_layers_own_escaping_is_unchanged(client: Any) -> None:
    """%2C and %252C are a comma in the text, and %24 a dollar, however the rest is encoded; the SDK's URL
    renders as before."""
    url, _ = cloudinary_url("docs/road", cloud_name="demo", overlay={"font_family": "Arial", "font_size": 30,
                            "text": "a,b $5!"}, secure=False, cname="t")  # fmt: skip
    path = str(url).removeprefix("http://t")
    assert "%252C" in path and "%24" in path
    sdk = client.get(path)
    assert sdk.status_code == 200, sdk.headers.get("x-cld-error")
    single = client.get(path.replace("%252C", "%2C").replace("l_text:", "co_black%2Cl_text:"))
    assert single.status_code == 200, single.headers.get("x-cld-error")
    assert single.content == client.get(path.replace("l_text:", "co_black,l_text:")).content


def test_a_signed_url_verifies_when_a_proxy_encodes_it(make_client: ClientFactory) -> None:
    client = make_client(strict=True, api_secret="abcd")
    url, _ = cloudinary_url("docs/road", cloud_name="demo", raw_transformation="$w_90/c_scale,w_$w",
                            sign_url=True, api_secret="abcd", secure=False, cname="t")  # fmt: skip
    path = str(url).removeprefix("http://t")
    assert "/s--" in path and "$w_90" in path
    assert client.get(path).status_code == 200
    encoded = client.get(path.replace("$", "%24"))
    assert encoded.status_code == 200, encoded.headers.get("x-cld-error")
    assert client.get(path.replace("$w_90", "%24w_91")).status_code == 401

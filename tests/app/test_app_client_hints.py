"""w_auto and dpr_auto through the real server: Client Hints choose the size, the cache keeps one entry per
size chosen, and the answer says what it varied on (transform/hints.py has the rules and their sources)."""

from __future__ import annotations

from typing import Any

import pytest
import pyvips
from cloudinary.utils import cloudinary_url

from cutout.settings import SettingsError
from grammar import parse_path
from transform.hints import Hints

HINT_HEADERS = ("Sec-CH-DPR", "DPR", "Sec-CH-Width", "Width", "Sec-CH-Viewport-Width", "Viewport-Width")


def width_of(content: bytes) -> int:
    return int(pyvips.Image.new_from_buffer(content, "").width)


def test_dpr_hints_choose_the_pixel_size_and_each_is_its_own_cache_entry(client: Any) -> None:
    url = "/demo/image/upload/c_scale,w_100/dpr_auto/docs/road.jpg"
    one = client.get(url, headers={"Sec-CH-DPR": "1"})
    two = client.get(url, headers={"Sec-CH-DPR": "2"})
    odd = client.get(url, headers={"Sec-CH-DPR": "2.625"})  # rounded up: 3
    legacy = client.get(url, headers={"DPR": "2"})  # the name before Sec-CH-
    assert [r.status_code for r in (one, two, odd, legacy)] == [200] * 4
    assert [width_of(r.content) for r in (one, two, odd, legacy)] == [100, 200, 300, 200]
    assert len({one.headers["etag"], two.headers["etag"], odd.headers["etag"]}) == 3
    assert legacy.headers["etag"] == two.headers["etag"]  # the same size: the same entry
    # The same as writing the ratio.
    written = client.get("/demo/image/upload/c_scale,w_100/dpr_2.0/docs/road.jpg")
    assert written.content == two.content
    assert one.headers["vary"] == "Sec-CH-DPR, DPR"
    assert "Sec-CH-DPR" in one.headers["accept-ch"] and "Sec-CH-Width" in one.headers["accept-ch"]
    assert "critical-ch" not in one.headers


def test_no_hints_get_the_documented_fallbacks(client: Any) -> None:
    # dpr_auto: 1.0; w_auto:<step>:<fallback>: the fallback rounded up to the step (387 -> 400);
    # w_auto alone: the width as it is (road.jpg is 640 wide), which a c_limit after it caps.
    plain = client.get("/demo/image/upload/c_scale,w_100/dpr_auto/docs/road.jpg")
    assert width_of(plain.content) == 100
    fallback = client.get("/demo/image/upload/c_scale,w_auto:100:387/docs/road.jpg")
    assert width_of(fallback.content) == 400
    original = width_of(client.get("/demo/image/upload/docs/road.jpg").content)
    unsized = client.get("/demo/image/upload/c_limit,w_auto/docs/road.jpg")
    assert width_of(unsized.content) == original
    capped = client.get("/demo/image/upload/dpr_auto,w_auto/c_limit,w_300/docs/road.jpg")
    assert width_of(capped.content) == 300
    assert fallback.headers["vary"] == ", ".join(HINT_HEADERS)


def test_width_hints_are_device_pixels_rounded_up_to_the_step(client: Any) -> None:
    url = "/demo/image/upload/c_scale,w_auto:100:400/docs/road.jpg"
    assert width_of(client.get(url, headers={"Sec-CH-Width": "250"}).content) == 300
    assert width_of(client.get(url, headers={"Width": "250"}).content) == 300
    # The viewport is in CSS pixels: 150 at DPR 2 is 300 device pixels.
    viewport = client.get(url, headers={"Sec-CH-Viewport-Width": "150", "Sec-CH-DPR": "2"})
    assert width_of(viewport.content) == 300
    # With dpr_auto the width hint is not multiplied twice: 330 CSS px, rounded to 400, times 2.
    both = "/demo/image/upload/c_scale,w_auto,dpr_auto/docs/road.jpg"
    answer = client.get(both, headers={"Sec-CH-Width": "660", "Sec-CH-DPR": "2"})
    assert answer.status_code == 200 and width_of(answer.content) == 800
    assert answer.headers["vary"] == ", ".join(HINT_HEADERS)


def test_f_auto_and_hints_vary_together(client: Any) -> None:
    url = "/demo/image/upload/c_scale,w_100/dpr_auto/f_auto/docs/road.jpg"
    answer = client.get(url, headers={"Accept": "image/webp,*/*", "Sec-CH-DPR": "2"})
    assert answer.headers["content-type"] == "image/webp" and width_of(answer.content) == 200
    assert answer.headers["vary"] == "Accept, Sec-CH-DPR, DPR"


def test_hostile_hints_are_bounded_not_errors(client: Any) -> None:
    url = "/demo/image/upload/c_limit,w_auto:100/dpr_auto/docs/road.jpg"
    widths, etags = set(), set()
    for dpr, width in (("1e9", "10000000"), ("1000000000", "99999999999"), ("NaN", "-5"), ("abc", "0"),
                       ("4", "8192"), ("inf", "1" * 40)):
        answer = client.get(url, headers={"Sec-CH-DPR": dpr, "Sec-CH-Width": width})
        assert answer.status_code == 200, (dpr, width, answer.text)
        widths.add(width_of(answer.content))
        etags.add(answer.headers["etag"])
    # A DPR counts as 4 at most, and c_limit never enlarges: the original's width at most, times 4.
    assert max(widths) <= 4 * 640
    assert len(etags) <= 2  # the huge ones are one image (DPR 4, the original's width), unusable ones another


def test_hints_do_not_change_urls_without_auto(client: Any) -> None:
    url = "/demo/image/upload/c_scale,w_120/docs/road.jpg"
    plain = client.get(url)
    hinted = client.get(url, headers={"Sec-CH-DPR": "3", "Sec-CH-Width": "900"})
    assert width_of(hinted.content) == 120 and hinted.headers["etag"] == plain.headers["etag"]
    assert "vary" not in hinted.headers and "accept-ch" not in hinted.headers


def test_fast_path_answers_hinted_repeats_per_device(client: Any) -> None:
    url = "/demo/image/upload/c_scale,w_100/dpr_auto/docs/road.jpg"
    service = client.app.state.service
    for dpr, width in (("1", 100), ("2", 200), ("1", 100), ("2", 200), ("3", 300)):
        answer = client.get(url, headers={"Sec-CH-DPR": dpr})
        assert width_of(answer.content) == width
    assert service.hot(url, None) is None  # without hints: not what was memoised for DPR 2
    repeat = client.get(url, headers={"Sec-CH-DPR": "2"})
    assert repeat.headers["vary"] == "Sec-CH-DPR, DPR" and "accept-ch" in repeat.headers


def test_bad_auto_forms_are_400(client: Any) -> None:
    for url, said in (
        ("/demo/image/upload/c_scale,w_auto:breakpoints/docs/road.jpg", "w_auto:breakpoints"),
        ("/demo/image/upload/c_scale,w_auto:0:400/docs/road.jpg", "rounding step"),
        ("/demo/image/upload/c_scale,w_auto:100:abc/docs/road.jpg", "rounding step"),
        ("/demo/image/upload/c_scale,w_auto:1:2:3/docs/road.jpg", "w_auto:<rounding step>"),
    ):
        answer = client.get(url, headers={"Sec-CH-Width": "500"})
        assert answer.status_code == 400 and said in answer.headers["x-cld-error"], url


def test_named_transformations_do_not_resolve_auto(make_client: Any) -> None:
    """Cloudinary: f_auto, dpr_auto and w_auto do not work inside named transformations: said at start."""
    with pytest.raises(SettingsError, match="t_responsive .* not in a named transformation"):
        make_client(named={"responsive": "c_scale,w_auto"})


def test_signed_and_strict_judge_the_url_as_written(make_client: Any) -> None:
    secret = "abcd"
    client = make_client(strict=True, api_secret=secret, allowed_transformations=("c_scale,w_400",))
    signed, _ = cloudinary_url("docs/road.jpg", transformation=[{"crop": "scale", "width": "auto:100:400"},
                                                              {"dpr": "auto"}],
                               sign_url=True, api_secret=secret, cloud_name="demo", api_key="k")
    path = "/" + signed.split("://", 1)[1].split("/", 1)[1]
    for dpr in ("1", "2"):
        answer = client.get(path, headers={"Sec-CH-DPR": dpr, "Sec-CH-Width": "800"})
        assert answer.status_code == 200, answer.text
    # An allowed c_scale,w_400 (what w_auto:100:400 is without hints) does not allow the auto URL.
    unsigned = client.get("/demo/image/upload/c_scale,w_auto:100:400/docs/road.jpg")
    assert unsigned.status_code == 401
    assert client.get("/demo/image/upload/c_scale,w_400/docs/road.jpg").status_code == 200


def test_a_queued_job_prepares_the_size_the_hints_chose(client: Any) -> None:
    """A worker prepares the job's request again without the client's headers (cutout/worker.py): the
    request carries the settled transformation, which compiles to the same key."""
    resolver = client.app.state.service.resolver
    url = "/demo/image/upload/c_scale,w_auto,dpr_auto/docs/road.jpg"
    hinted = resolver.resolve(url, None, hints=Hints(dpr=2.0, width=660))
    assert hinted.request[0] == "/image/upload/c_scale,w_400,dpr_2.0/docs/road.jpg"
    again = resolver.prepare(parse_path(hinted.request[0]), accept=None, signed_ok=True)
    assert again.key == hinted.key and again.key != resolver.resolve(url, None).key
    assert hinted.hinted == HINT_HEADERS and again.hinted == ()


def test_every_error_answer_of_a_hinted_url_varies_on_the_hints(make_client: Any) -> None:
    """A width hint can push a render past CUTOUT_MAX_PIXELS: that refusal (cacheable for a minute) must
    not be handed by a shared cache to a narrower device, nor the narrow device's 200 to a wide one."""
    client = make_client(max_pixels=2_000_000)
    url = "/demo/image/upload/c_pad,w_auto,h_1500/docs/road.jpg"
    narrow = client.get(url, headers={"Sec-CH-Width": "300"})
    wide = client.get(url, headers={"Sec-CH-Width": "4000"})
    assert narrow.status_code == 200 and wide.status_code == 413, wide.text
    assert narrow.headers["vary"] == wide.headers["vary"] == ", ".join(HINT_HEADERS)
    assert "Sec-CH-Width" in wide.headers["accept-ch"]
    # A bad form, and the first request of a cut-out (a 423 while it is made), say so too.
    bad = client.get("/demo/image/upload/c_scale,w_auto:0/docs/road.jpg")
    queued = client.get("/demo/image/upload/e_background_removal/c_scale,w_auto/docs/road.png",
                        headers={"Sec-CH-Width": "200"})  # fmt: skip
    assert (bad.status_code, queued.status_code) == (400, 423)
    assert bad.headers["vary"] == queued.headers["vary"] == ", ".join(HINT_HEADERS)
    assert "accept-ch" in queued.headers
    # Errors of URLs without w_auto or dpr_auto do not vary on hints.
    plain = client.get("/demo/image/upload/c_scale,w_0/docs/road.jpg", headers={"Sec-CH-Width": "200"})
    assert plain.status_code == 400 and "vary" not in plain.headers and "accept-ch" not in plain.headers


def test_repeated_hint_headers_get_one_answer_on_either_path(client: Any) -> None:
    """The first of repeated headers counts on the fast path as in the app (Starlette's headers.get):
    which path serves a request must not change the size it gets."""
    url = "/demo/image/upload/c_scale,w_auto:10/docs/road.jpg"  # (small: kept in memory, hot)
    for _ in range(3):
        client.get(url, headers={"Sec-CH-Width": "60"})
    service = client.app.state.service
    assert service.hot(url, "*/*", Hints(width=60)) is not None  # the fast path could answer 60
    twice = [("Sec-CH-Width", "30"), ("Sec-CH-Width", "60")]
    assert [width_of(client.get(url, headers=twice).content) for _ in range(3)] == [30] * 3
    # Accept too: f_auto's first Accept decides, hot or not (WebP is hot, but listed second).
    auto = "/demo/image/upload/c_scale,w_50,f_auto/docs/road.jpg"
    for _ in range(3):
        client.get(auto, headers={"Accept": "image/webp"})
    assert service.hot(auto, "image/webp") is not None
    accepts = [("Accept", "image/png"), ("Accept", "image/webp")]
    types = {client.get(auto, headers=accepts).headers["content-type"] for _ in range(3)}
    assert len(types) == 1 and "image/webp" not in types

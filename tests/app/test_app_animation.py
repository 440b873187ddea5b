"""Animated originals over HTTP: frames kept in GIF and WebP (f_auto by Accept, cached per choice),
pg_ frames, and the 400s and 413 an animation can get (tests/transform/test_transform_animation.py has
the rendering itself)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from tests.app.helpers import SAMPLES, ClientFactory, EllipseSegmenter, wait_for_200
from tests.transform.transform_helpers import animation, declared_gif, frame_numbers, numbered_animation


@pytest.fixture
def originals(tmp_path: Path) -> Path:
    folder = tmp_path / "originals"
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "anim.gif").write_bytes(animation("gif"))
    (folder / "docs" / "spin.webp").write_bytes(animation("webp", frames=3))
    (folder / "docs" / "road.jpg").write_bytes((SAMPLES / "docs" / "road.jpg").read_bytes())
    return folder


def frames(content: bytes) -> tuple[int, int, int, list[int]]:
    """(width, frame height, frames, delays) of an answer."""
    image = pyvips.Image.new_from_buffer(content, "")
    pages = image.get("n-pages") if image.get_typeof("n-pages") else 1
    delays = list(image.get("delay")) if image.get_typeof("delay") else []
    return image.width, image.height, pages, delays


def test_a_scaled_gif_and_webp_stay_animated(make_client: ClientFactory, originals: Path) -> None:
    client = make_client(originals=originals)
    gif = client.get("/image/upload/c_scale,w_80/docs/anim.gif")
    assert gif.status_code == 200, gif.headers.get("x-cld-error")
    assert gif.headers["content-type"] == "image/gif"
    assert frames(gif.content) == (80, 50, 4, [100, 200, 300, 400])
    webp = client.get("/image/upload/c_fill,h_40,w_40/docs/spin.webp")
    assert webp.headers["content-type"] == "image/webp"
    assert frames(webp.content) == (40, 40, 3, [100, 200, 300])
    converted = client.get("/image/upload/c_scale,w_80/f_webp,fl_awebp/docs/anim.gif")
    assert converted.headers["content-type"] == "image/webp"
    assert frames(converted.content) == (80, 50, 4, [100, 200, 300, 400])
    still = client.get("/image/upload/c_scale,w_80/docs/anim.jpg")
    assert still.headers["content-type"] == "image/jpeg" and frames(still.content)[2] == 1


def test_f_auto_answers_webp_or_gif_by_accept_and_caches_each(
    make_client: ClientFactory, originals: Path
) -> None:
    client = make_client(originals=originals)
    url = "/image/upload/c_scale,w_80/f_auto/docs/anim.gif"
    for _ in range(2):  # the second time from the cache: each Accept its own entry
        modern = client.get(url, headers={"Accept": "image/avif,image/webp,*/*"})
        assert (modern.headers["content-type"], modern.headers["vary"]) == ("image/webp", "Accept")
        assert frames(modern.content)[2] == 4
        old = client.get(url, headers={"Accept": "image/avif,*/*"})
        assert old.headers["content-type"] == "image/gif" and frames(old.content)[2] == 4
    # A still under f_auto is negotiated as it always was.
    road = client.get("/image/upload/c_scale,w_80/f_auto/docs/road.jpg", headers={"Accept": "image/avif,*/*"})
    assert road.headers["content-type"] == "image/avif"


def test_pg_picks_frames(make_client: ClientFactory, originals: Path) -> None:
    client = make_client(originals=originals)
    one = client.get("/image/upload/pg_2/docs/anim.gif")
    assert one.status_code == 200 and frames(one.content)[:3] == (160, 100, 1)
    two = client.get("/image/upload/c_scale,w_80/pg_2-3/docs/anim.gif")
    assert frames(two.content) == (80, 50, 2, [200, 300])


def test_fl_animated_with_no_format_named_keeps_an_animations_own(
    make_client: ClientFactory, originals: Path
) -> None:
    client = make_client(originals=originals)
    assert client.get("/image/upload/docs/road").status_code == 200  # cached: not served for the flag
    assert client.get("/image/upload/fl_animated/docs/road").status_code == 400
    answer = client.get("/image/upload/c_scale,w_80/fl_animated/docs/anim")
    assert answer.headers["content-type"] == "image/gif" and frames(answer.content)[2] == 4
    assert client.get("/image/upload/fl_awebp/docs/spin").headers["content-type"] == "image/webp"


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/image/upload/pg_9/docs/anim.gif", 400,
         "Invalid transformation parameter - pg_9: page 9 does not exist: the image has 4 frames"),
        ("/image/upload/pg_2/docs/road.jpg", 400,
         "Invalid transformation parameter - pg_2: page 2 does not exist: the image has 1 frame "),
        ("/image/upload/pg_0/docs/anim.gif", 400,
         "Invalid transformation parameter - pg_0: pages count from 1"),
        ("/image/upload/c_thumb,g_face,h_50,w_50/docs/anim.gif", 400,
         "Invalid transformation: g_face is not supported on an animated image"),
        ("/image/upload/fl_animated/docs/anim.jpg", 400,
         "Invalid transformation: fl_animated and fl_awebp ask for an animation"),
        ("/image/upload/pg_5-/docs/anim.gif", 400,
         "Invalid transformation parameter - pg_5-: page 5 does not exist: the image has 4 frames"),
        ("/image/upload/dl_200/docs/anim.jpg", 400,
         "Invalid transformation: dl_200 times the frames of an animation, and JPG cannot hold one here"),
        ("/image/upload/e_loop:2/f_png/docs/anim.gif", 400,
         "Invalid transformation: e_loop:2 times the frames of an animation, and PNG cannot hold one here"),
        ("/image/upload/dl_0/docs/anim.gif", 400,
         "Invalid transformation parameter - dl_0: the delay in milliseconds must be an integer from 1"),
        ("/image/upload/vs_auto/docs/anim.gif", 400,
         "Invalid transformation parameter - vs_auto: sampling must be a number of frames (vs_10) or of "
         "seconds between frames (vs_0.5s)"),
        ("/image/upload/e_loop:x/docs/anim.gif", 400,
         "Invalid transformation parameter - e_loop:x: e_loop's additional plays must be an integer"),
        ("/image/upload/fl_apng/docs/anim.png", 400,
         "Invalid transformation parameter - fl_apng: flags must be"),
        # No format named: the original's, JPEG, and the same 400 (its cache entry, shared with the URL
        # without the flag, is not served for it either).
        ("/image/upload/fl_animated/docs/road", 400,
         "Invalid transformation: fl_animated and fl_awebp ask for an animation, and JPG cannot hold one"),
        ("/image/upload/fl_animated,c_scale,w_80/docs/road", 400,
         "Invalid transformation: fl_animated and fl_awebp ask for an animation, and JPG cannot hold one"),
    ],
)  # fmt: skip
def test_what_an_animation_cannot_get(
    make_client: ClientFactory, originals: Path, url: str, status: int, message: str
) -> None:
    response = make_client(originals=originals).get(url)
    assert response.status_code == status
    assert response.headers["x-cld-error"].startswith(message)


def loop_of(content: bytes) -> int:
    return int(pyvips.Image.new_from_buffer(content, "", n=-1).get("loop"))


def test_pg_to_the_last_frame_dl_e_loop_and_vs(make_client: ClientFactory, originals: Path) -> None:
    """Cloudinary's animation controls over HTTP; each one part of the cache key (asked twice: the
    second answer from the cache, still the URL's own)."""
    client = make_client(originals=originals)
    for _ in range(2):
        tail = client.get("/image/upload/c_scale,w_80/pg_2-/docs/anim.gif")
        assert frames(tail.content) == (80, 50, 3, [200, 300, 400])
        slow = client.get("/image/upload/c_scale,w_80/dl_250/docs/anim.gif")
        assert slow.status_code == 200, slow.headers.get("x-cld-error")
        assert frames(slow.content) == (80, 50, 4, [250] * 4)
        faster = client.get("/image/upload/c_scale,w_80/dl_120/docs/anim.gif")
        assert frames(faster.content)[3] == [120] * 4
        thrice = client.get("/image/upload/c_scale,w_80/e_loop:2/docs/anim.gif")
        assert loop_of(thrice.content) == 3 and frames(thrice.content)[3] == [100, 200, 300, 400]
        forever = client.get("/image/upload/e_loop:0/e_loop:0/docs/spin.webp")
        assert forever.headers["content-type"] == "image/webp" and loop_of(forever.content) == 1
        sampled = client.get("/image/upload/c_scale,w_80/vs_2/docs/anim.gif")
        assert frames(sampled.content) == (80, 50, 2, [500, 500])
        every = client.get("/image/upload/vs_0.25s,dl_100/f_webp/docs/anim.gif")
        assert frames(every.content) == (160, 100, 4, [100] * 4)


def test_background_removal_of_every_frame_is_a_400_at_once(
    make_client: ClientFactory, originals: Path, stub: EllipseSegmenter
) -> None:
    """Told from the original's header when the URL is resolved: the 400, never a 423 first (no job is
    queued for a model that would not run); one frame of it (pg_1) is a still, generated as any."""
    client = make_client(originals=originals)
    for url in ("/image/upload/e_background_removal/docs/anim.gif",
                "/image/upload/c_scale,w_80/e_background_removal/f_webp/docs/anim.gif"):  # fmt: skip
        answer = client.get(url)
        assert answer.status_code == 400, url
        assert answer.headers["x-cld-error"].startswith(
            "Invalid transformation: e_background_removal is not supported on an animated image"
        )
    assert stub.calls == 0
    assert client.get("/image/upload/e_background_removal/pg_1/docs/anim.png").status_code == 423
    first = wait_for_200(client, "/image/upload/e_background_removal/pg_1/docs/anim.png")
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert stub.calls == 1


@pytest.mark.parametrize("with_model", [True, False])
def test_g_auto_on_an_animation_is_rendered_at_once_without_the_model(
    make_client: ClientFactory, originals: Path, stub: EllipseSegmenter, with_model: bool
) -> None:
    """g_auto (c_auto's default, g_auto:subject) is the centre of every frame of an animation: nothing
    waits for the segmentation model (no 423), which need not even be there (no 501)."""
    client = make_client(originals=originals, **({} if with_model else {"segmenter": None}))
    centred = client.get("/image/upload/c_fill,g_center,h_80,w_50/docs/anim.gif")
    for url in ("/image/upload/c_auto,h_80,w_50/docs/anim.gif",
                "/image/upload/c_fill,g_auto:subject,h_80,w_50/docs/anim.gif",
                "/image/upload/c_auto,h_80,w_50/f_auto/docs/anim.gif"):  # fmt: skip
        answer = client.get(url)
        assert answer.status_code == 200, (url, answer.headers.get("x-cld-error"))
        assert frames(answer.content) == (50, 80, 4, [100, 200, 300, 400])
        assert answer.content == centred.content, url
    assert stub.calls == 0
    # The same URL for a still (its first frame): the model's subject, made by a job (423, then 200).
    still = "/image/upload/c_auto,h_80,w_50/docs/anim.png"
    assert client.get(still).status_code == (423 if with_model else 501)


def test_an_animation_bomb_is_a_413(make_client: ClientFactory, originals: Path) -> None:
    """Four frames of 160x100 are 64000 pixels together: over a 50000-pixel limit that each frame is
    within, refused before decoding."""
    client = make_client(originals=originals, max_pixels=50_000)
    answer = client.get("/image/upload/c_scale,w_80/docs/anim.gif")
    assert answer.status_code == 413
    assert answer.headers["x-cld-error"].startswith("Animation is too large: 4 frames of 160x100 pixels")
    assert client.get("/image/upload/c_scale,w_80/pg_1-3/docs/anim.gif").status_code == 200


def test_the_frames_decoded_to_reach_a_frame_are_bounded_by_the_limit(
    make_client: ClientFactory, originals: Path
) -> None:
    """A GIF placed in the folder by hand (uploads refuse it): 120 frames of 1000x1000 pixels in 4 KB.
    Reaching frame 120 decodes the 119 before it, in one request libvips cannot stop between tiles: a
    413 before anything is decoded, as for the frames delivered."""
    (originals / "docs" / "bomb.gif").write_bytes(declared_gif(120, 1000))
    client = make_client(originals=originals)
    for url in ("/image/upload/pg_120/docs/bomb.gif", "/image/upload/c_scale,w_10/pg_1;120/docs/bomb.gif",
                "/image/upload/c_scale,w_10,pg_120/docs/bomb.jpg"):  # fmt: skip
        answer = client.get(url)
        assert answer.status_code == 413, url
        assert answer.headers["x-cld-error"].startswith(
            "Animation is too large: each frame is drawn over the frames before it, so delivering "
        ), url
        assert "the limit is 50.0 megapixels: deliver earlier frames (pg_)" in answer.headers["x-cld-error"]
    assert client.get("/image/upload/c_scale,w_10,pg_40/docs/bomb.gif").status_code == 200


def test_sparse_frames_of_a_long_animation_are_delivered(make_client: ClientFactory, originals: Path) -> None:
    """300 frames of 60x20 pixels, each showing its index (from 0): vs_ and a pg_ list deliver the frames
    they choose, the frames before the last one decoded once (each is drawn over the ones before it), and
    counted once against the limit, here every frame once. Reaching further than the limit allows is a 413."""
    (originals / "docs" / "long.gif").write_bytes(numbered_animation("gif"))
    (originals / "docs" / "long.webp").write_bytes(numbered_animation("webp"))
    client = make_client(originals=originals, max_pixels=300 * 60 * 20)
    for url, kept in [
        ("/image/upload/vs_10/docs/long.gif", list(range(0, 300, 30))),
        ("/image/upload/c_scale,w_30/vs_10/docs/long.webp", list(range(0, 300, 30))),
        ("/image/upload/pg_1;50;100;150/docs/long.gif", [0, 49, 99, 149]),
        ("/image/upload/pg_150;1;300/docs/long.webp", [149, 0, 299]),
    ]:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert frame_numbers(answer.content) == kept, url
    client = make_client(originals=originals, max_pixels=100 * 60 * 20)
    answer = client.get("/image/upload/vs_10/docs/long.webp")  # (not one rendered above: no cached copy)
    assert answer.status_code == 413
    assert answer.headers["x-cld-error"] == (
        "Animation is too large: each frame is drawn over the frames before it, so delivering frames up to "
        "271 decodes 271 frames of 60x20 pixels (0.325 megapixels together); the limit is 0.120 megapixels: "
        "deliver earlier frames (pg_)"
    )
    assert frame_numbers(client.get("/image/upload/pg_1;50;100/docs/long.gif").content) == [0, 49, 99]

"""Animated GIF and WebP originals: transformed frame by frame, delivered with every frame, delay and
loop when the format animates (GIF, WebP, f_auto), as their first frame otherwise; pg_ chooses frames.

The originals are made here (transform_helpers.animation): 160x100 frames of a light grey ground with
a black square at the top left and a disc, of another colour on each frame, moving right 30 px a frame.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import pyvips
from transform_helpers import (
    FRAME_COLOURS,
    CornerSegmenter,
    animation,
    declared_gif,
    frame_numbers,
    frames_of,
    numbered_animation,
    run,
)

from cache import PIPELINE_VERSION
from grammar import parse_transformation
from grammar.errors import BadRequest, InvalidArgument, TooLarge
from transform import Limits, compile_plan, delivers_animation, frames, negotiate_format
from transform.ops.pages import Loop, Sampling, Timing
from transform.timeline import sample

GREY = [235, 235, 235]
BLACK = [0, 0, 0]


def colour_at(frame: pyvips.Image, x: int, y: int) -> list[float]:
    return list(frame.extract_band(0, n=3).getpoint(x, y))


def near(actual: list[float], expected: list[int], tolerance: float = 24) -> bool:
    """GIF's palette and WebP's lossy coding move colours a little."""
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def disc_colours(frames: list[pyvips.Image], centres: list[tuple[int, int]]) -> list[list[float]]:
    return [colour_at(frame, *centre) for frame, centre in zip(frames, centres, strict=True)]


def delays_and_loop(data: bytes) -> tuple[list[int], int]:
    image = pyvips.Image.new_from_buffer(data, "", n=-1)
    return list(image.get("delay")), int(image.get("loop"))


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_a_scaled_animation_keeps_every_frame_delay_and_loop(fmt: str, files: dict[str, Path]) -> None:
    """c_scale on an animated original: each frame scaled (with shrink-on-load), none dropped."""
    source = animation(fmt, loop=3)
    rendered = run("c_scale,w_80", source, files, extension=fmt)
    assert (rendered.format, rendered.width, rendered.height, rendered.frames) == (fmt, 80, 50, 4)
    frames = frames_of(rendered.data)
    assert len(frames) == 4 and all((f.width, f.height) == (80, 50) for f in frames)
    centres = [(15 + 15 * i, 25) for i in range(4)]
    assert all(near(c, list(e)) for c, e in zip(disc_colours(frames, centres), FRAME_COLOURS, strict=False))
    assert all(near(colour_at(f, 2, 2), BLACK) for f in frames)
    assert delays_and_loop(rendered.data) == ([100, 200, 300, 400], 3)


def test_a_gif_delivered_as_webp_is_an_animated_webp(files: dict[str, Path]) -> None:
    for transformation in ("c_scale,w_80/f_webp", "c_scale,w_80", "c_scale,w_80/f_webp,fl_awebp"):
        rendered = run(transformation, animation("gif"), files, extension="webp")
        assert (rendered.format, rendered.frames) == ("webp", 4), transformation
        assert delays_and_loop(rendered.data) == ([100, 200, 300, 400], 0)
        assert len(frames_of(rendered.data)) == 4


@pytest.mark.parametrize(
    ("accept", "fmt", "still"),
    [
        ("image/avif,image/webp,*/*", "webp", "avif"),  # AVIF is not written animated: WebP, which is
        ("image/webp", "webp", "webp"),
        ("image/avif,*/*", "gif", "avif"),  # no WebP: GIF, which every client takes
        (None, "gif", "jpg"),
    ],
)
def test_f_auto_keeps_an_animation_moving(
    accept: str | None, fmt: str, still: str, files: dict[str, Path]
) -> None:
    rendered = run("c_scale,w_80/f_auto", animation("gif"), files, accept=accept)
    assert (rendered.format, rendered.frames) == (fmt, 4)
    assert len(frames_of(rendered.data)) == 4
    assert run("c_scale,w_80/f_auto", files["photo"], files, accept=accept).format == still  # as before


def test_f_auto_with_a_quality_is_no_400_when_the_animation_is_a_gif(files: dict[str, Path]) -> None:
    """q_ sets the quality of the formats that take one; f_auto chose GIF for this client."""
    rendered = run("c_scale,w_80/f_auto/q_80", animation("gif"), files, accept="image/avif")
    assert (rendered.format, rendered.frames) == ("gif", 4)
    with pytest.raises(InvalidArgument, match="quality has no effect on GIF"):
        run("c_scale,w_80/q_80", animation("gif"), files, extension="gif")


def test_fl_progressive_interlaces_an_animated_gif(files: dict[str, Path]) -> None:
    """The animation's encode was not given the flag: dropped silently."""
    rendered = run("c_scale,w_80/fl_progressive", animation("gif"), files, extension="gif")
    assert rendered.frames == 4
    assert pyvips.Image.new_from_buffer(rendered.data, "").get("interlaced") == 1
    with pytest.raises(BadRequest, match="fl_progressive: no effect on WEBP output"):
        run("c_scale,w_80/fl_progressive", animation("gif"), files, extension="webp")


@pytest.mark.parametrize("fmt", ["jpg", "png", "avif"])
def test_a_still_format_gets_the_first_frame(fmt: str, files: dict[str, Path]) -> None:
    """As Cloudinary delivers an animated GIF asked as JPEG: its first frame."""
    rendered = run("c_scale,w_80", animation("gif"), files, extension=fmt)
    [frame] = frames_of(rendered.data)
    assert (rendered.format, rendered.frames, frame.width, frame.height) == (fmt, 1, 80, 50)
    assert near(colour_at(frame, 15, 25), FRAME_COLOURS[0], 40)


def test_pg_delivers_one_frame_as_a_still(files: dict[str, Path]) -> None:
    for transformation, extension, index in (("pg_2", "gif", 1), ("c_scale,w_80,pg_3", "png", 2),
                                             ("pg_4/c_scale,w_80", "webp", 3)):  # fmt: skip
        rendered = run(transformation, animation("gif"), files, extension=extension)
        [frame] = frames_of(rendered.data)
        scale = frame.width / 160
        centre = (round((30 + 30 * index) * scale), round(50 * scale))
        assert near(colour_at(frame, *centre), FRAME_COLOURS[index]), transformation
        assert rendered.frames == 1


def test_pg_lists_and_ranges_keep_those_frames_in_that_order(files: dict[str, Path]) -> None:
    rendered = run("pg_2-3", animation("gif"), files, extension="gif")
    colours = disc_colours(frames_of(rendered.data), [(60, 50), (90, 50)])
    assert rendered.frames == 2
    assert near(colours[0], FRAME_COLOURS[1]) and near(colours[1], FRAME_COLOURS[2])
    assert delays_and_loop(rendered.data)[0] == [200, 300]
    rendered = run("pg_4;1", animation("gif"), files, extension="webp")
    frames = frames_of(rendered.data)
    colours = disc_colours(frames, [(120, 50), (30, 50)])
    assert near(colours[0], FRAME_COLOURS[3]) and near(colours[1], FRAME_COLOURS[0])
    assert delays_and_loop(rendered.data)[0] == [400, 100]


@pytest.mark.parametrize(
    ("transformation", "message"),
    [
        ("pg_5", "pg_5: page 5 does not exist: the image has 4 frames (pages count from 1)"),
        ("pg_2-9", "pg_2-9: page 9 does not exist: the image has 4 frames"),
        ("pg_5-", "pg_5-: page 5 does not exist: the image has 4 frames"),
        ("pg_1;5-/vs_2", "pg_1;5-: page 5 does not exist: the image has 4 frames"),
    ],
)
def test_pages_past_the_last_frame_are_a_400(
    transformation: str, message: str, files: dict[str, Path]
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        run(transformation, animation("gif"), files, extension="gif")
    assert caught.value.status == 400
    assert caught.value.public.startswith(f"Invalid transformation parameter - {message}")


def test_a_still_has_one_page(files: dict[str, Path]) -> None:
    assert run("pg_1,c_scale,w_50", files["photo"], files).width == 50
    assert run("pg_0000000001,c_scale,w_50", files["photo"], files).width == 50  # zeros are no digits
    with pytest.raises(InvalidArgument, match="page 2 does not exist: the image has 1 frame "):
        run("pg_2", files["photo"], files)


@pytest.mark.parametrize(
    ("transformation", "message"),
    [
        ("pg_0", "pg_0: pages count from 1 (pg_1 is the first frame)"),
        ("pg_3-2", "pg_3-2: the range 3-2 goes backwards; write it first-last"),
        ("pg_99999999999", "pg_99999999999: page numbers of at most 9 digits"),
        ("pg_1-0000012345678901", "pg_1-0000012345678901: page numbers of at most 9"),
        ("pg_-1", "pg_-1: pages must be frame numbers from 1, ranges <first>-<last>, <first>- (to the "
         "last frame) or these joined by ';'"),
        ("pg_all", "pg_all: pages must be frame numbers from 1"),
        ("pg_5-x", "pg_5-x: pages must be frame numbers from 1"),
        ("pg_name:skin", "pg_name:skin: pages must be frame numbers from 1, ranges <first>-<last>, <first>- "
         "(to the last frame) or these joined by ';' (pg_2, pg_2-4, pg_5-, pg_1;3); a name (PSD layers) is "
         "not supported"),
        ("pg_1/pg_2", "Invalid transformation: pg_ is given twice, with different pages"),
        ("l_logo,pg_2/fl_layer_apply", "Invalid transformation: pg_ applies to the delivered image, not "
         "inside a layer"),
    ],
)
def test_bad_pages_are_400s_before_rendering(transformation: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        compile_plan(parse_transformation(transformation))
    assert caught.value.status == 400
    assert message in caught.value.public


def test_pages_are_canonical_and_part_of_the_derivative() -> None:
    plan = compile_plan(parse_transformation("w_80,pg_02-3;4,c_scale"))
    assert plan.canonical == plan.derivative == "c_scale,pg_2-3;4,w_80"
    assert compile_plan(parse_transformation("pg_1/pg_1")).derivative == "pg_1/pg_1"
    # fl_animated and fl_awebp change no byte: the derivative (and the cache entry) is shared.
    flagged = compile_plan(parse_transformation("c_scale,w_80/f_webp,fl_awebp"))
    assert flagged.derivative == "c_scale,w_80/f_webp"


def test_cache_keys_tell_apart_what_differs() -> None:
    """f_auto's key holds what an animation would become for this client (WebP or GIF); the pipeline
    version changed with animations, so stills cached as an animation's first frame are not served."""
    plan = compile_plan(parse_transformation("c_scale,w_80/f_auto"))
    webp = negotiate_format(plan, extension=None, accept="image/avif,image/webp")
    gif = negotiate_format(plan, extension=None, accept="image/avif")
    assert webp.fmt == gif.fmt == "avif" and webp.key != gif.key
    assert PIPELINE_VERSION == "6"


@pytest.mark.parametrize("extension", ["jpg", "png", "avif", "tiff"])
def test_fl_animated_with_a_still_format_is_a_400(extension: str) -> None:
    plan = compile_plan(parse_transformation("fl_animated"))
    with pytest.raises(BadRequest, match="cannot hold one here: deliver it as GIF or WebP"):
        negotiate_format(plan, extension=extension, accept=None)
    assert negotiate_format(plan, extension=None, accept=None).fmt is None  # the original's own format


@pytest.mark.parametrize("original", ["jpg", "png", "heic"])
def test_fl_animated_with_a_still_original_and_no_format_named_is_a_400(
    original: str, files: dict[str, Path]
) -> None:
    """No format named: the original's own is delivered, and it cannot animate either (a HEIC original
    is delivered as PNG). Told by the server from the original's extension; by the renderer from its
    content (its own bytes are not delivered as they are, as without the flag)."""
    plan = compile_plan(parse_transformation("fl_animated"))
    with pytest.raises(BadRequest, match=f"and {'PNG' if original == 'heic' else original.upper()} cannot"):
        negotiate_format(plan, extension=None, accept=None, original=original)
    for fmt in ("gif", "webp"):
        assert negotiate_format(plan, extension=None, accept=None, original=fmt).fmt is None
    assert negotiate_format(plan, extension="gif", accept=None, original="jpg").fmt == "gif"
    assert negotiate_format(compile_plan(parse_transformation("fl_animated/f_auto")), extension=None,
                            accept=None, original="jpg").vary  # fmt: skip
    with pytest.raises(BadRequest, match="and JPG cannot hold one here"):
        run("fl_animated", files["photo"], files)
    source = animation("gif")
    assert run("fl_animated", source, files).data == source  # as stored: every frame
    assert run("c_scale,w_80/fl_animated", source, files).frames == 4


def frame_sizes_and_corner(rendered_data: bytes) -> tuple[set[tuple[int, int]], list[list[float]]]:
    frames = frames_of(rendered_data)
    return {(f.width, f.height) for f in frames}, [colour_at(f, f.width - 3, 2) for f in frames]


@pytest.mark.parametrize(
    ("transformation", "size", "check"),
    [
        # Rotated a quarter turn clockwise: the square comes to the top right of every frame.
        ("a_90", (100, 160), lambda f: near(colour_at(f, f.width - 3, 2), BLACK)),
        ("a_hflip", (160, 100), lambda f: near(colour_at(f, f.width - 3, 2), BLACK)),
        # Cut at the bottom right of each frame: the square is gone from all of them.
        ("c_crop,g_south_east,h_50,w_70", (70, 50), lambda f: near(colour_at(f, 2, f.height - 3), GREY)),
        ("b_blue,c_pad,h_120,w_160", (160, 120), lambda f: near(colour_at(f, 80, 3), [0, 0, 255])),
        ("c_fill,g_north_west,h_40,w_40", (40, 40), lambda f: near(colour_at(f, 2, 2), BLACK)),
        ("e_grayscale", (160, 100), lambda f: len({round(v) for v in colour_at(f, 60, 50)}) == 1),
        ("r_max", (160, 100), lambda f: f.bands == 4 and f.getpoint(0, 0)[3] == 0),
        # Colour casts and fades, frame by frame (the grey backdrop of each).
        ("e_tint:100:white:black", (160, 100), lambda f: near(colour_at(f, 2, f.height - 3), BLACK)),
        ("e_blue:-100", (160, 100), lambda f: near(colour_at(f, 2, f.height - 3), [235, 235, 0])),
        ("b_blue,e_gradient_fade", (160, 100), lambda f: near(colour_at(f, 2, 0), [0, 0, 255], 40)),
        # A layer on every frame, placed at the gravity.
        ("l_logo/fl_layer_apply,g_south_east", (160, 100),
         lambda f: near(colour_at(f, 150, 80), [245, 197, 24])),  # fmt: skip
    ],
)
def test_operations_apply_to_every_frame(
    transformation: str, size: tuple[int, int], check: object, files: dict[str, Path]
) -> None:
    rendered = run(transformation, animation("gif"), files, extension="gif")
    frames = frames_of(rendered.data)
    assert rendered.frames == 4 and len(frames) >= 3  # (the GIF writer merges frames it finds equal)
    assert {(f.width, f.height) for f in frames} == {size}
    assert all(check(f) for f in frames), transformation  # type: ignore[operator]


def test_g_auto_is_the_centre_on_an_animation(files: dict[str, Path]) -> None:
    """Cloudinary: g_auto on an animated image is the centre, so no two frames are cut differently;
    c_auto (g_auto by default) is the centred fill."""
    centred = run("c_fill,g_center,h_80,w_60", animation("gif"), files, extension="gif").data
    for transformation in ("c_fill,g_auto,h_80,w_60", "c_fill,g_auto:subject,h_80,w_60", "c_auto,h_80,w_60"):
        assert run(transformation, animation("gif"), files, extension="gif").data == centred, transformation


@pytest.mark.parametrize(
    ("transformation", "place"),
    [
        ("b_auto,c_pad,h_100,w_100", (50, 5)),
        ("b_auto:predominant,c_lpad,h_100,w_100", (50, 95)),
        ("b_auto:border_gradient,c_pad,h_100,w_100", (50, 5)),
        ("c_scale,w_50/b_auto:predominant_contrast,c_mpad,h_100,w_100", (25, 5)),  # after another step
    ],
)
def test_b_auto_pads_every_frame_with_the_first_frames_colour(
    transformation: str, place: tuple[int, int], files: dict[str, Path]
) -> None:
    """b_auto measured on each frame would give each its own pad colour (a flicker): it is measured once,
    on the first frame, as g_auto is one centre for every frame."""
    colours = ([200, 30, 30], [30, 160, 40], [40, 60, 200])  # a frame of each, solid
    strip = pyvips.Image.arrayjoin(
        [(pyvips.Image.black(100, 50) + colour).cast("uchar") for colour in colours], across=1
    ).copy(interpretation="srgb")
    strip.set_type(pyvips.GValue.gint_type, "page-height", 50)
    source = bytes(strip.gifsave_buffer())
    rendered = run(transformation, source, files, extension="gif")
    frames = frames_of(rendered.data)
    assert rendered.frames == 3 and len(frames) == 3
    pads = [colour_at(frame, *place) for frame in frames]
    assert all(near(pad, [round(v) for v in pads[0]], 6) for pad in pads), pads
    # The same colour a still of the first frame gets.
    first = frames_of(run(f"{transformation}/pg_1", source, files, extension="gif").data)[0]
    assert near(colour_at(first, *place), [round(v) for v in pads[0]], 6)
    assert not near(pads[0], colours[1], 60)  # (the second frame's own colour is not it)


@pytest.mark.parametrize(
    ("transformation", "named"),
    [
        ("e_background_removal", "e_background_removal"),
        ("c_thumb,g_face,h_50,w_50", "g_face"),
        ("e_pixelate_faces", "e_pixelate_faces"),
        ("l_logo/fl_layer_apply,g_faces", "a layer placed with g_faces"),
    ],
)
def test_models_on_every_frame_are_a_400(transformation: str, named: str, files: dict[str, Path]) -> None:
    """Face detection and background removal would run once per frame: refused, naming the step and
    the way to one frame; the same URL on one frame (pg_) or as a still format is rendered."""
    with pytest.raises(BadRequest) as caught:
        run(transformation, animation("gif"), files, segmenter=CornerSegmenter(), extension="gif")
    assert caught.value.public == (
        f"Invalid transformation: {named} is not supported on an animated image (it would run on every "
        "frame); deliver one frame with pg_ (pg_1 is the first) or a format that does not animate "
        "(f_jpg, f_png)"
    )
    if "face" not in transformation:  # (the face model is not needed to check the 400)
        for still in (f"pg_1/{transformation}", f"{transformation}/f_png"):
            rendered = run(still, animation("gif"), files, segmenter=CornerSegmenter(), extension="gif")
            assert rendered.frames == 1


def test_frames_cut_to_different_sizes_are_a_400(files: dict[str, Path]) -> None:
    """e_trim cuts each frame to its own content: the moving disc gives every frame another size."""
    with pytest.raises(BadRequest) as caught:
        run("e_trim:10:rgb:ebebeb", animation("gif"), files, extension="gif")
    assert caught.value.public.startswith(
        "Invalid transformation: e_trim:10:rgb:ebebeb makes frames of different sizes ("
    )
    assert run("e_trim:10:rgb:ebebeb/pg_2", animation("gif"), files, extension="gif").frames == 1


def test_all_frames_count_against_the_pixel_limit(files: dict[str, Path]) -> None:
    """Each frame is 16000 pixels: four of them are over a 50000-pixel limit, an animation bomb refused
    before it is decoded; one frame of it, or two, are within."""
    limits = Limits(max_pixels=50_000)
    with pytest.raises(TooLarge) as caught:
        run("c_scale,w_80", animation("gif"), files, extension="gif", limits=limits)
    assert caught.value.public == (
        "Animation is too large: 4 frames of 160x100 pixels (0.064 megapixels together); the limit is "
        "0.050 megapixels: deliver fewer frames (pg_) or one"
    )
    three = run("pg_1-3", animation("gif"), files, extension="gif", limits=Limits(max_pixels=48_000))
    assert three.frames == 3
    assert run("c_scale,w_80", animation("gif"), files, extension="jpg", limits=limits).frames == 1


@pytest.mark.parametrize(
    ("transformation", "extension", "reach", "decoded"),
    [
        ("pg_120", "gif", "frame 120", 120),  # a still of the last frame
        ("c_scale,w_10,pg_120", "png", "frame 120", 120),  # (shrink-on-load decodes it as well)
        ("pg_1;120", "gif", "frames up to 120", 120),  # two frames delivered, in one read from the first
        ("c_scale,w_10/pg_30-60", "webp", "frames up to 60", 60),
    ],
)
def test_the_frames_decoded_to_reach_a_frame_count_against_the_pixel_limit(
    transformation: str, extension: str, reach: str, decoded: int, files: dict[str, Path]
) -> None:
    """A GIF frame is drawn over the frames before it: reaching frame 120 decodes 120 frames, here of a
    megapixel each (the frames on the way to the last one chosen are decoded once, whichever are
    chosen). They count against the limit (50 megapixels) before any is decoded."""
    source = declared_gif(120, 1000)
    with pytest.raises(TooLarge) as caught:
        run(transformation, source, files, extension=extension)
    assert caught.value.status == 413
    assert caught.value.public == (
        f"Animation is too large: each frame is drawn over the frames before it, so delivering {reach} "
        f"decodes {decoded} frames of 1000x1000 pixels ({decoded}.0 megapixels together); the limit is "
        "50.0 megapixels: deliver earlier frames (pg_)"
    )


#: Every frame of numbered_animation (300 frames of 60x20 pixels) decoded once, and not a frame more.
ONCE = Limits(max_pixels=300 * 60 * 20)
EVERY_30TH = list(range(0, 300, 30))


@pytest.mark.parametrize("fmt", ["gif", "webp"])
@pytest.mark.parametrize(
    ("transformation", "kept"),
    [
        ("vs_10", EVERY_30TH),  # 10 instants over 12 s: frames 1, 31 ... 271 (decoded: 271, not 1360)
        ("vs_1.2s", EVERY_30TH),
        ("c_scale,w_30/vs_10", EVERY_30TH),  # each frame scaled (a WebP decoded at half size)
        ("pg_1;50;100;150", [0, 49, 99, 149]),  # counted: 150 frames, not 301 (decoded: a loader a run)
        ("pg_150;1;150", [149, 0, 149]),  # in the order written, a frame twice
        ("pg_1-3;298-", [0, 1, 2, 297, 298, 299]),
    ],
)
def test_sparse_frames_of_a_long_animation_are_decoded_once(
    transformation: str, kept: list[int], fmt: str, files: dict[str, Path]
) -> None:
    """Each chosen frame needs the frames before it (a frame holds only what changed): the frames up
    to the last one chosen are counted once against the limit (counted per run of consecutive frames,
    from the first frame each time, they were over it here). They are read in one pass (vs_10), or by a
    loader per run where that costs less (a WebP's pg_1;50;100;150: 301 frames decoded, 4 kept)."""
    rendered = run(transformation, numbered_animation(fmt), files, extension=fmt, limits=ONCE)
    assert (rendered.format, rendered.frames) == (fmt, len(kept))
    assert frame_numbers(rendered.data) == kept
    if transformation.startswith("vs_"):
        assert delays_and_loop(rendered.data) == ([1200] * 10, 0)


def test_frames_reaching_too_far_are_refused_before_any_is_decoded(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """10,000 frames of a megapixel each: reaching the last one, or sampling the animation, decodes
    thousands of megapixels, a 413 before anything is decoded. Within the limit, the same numbers of
    frames of a smaller animation are delivered."""
    source = declared_gif(10_000, 1000)

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(frames, "load", no_decoding)
    for transformation, extension, reach, decoded in [
        ("pg_10000", "gif", "frame 10000", 10_000),  # a still of the last frame
        ("pg_1;10000", "webp", "frames up to 10000", 10_000),
        ("vs_10", "gif", "frames up to 9001", 9001),  # instants 0, 1/10 ... 9/10 of the duration
    ]:
        with pytest.raises(TooLarge) as caught:
            run(transformation, source, files, extension=extension)
        assert caught.value.public == (
            "Animation is too large: each frame is drawn over the frames before it, so delivering "
            f"{reach} decodes {decoded} frames of 1000x1000 pixels ({decoded}.0 megapixels together); the "
            "limit is 50.0 megapixels: deliver earlier frames (pg_)"
        ), transformation
    limit = Limits(max_pixels=270 * 60 * 20)  # one frame short of vs_10's 271
    with pytest.raises(TooLarge, match="delivering frames up to 271 decodes 271 frames of 60x20 pixels"):
        run("vs_10", numbered_animation(), files, extension="gif", limits=limit)


@pytest.mark.parametrize(("transformation", "kept"), [("pg_300;1;3", [299, 0, 2]), ("vs_10", EVERY_30TH)])
def test_far_frames_of_tall_narrow_frames_are_the_frames_chosen(
    transformation: str, kept: list[int], files: dict[str, Path]
) -> None:
    """libvips passes a GIF strip of frames 4001 (a prime) lines high one line per request (~4 us each):
    one read over 300 frames of 10x4001 pixels takes seconds, so a loader per run of frames chosen
    decodes the frames before it inside libnsgif instead. Each frame delivered is the one chosen."""
    source = numbered_animation("gif", width=10, height=4001)
    rendered = run(transformation, source, files, extension="gif")
    assert frame_numbers(rendered.data) == kept


def test_frames_within_the_decoding_limit_are_delivered(files: dict[str, Path]) -> None:
    source = declared_gif(120, 1000)
    assert run("c_scale,w_10,pg_50", source, files, extension="png").frames == 1
    assert run("c_scale,w_10/pg_40-50", source, files, extension="gif").frames == 11
    # As a still format, an animation is its first frame chosen: only that one is decoded.
    assert run("c_scale,w_10/pg_1;120", source, files, extension="jpg").frames == 1


def test_at_most_max_frames_are_delivered(files: dict[str, Path]) -> None:
    """Cloudinary truncates what it transforms on the fly to its first 100 frames."""
    rendered = run("c_scale,w_80", animation("gif", frames=6), files, extension="gif",
                   limits=Limits(max_frames=3))  # fmt: skip
    assert rendered.frames == 3 and delays_and_loop(rendered.data)[0] == [100, 200, 300]


def test_an_animation_as_stored_is_its_own_bytes(files: dict[str, Path]) -> None:
    source = animation("webp")
    assert run("", source, files, extension="webp").data == source


def test_the_webp_side_limit_is_of_one_frame(files: dict[str, Path]) -> None:
    """100 frames 200 pixels high stack to 20000 pixels: more than WebP holds in one image (16383 a
    side), but each frame it holds."""
    source = animation("gif", frames=100, height=200, delays=[50] * 100)
    rendered = run("a_hflip", source, files, extension="webp")
    assert (rendered.format, rendered.frames, rendered.height) == ("webp", 100, 200)


def test_pg_chooses_a_page_of_a_multi_page_tiff(files: dict[str, Path]) -> None:
    """TIFF does not animate here: a page of it is delivered, as a still."""
    red, blue = ((pyvips.Image.black(40, 30) + rgb).cast("uchar") for rgb in ([255, 0, 0], [0, 0, 255]))
    strip = pyvips.Image.arrayjoin([red, blue], across=1).copy(interpretation="srgb")
    strip.set_type(pyvips.GValue.gint_type, "page-height", 30)
    source = bytes(strip.tiffsave_buffer())
    for transformation, colour in (("c_scale,w_20", [255, 0, 0]), ("pg_2/c_scale,w_20", [0, 0, 255]),
                                   ("pg_2;1", [0, 0, 255])):  # fmt: skip
        [frame] = frames_of(run(transformation, source, files, extension="png").data)
        assert near(colour_at(frame, 5, 5), colour, 0), transformation


# ---- pg_ to the last frame, dl_, e_loop, vs_ (transform/ops/pages.py, transform/timeline.py) ----------


def kept_frames(data: bytes) -> list[int]:
    """Which frames of animation() an answer holds, told by the colour of each frame's disc (frame i's
    disc is FRAME_COLOURS[i], centred 30 + 30 i px from the left while it fits)."""
    kept = []
    for frame in frames_of(data):
        found = [i for i in range(4) if near(colour_at(frame, 30 + 30 * i, 50), FRAME_COLOURS[i], 30)]
        assert len(found) == 1, found
        kept.append(found[0])
    return kept


@pytest.mark.parametrize(
    ("transformation", "kept", "delays"),
    [
        ("pg_3-", [2, 3], [300, 400]),
        ("pg_1;3-", [0, 2, 3], [100, 300, 400]),
        ("pg_4;2-", [3, 1, 2, 3], [400, 200, 300, 400]),
        ("pg_1-", [0, 1, 2, 3], [100, 200, 300, 400]),
    ],
)
def test_pg_ranges_to_the_last_frame(
    transformation: str, kept: list[int], delays: list[int], files: dict[str, Path]
) -> None:
    """Cloudinary's paged-media guide: "a hyphen with no ending page ... until the end"."""
    rendered = run(transformation, animation("gif"), files, extension="webp")
    assert (rendered.frames, kept_frames(rendered.data)) == (len(kept), kept)
    assert delays_and_loop(rendered.data)[0] == delays


@pytest.mark.parametrize(
    ("fmt", "transformation", "delays"),
    [
        ("gif", "dl_250", [250] * 4),
        ("webp", "dl_250", [250] * 4),
        ("webp", "c_scale,w_80/dl_125", [125] * 4),
        ("gif", "c_scale,w_80/dl_125", [120] * 4),  # a GIF holds hundredths: libvips rounds half to even
        ("gif", "dl_655350", [655350] * 4),
        ("webp", "pg_2-3,dl_40", [40, 40]),
    ],
)
def test_dl_sets_every_frames_delay(
    fmt: str, transformation: str, delays: list[int], files: dict[str, Path]
) -> None:
    source = animation("gif", loop=2)
    rendered = run(transformation, source, files, extension=fmt)
    assert rendered.format == fmt
    assert delays_and_loop(rendered.data) == (delays, 2)  # the loop count kept
    assert len(frames_of(rendered.data)) == len(delays)


@pytest.mark.parametrize(
    ("transformation", "loop"),
    [
        ("c_scale,w_80", 3),  # absent: the original's loop count
        ("e_loop", 0),  # forever
        ("e_loop:0", 1),  # no more play after the first
        ("e_loop:2", 3),  # two more: three in all (libvips' loop counts every play)
        ("c_scale,w_80/e_loop:65534", 65535),
    ],
)
@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_e_loop_sets_how_often_the_animation_plays(
    transformation: str, loop: int, fmt: str, files: dict[str, Path]
) -> None:
    rendered = run(transformation, animation("webp", loop=3), files, extension=fmt)
    assert delays_and_loop(rendered.data) == ([100, 200, 300, 400], loop)
    assert rendered.frames == 4


def test_e_loop_writes_the_gif_loop_count_as_browsers_read_it(files: dict[str, Path]) -> None:
    """A GIF's NETSCAPE2.0 block counts the plays after the first (what e_loop:<n> counts); a GIF that
    plays once has none."""
    for transformation, repeats in (("e_loop", 0), ("e_loop:2", 2), ("e_loop:0", None)):
        data = run(transformation, animation("gif"), files, extension="gif").data
        found = data.find(b"NETSCAPE2.0")
        count = int.from_bytes(data[found + 13 : found + 15], "little") if found >= 0 else None
        assert count == repeats, transformation


@pytest.mark.parametrize(
    ("transformation", "kept", "delays"),
    [
        # Delays 100, 200, 300, 400 ms: frames start at 0, 100, 300 and 600 ms of 1000.
        ("vs_2", [0, 2], [500, 500]),  # instants 0 and 500 ms
        ("vs_3", [0, 2, 3], [333, 334, 333]),  # 0, 333 and 667 ms; the duration kept to the millisecond
        ("vs_4", [0, 1, 2, 3], [100, 200, 300, 400]),  # as many as there are: all, as they were
        ("vs_40", [0, 1, 2, 3], [100, 200, 300, 400]),
        ("vs_0.25s", [0, 1, 2, 3], [250, 250, 250, 250]),  # 0, 250, 500, 750 ms: each frame once
        ("vs_0.5s", [0, 2], [500, 500]),
        ("vs_0.35s", [0, 2, 3], [350, 350, 300]),  # 0, 350, 700 ms; the last shown to the end
        ("vs_2,dl_80", [0, 2], [80, 80]),  # dl_ sets the delays of the frames sampled
        ("pg_2-/vs_2", [1, 2], [450, 450]),  # sampled from the frames pg_ chose (900 ms)
    ],
)
def test_vs_samples_frames_evenly_over_the_duration(
    transformation: str, kept: list[int], delays: list[int], files: dict[str, Path]
) -> None:
    """Cloudinary: an integer is "the total number of frames to sample ... spread evenly over the
    duration", a number of seconds "the number of seconds between each sampled frame"."""
    rendered = run(transformation, animation("gif"), files, extension="webp")
    assert (rendered.frames, kept_frames(rendered.data)) == (len(kept), kept)
    assert delays_and_loop(rendered.data) == (delays, 0)


def test_vs_of_one_frame_is_a_still(files: dict[str, Path]) -> None:
    for transformation in ("vs_1", "vs_5s", "c_scale,w_80/vs_1/dl_100/e_loop"):
        rendered = run(transformation, animation("gif"), files, extension="gif")
        assert rendered.frames == 1 and len(frames_of(rendered.data)) == 1, transformation


def test_vs_samples_a_long_animation_then_the_frame_cap_applies(files: dict[str, Path]) -> None:
    """Six frames (2100 ms) and a cap of three: vs_3 samples all six (instants 0, 700 and 1400 ms, in the
    first, fourth and fifth frames), which the cap keeps; without vs_ the first three are delivered."""
    source = animation("gif", frames=6)
    capped = Limits(max_frames=3)
    rendered = run("vs_3", source, files, extension="webp", limits=capped)
    colours = disc_colours(frames_of(rendered.data), [(30, 50), (120, 50), (30, 50)])
    assert all(near(c, e) for c, e in zip(colours, [FRAME_COLOURS[i] for i in (0, 3, 4)], strict=True))
    assert delays_and_loop(rendered.data)[0] == [700, 700, 700]
    assert delays_and_loop(run("", source, files, extension="webp", limits=capped).data)[0] == [100, 200, 300]


def test_sampling_frames_of_unequal_and_of_no_delays() -> None:
    # A long first frame: the instants 0 and 500 ms both fall in it; it is shown the whole second.
    assert sample([900, 50, 50], Sampling(frames=2)) == [(0, 1000)]
    # As many instants as frames (or more) keep every frame as it was, whatever their delays.
    assert sample([900, 50, 50], Sampling(frames=3)) == [(0, 900), (1, 50), (2, 50)]
    assert sample([900, 50, 50], Sampling(seconds=Decimal("0.05"))) == [(0, 900), (1, 50), (2, 50)]
    # Frames without delays are sampled by their order and keep no delay.
    assert sample([0] * 6, Sampling(frames=3)) == [(0, 0), (2, 0), (4, 0)]
    assert sample([0] * 6, Sampling(seconds=Decimal("1"))) == [(i, 0) for i in range(6)]


def test_timing_on_a_still_original_changes_nothing(files: dict[str, Path]) -> None:
    """A still has one frame: nothing to delay, sample or loop (the URL may serve animations too)."""
    plain = run("c_scale,w_80", files["photo"], files, extension="gif")
    for transformation in ("c_scale,w_80/dl_200", "c_scale,w_80/e_loop:2/vs_3"):
        rendered = run(transformation, files["photo"], files, extension="gif")
        assert (rendered.frames, rendered.data) == (1, plain.data), transformation


@pytest.mark.parametrize(
    ("transformation", "message"),
    [
        ("dl_0", "dl_0: the delay in milliseconds must be an integer from 1 to 655350"),
        ("dl_655351", "dl_655351: the delay in milliseconds must be an integer from 1 to 655350"),
        ("dl_1.5", "dl_1.5: the delay in milliseconds must be an integer from 1 to 655350"),
        ("vs_0", "vs_0: sampling must be a number of frames (vs_10) or of seconds between frames (vs_0.5s)"),
        ("vs_0s", "vs_0s: sampling must be a number of frames"),
        ("vs_-2", "vs_-2: sampling must be a number of frames"),
        ("vs_auto", "vs_auto: sampling must be a number of frames"),
        ("vs_10%", "vs_10%: sampling must be a number of frames (vs_10) or of seconds between frames "
         "(vs_0.5s); a percentage is not supported"),
        ("vs_10%25", "vs_10%25: sampling must be a number of frames (vs_10) or of seconds between frames "
         "(vs_0.5s); a percentage is not supported"),
        ("e_loop:-1", "e_loop:-1: e_loop's additional plays must be an integer from 0 to 65534"),
        ("e_loop:65535", "e_loop:65535: e_loop's additional plays must be an integer from 0 to 65534"),
        ("e_loop:forever", "e_loop:forever: e_loop's additional plays must be an integer from 0 to 65534"),
        ("$n_iw/e_loop:$n", "e_loop:$n: the loop count must be known from the URL"),
        ("fl_apng", "fl_apng: flags must be layer_apply"),
        ("fl_apng", "apng is not supported (libvips writes no animated PNG: deliver the animation as WebP "
         "or GIF, f_webp or f_gif)"),
        ("pg_2,dl_200", "Invalid transformation: dl_200 times the frames of an animation, and pg_2 delivers "
         "one frame as a still; choose several (pg_2-4) or leave it out"),
        ("e_loop/pg_3-3", "Invalid transformation: e_loop times the frames of an animation, and pg_3 "),
        ("dl_100/dl_200", "Invalid transformation: dl_ is given twice, with different delays"),
        ("vs_2/vs_3", "Invalid transformation: vs_ is given twice, with different samplings"),
        ("e_loop/e_loop:1", "Invalid transformation: e_loop is given twice, with different loops"),
        ("l_logo,vs_2/fl_layer_apply", "Invalid transformation: vs_ applies to the delivered image, not "
         "inside a layer"),
        ("l_logo/e_loop:2/fl_layer_apply", "Invalid transformation: e_loop applies to the delivered image, "
         "not inside a layer"),
        ("if_w_gt_100/dl_100/if_end", "Invalid transformation: dl_ applies to the delivered image, not "
         "inside an if_ block"),
    ],
)  # fmt: skip
def test_bad_timing_is_a_400_naming_it(transformation: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        compile_plan(parse_transformation(transformation))
    assert caught.value.status == 400
    assert message in caught.value.public


@pytest.mark.parametrize("transformation", ["dl_200", "e_loop", "e_loop:3", "vs_10", "vs_0.5s"])
@pytest.mark.parametrize("extension", ["jpg", "png", "avif", "tiff"])
def test_timing_with_a_still_format_is_a_400(transformation: str, extension: str) -> None:
    """As fl_animated: the format named cannot hold an animation, so the parameter would do nothing."""
    plan = compile_plan(parse_transformation(transformation))
    with pytest.raises(BadRequest) as caught:
        negotiate_format(plan, extension=extension, accept=None)
    assert caught.value.public == (
        f"Invalid transformation: {transformation} times the frames of an animation, and "
        f"{extension.upper()} cannot hold one here: deliver it as GIF or WebP (f_gif, f_webp, f_auto)"
    )
    for animating in ("gif", "webp", None):  # and f_auto, which delivers an animation as WebP or GIF
        negotiate_format(plan, extension=animating, accept=None)
    auto = compile_plan(parse_transformation(f"{transformation}/f_auto"))
    negotiate_format(auto, extension="jpg", accept=None)


def test_timing_is_canonical_and_part_of_the_derivative() -> None:
    """What the bytes depend on is in the cache key: each value written one way."""
    plan = compile_plan(parse_transformation("dl_0200,vs_0.50s/e_loop:02/pg_02-"))
    assert plan.canonical == plan.derivative == "dl_200,vs_0.5s/e_loop:2/pg_2-"
    assert plan.timing == Timing(200, Sampling(seconds=Decimal("0.5")), Loop(2))
    texts = ("dl_100", "dl_200", "e_loop", "e_loop:1", "vs_2", "vs_2s", "")
    assert len({compile_plan(parse_transformation(t)).derivative for t in texts}) == len(texts)
def test_whether_an_animation_is_delivered_is_told_from_the_header(files: dict[str, Path]) -> None:
    """What the server asks before it queues a model run (cutout/resolve.py): an animation's g_auto is
    the centre and needs no model; its first frame, or one frame, is a still that does."""
    source = animation("gif")
    for transformation, extension, animated in (
        ("c_auto,h_80,w_60", "gif", True), ("c_auto,h_80,w_60", "webp", True),
        ("c_auto,h_80,w_60/f_auto", None, True), ("c_auto,h_80,w_60", "jpg", False),
        ("c_auto,h_80,w_60/pg_2", "gif", False), ("e_background_removal/pg_2-3", "gif", True),
    ):  # fmt: skip
        plan = compile_plan(parse_transformation(transformation))
        choice = negotiate_format(plan, extension=extension, accept=None)
        assert delivers_animation(plan, source, choice, Limits()) is animated, (transformation, extension)
    plan = compile_plan(parse_transformation("c_auto,h_80,w_60"))
    gif = negotiate_format(plan, extension="gif", accept=None)
    assert not delivers_animation(plan, str(files["photo"]), gif, Limits())  # a still as GIF

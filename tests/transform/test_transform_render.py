"""The renderer: format choice, limits, failures, shrink-on-load, EXIF, mask keys and the seed's examples."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import pyvips
from transform_helpers import CornerSegmenter, check_golden, photo, run, thumb16

from grammar import parse_transformation
from grammar.errors import BadRequest, NotAvailable, NotFound, TooLarge, Undecodable
from transform import FormatChoice, Limits, compile_plan, negotiate_format, render
from transform.seam import Mask


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking PNG of a few hundred bytes whose header claims width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 999))
        + chunk(b"IEND", b"")
    )


FORMATS = [
    # (transformation, extension, accept) -> (fmt, vary, alpha_fallback, animation under f_auto)
    ("c_scale,w_10", None, None, FormatChoice(None, False, True)),
    ("c_scale,w_10", "jpeg", None, FormatChoice("jpg")),
    ("c_scale,w_10", "TIF", None, FormatChoice("tiff")),
    ("f_png", "jpg", None, FormatChoice("png")),
    ("f_auto", "jpg", "image/avif,image/webp,*/*", FormatChoice("avif", True, False, "webp")),
    ("f_auto", "jpg", "image/avif,*/*", FormatChoice("avif", True, False, "gif")),
    ("f_auto", None, "image/avif;q=0,image/webp", FormatChoice("webp", True, False, "webp")),
    ("f_auto", None, "image/*,*/*;q=0.8", FormatChoice("jpg", True, True, "gif")),
    ("f_auto", None, None, FormatChoice("jpg", True, True, "gif")),
    ("fl_preserve_transparency", "jpg", None, FormatChoice("jpg", False, True)),
    ("f_jpg,fl_preserve_transparency", "png", None, FormatChoice("jpg", False, True)),
    ("f_auto,fl_preserve_transparency", None, "image/webp", FormatChoice("webp", True, False, "webp")),
    ("f_webp,fl_awebp", "gif", None, FormatChoice("webp")),
    ("fl_animated", "gif", None, FormatChoice("gif")),
]


@pytest.mark.parametrize(("text", "extension", "accept", "choice"), FORMATS)
def test_negotiate_format(text: str, extension: str | None, accept: str | None, choice: FormatChoice) -> None:
    assert (
        negotiate_format(compile_plan(parse_transformation(text)), extension=extension, accept=accept)
        == choice
    )


def test_format_keys_differ() -> None:
    keys = {choice.key for *_, choice in FORMATS}
    assert len(keys) == len({(c.fmt, c.alpha_fallback, c.animation) for *_, c in FORMATS})


def test_unwritable_extension_is_a_400() -> None:
    with pytest.raises(BadRequest, match=r"Invalid extension \.bmp"):
        negotiate_format(compile_plan(()), extension="bmp", accept=None)


def test_decompression_bomb_is_refused_from_the_header(files: dict[str, Path]) -> None:
    with pytest.raises(TooLarge) as caught:
        run("c_scale,w_100", png_declaring(100_000, 100_000), files)
    assert caught.value.status == 413
    assert caught.value.public == (
        "Image is too large: 100000x100000 pixels (10000.0 megapixels); the limit is 50.0 megapixels"
    )


def test_limit_applies_to_layers_and_is_configurable(files: dict[str, Path], tmp_path: Path) -> None:
    plan = compile_plan(parse_transformation("l_big/fl_layer_apply"))
    big = tmp_path / "big.png"
    big.write_bytes(png_declaring(3000, 3000))
    with pytest.raises(TooLarge, match="3000x3000"):
        render(
            plan,
            str(files["photo"]),
            source_key="k",
            choice=FormatChoice("png"),
            load_layer=lambda public_id: (str(big), "big@1"),
            limits=Limits(max_pixels=1_000_000),
        )


@pytest.mark.parametrize(
    "data", [b"not an image at all", b"\xff\xd8\xff\xe0" + b"\0" * 40], ids=["garbage", "jpeg-header-only"]
)
def test_undecodable_is_a_422(files: dict[str, Path], data: bytes) -> None:
    with pytest.raises(Undecodable) as caught:
        run("c_scale,w_10", data, files)
    assert caught.value.status == 422


def test_truncated_original_is_a_422(files: dict[str, Path]) -> None:
    data = files["photo"].read_bytes()
    with pytest.raises(Undecodable):
        run("e_grayscale", data[: len(data) // 2], files)


def test_svg_is_not_opened(files: dict[str, Path]) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    with pytest.raises(Undecodable, match="not a JPEG, PNG"):
        run("c_scale,w_10", svg, files)


def test_missing_original_is_a_404(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        run("c_scale,w_10", tmp_path / "nope.jpg", files)


def test_unknown_layer_is_a_404(files: dict[str, Path]) -> None:
    with pytest.raises(NotFound, match="docs/nothing"):
        run("l_docs:nothing/fl_layer_apply", files["photo"], files)


def test_background_removal_without_a_model_is_a_501(files: dict[str, Path]) -> None:
    with pytest.raises(NotAvailable) as caught:
        run("e_background_removal", files["photo"], files, segmenter=None)
    assert (caught.value.status, caught.value.public) == (
        501,
        "Background removal is not available: no segmentation model",
    )


def test_dropshadow_needs_transparency(files: dict[str, Path]) -> None:
    with pytest.raises(BadRequest, match="e_dropshadow needs an image with transparency"):
        run("e_dropshadow", files["photo"], files)


def test_shrink_on_load_matches_the_general_path(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    photo(2400, 1800).write_to_file(str(big), Q=90)
    fast = run("c_scale,w_300", big, {})
    general = run("a_0/c_scale,w_300", big, {})  # a no-op first step turns the fast path off
    assert (fast.width, fast.height) == (general.width, general.height) == (300, 225)
    assert float(np.abs(thumb16(fast.data) - thumb16(general.data)).mean()) < 2.0


@pytest.mark.parametrize("transformation", ["c_scale,w_60", "e_grayscale"])
def test_exif_orientation_is_applied(tmp_path: Path, transformation: str) -> None:
    rotated = photo(120, 80).copy()
    rotated.set_type(pyvips.GValue.gint_type, "orientation", 6)
    path = tmp_path / "rotated.jpg"
    rotated.write_to_file(str(path))
    out = pyvips.Image.new_from_buffer(run(transformation, path, {}).data, "")
    expected = (60, 90) if transformation.startswith("c_") else (80, 120)
    assert (out.width, out.height) == expected
    assert out.get_typeof("orientation") == 0 or out.get("orientation") == 1


def test_a_ignore_leaves_exif_orientation_alone(files: dict[str, Path]) -> None:
    assert (
        run("e_grayscale", files["oriented"], files).width,
        run("a_ignore", files["oriented"], files).width,
    ) == (
        80,
        120,
    )
    # In a layer, a_ignore is about the layer's source; the layer grows the 80x60 logo's canvas.
    turned = run("l_oriented/fl_layer_apply,g_north_west", files["logo"], files)
    kept = run("l_oriented,a_ignore/fl_layer_apply,g_north_west", files["logo"], files)
    assert ((turned.width, turned.height), (kept.width, kept.height)) == ((80, 120), (120, 80))


@pytest.mark.parametrize(
    ("transformation", "source", "interlaced"),
    [("fl_progressive", "photo", True), ("c_scale,w_50", "photo", False), ("fl_progressive", "cutout", True)],
)
def test_progressive_flag(files: dict[str, Path], transformation: str, source: str, interlaced: bool) -> None:
    out = pyvips.Image.new_from_buffer(run(transformation, files[source], files).data, "")
    assert (out.get_typeof("interlaced") != 0 and out.get("interlaced") == 1) == interlaced


def test_a_400_known_only_when_rendering_names_the_value_as_written(files: dict[str, Path]) -> None:
    with pytest.raises(BadRequest) as caught:
        run("c_scale,w_50/q_080", files["photo"], files, extension="gif")
    assert caught.value.public.startswith("Invalid transformation parameter - q_080: quality has no effect")
    same = [compile_plan(parse_transformation(text)).derivative for text in ("q_080", "q_80")]
    assert same == ["q_80", "q_80"]  # one quality, one cache entry


def test_progressive_gif_is_interlaced(files: dict[str, Path]) -> None:
    """GIF has an interlaced form, which fl_progressive asks for (it was dropped silently)."""
    flagged, plain = (
        pyvips.Image.new_from_buffer(run(text, files["photo"], files, extension="gif").data, "")
        for text in ("fl_progressive", "c_scale,w_50")
    )
    assert (flagged.get("interlaced"), plain.get_typeof("interlaced")) == (1, 0)


@pytest.mark.parametrize(("extension", "shown"), [("webp", "WEBP"), ("avif", "AVIF"), ("tiff", "TIFF")])
def test_progressive_with_a_format_that_has_none_is_a_400(
    files: dict[str, Path], extension: str, shown: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        run("c_scale,w_50/fl_progressive", files["photo"], files, extension=extension)
    assert caught.value.public.startswith(
        f"Invalid transformation parameter - fl_progressive: no effect on {shown} output"
    )


def test_progressive_with_f_auto_applies_where_the_format_chosen_has_it(files: dict[str, Path]) -> None:
    """The URL cannot know what f_auto chooses: no 400; progressive where the choice has the mode."""
    webp = run("fl_progressive/f_auto", files["photo"], files, accept="image/webp")
    jpeg = run("fl_progressive/f_auto", files["photo"], files, accept="image/jpeg")
    assert (webp.format, jpeg.format) == ("webp", "jpg")
    assert pyvips.Image.new_from_buffer(jpeg.data, "").get("interlaced") == 1


def test_progressive_with_the_originals_format_kept_is_checked_when_known(files: dict[str, Path]) -> None:
    webp = run("c_scale,w_50", files["photo"], files, extension="webp").data
    with pytest.raises(BadRequest, match="fl_progressive: no effect on WEBP output"):
        run("c_scale,w_40/fl_progressive", webp, files)


def test_preserve_transparency_beats_a_jpg_extension(files: dict[str, Path]) -> None:
    kept = run("r_20/fl_preserve_transparency", files["photo"], files, extension="jpg")
    flat = run("r_20", files["photo"], files, extension="jpg")
    opaque = run("c_scale,w_50/fl_preserve_transparency", files["photo"], files, extension="jpg")
    assert [(r.format, r.has_alpha) for r in (kept, flat, opaque)] == [
        ("png", True),
        ("jpg", False),
        ("jpg", False),
    ]


def test_trim_of_an_all_background_image_keeps_it(files: dict[str, Path]) -> None:
    out = run("e_trim:100", files["product"], files)  # everything is within 100 % of white
    assert (out.width, out.height) == (240, 180)


@pytest.mark.parametrize(
    ("transformation", "source", "size"),
    [
        ("c_crop,h_1,w_1/e_trim", "photo", (1, 1)),
        ("c_crop,h_2,w_2/e_trim:0:white", "photo", (2, 2)),
        ("c_crop,h_50,w_1/e_trim", "photo", (1, 50)),
        ("c_crop,h_2,w_50/e_trim", "photo", (50, 2)),
        ("c_crop,g_north_west,h_2,w_40/e_trim", "cutout", (40, 2)),  # transparent corner: the alpha path
    ],
)
def test_trim_keeps_an_image_too_small_to_trim(
    files: dict[str, Path], transformation: str, source: str, size: tuple[int, int]
) -> None:
    out = run(transformation, files[source], files)  # libvips' find_trim needs 3 px a side
    assert (out.width, out.height) == size


def test_pad_colour_fills_transparency(files: dict[str, Path]) -> None:
    out = run("b_red,c_pad,w_1.0", files["cutout"], files)  # Cloudinary's background idiom
    decoded = pyvips.Image.new_from_buffer(out.data, "")
    assert (out.width, out.height, out.has_alpha) == (200, 160, False)
    assert decoded.getpoint(0, 0) == pytest.approx([255, 0, 0], abs=1)


def test_original_format_kept_or_png_for_transparency(files: dict[str, Path]) -> None:
    assert run("c_scale,w_50", files["photo"], files).format == "jpg"
    assert run("c_scale,w_50", files["cutout"], files).format == "png"
    assert run("r_10", files["photo"], files).format == "png"  # a JPEG original that became transparent


def test_jpeg_requested_flattens_on_background(files: dict[str, Path]) -> None:
    white = run("c_scale,w_50", files["cutout"], files, extension="jpg")
    red = run("b_red,c_pad,h_40,w_50", files["cutout"], files, extension="jpg")
    assert (white.format, white.has_alpha, red.format) == ("jpg", False, "jpg")
    assert pyvips.Image.new_from_buffer(white.data, "").getpoint(0, 0) == pytest.approx(
        [255, 255, 255], abs=3
    )
    assert pyvips.Image.new_from_buffer(red.data, "").getpoint(0, 0) == pytest.approx([254, 0, 0], abs=4)


class RecordingMasks:
    def __init__(self) -> None:
        self.keys: list[tuple[str, int, int]] = []
        self.segmenter = CornerSegmenter()

    def __call__(self, image: pyvips.Image, *, key: str, fine_edges: bool) -> Mask:
        self.keys.append((key, image.width, image.height))
        return self.segmenter.segment(image, fine_edges=fine_edges)


def test_mask_keys_name_the_source_and_the_steps_before(files: dict[str, Path]) -> None:
    masks = RecordingMasks()
    plan = compile_plan(
        parse_transformation(
            "w_100,c_scale/e_background_removal:fineedges_y/l_logo/c_scale,e_background_removal,w_40/fl_layer_apply"
        )
    )
    render(
        plan,
        str(files["photo"]),
        source_key="photo@7",
        choice=FormatChoice("png"),
        load_layer=lambda public_id: (str(files["logo"]), "logo@3"),
        masks=masks,
    )
    assert masks.keys == [("photo@7|c_scale,w_100", 100, 75), ("logo@3|c_scale,w_40", 40, 30)]


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1)])
def test_background_removal_of_a_tiny_image(files: dict[str, Path], size: tuple[int, int]) -> None:
    width, height = size
    crop = f"c_crop,h_{height},w_{width}"
    outs = [
        run(f"{crop}/{effects}", files["photo"], files, segmenter=CornerSegmenter())
        for effects in ("e_background_removal", "e_background_removal/e_dropshadow")
    ]
    assert [(r.width, r.height, r.format) for r in outs] == [(width, height, "png")] * 2


def test_background_removal_input_is_capped_at_6144(tmp_path: Path) -> None:
    wide = tmp_path / "wide.png"
    photo(6400, 64).write_to_file(str(wide))
    masks = RecordingMasks()
    plan = compile_plan(parse_transformation("e_background_removal"))
    out = render(plan, str(wide), source_key="w", choice=FormatChoice("png"), masks=masks)
    assert masks.keys == [("w|", 6144, 61)]
    assert (out.width, out.height) == (6144, 61)


def test_fullsize_y_keeps_the_size_of_an_image_over_6144(tmp_path: Path) -> None:
    """cutout's own qualifier (the HTTP API's and the vendors' "full"): the same mask, made at 6144 and
    laid on the whole photo."""
    wide = tmp_path / "wide.png"
    photo(6400, 64).write_to_file(str(wide))
    masks = RecordingMasks()
    capped = render(compile_plan(parse_transformation("e_background_removal")), str(wide), source_key="w",
                    choice=FormatChoice("png"), masks=masks)  # fmt: skip
    full = render(compile_plan(parse_transformation("e_background_removal:fullsize_y")), str(wide),
                  source_key="w", choice=FormatChoice("png"), masks=masks)  # fmt: skip
    assert masks.keys == [("w|", 6144, 61)] * 2  # one key: the mask is shared
    assert (full.width, full.height, full.has_alpha) == (6400, 64, True)
    # The same cut-out, at two sizes: as transparent on the whole.
    full_alpha = pyvips.Image.new_from_buffer(full.data, "").extract_band(3)
    capped_alpha = pyvips.Image.new_from_buffer(capped.data, "").extract_band(3)
    assert abs(full_alpha.avg() - capped_alpha.avg()) < 2
    small = tmp_path / "small.png"
    photo(300, 200).write_to_file(str(small))
    same = render(compile_plan(parse_transformation("e_background_removal:fullsize_y")), str(small),
                  source_key="s", choice=FormatChoice("png"), masks=masks)  # fmt: skip
    assert (same.width, same.height) == (300, 200)


def test_mask_keys_say_when_a_ignore_keeps_the_source_as_stored(files: dict[str, Path]) -> None:
    masks = RecordingMasks()
    for text in (
        "e_background_removal",
        "e_background_removal/a_ignore",  # a_ignore after the mask: same steps before it
        "a_ignore/e_background_removal",
        "l_oriented,e_background_removal/fl_layer_apply",
        "l_oriented,e_background_removal/a_ignore/fl_layer_apply",
    ):
        render(
            compile_plan(parse_transformation(text)),
            str(files["oriented"]),
            source_key="oriented@2",
            choice=FormatChoice("png"),
            load_layer=lambda public_id: (str(files["oriented"]), "oriented@2"),
            masks=masks,
        )
    assert [key for key, *_ in masks.keys] == [
        "oriented@2|",
        "oriented@2|a_ignore|",
        "oriented@2|a_ignore|a_ignore",
        "oriented@2|",
        "oriented@2|a_ignore|",
    ]


class SharedMasks:
    """Equal keys share a mask of the same size, as the server's mask cache does."""

    def __init__(self) -> None:
        self.masks: dict[str, Mask] = {}
        self.segmenter = CornerSegmenter()

    def __call__(self, image: pyvips.Image, *, key: str, fine_edges: bool) -> Mask:
        mask = self.masks.get(key)
        if mask is None or (mask.alpha.width, mask.alpha.height) != (image.width, image.height):
            mask = self.masks[key] = self.segmenter.segment(image, fine_edges=fine_edges)
        return mask


@pytest.mark.parametrize(
    ("upright", "as_stored"),
    [
        ("e_background_removal", "e_background_removal/a_ignore"),
        (
            "l_turned,e_background_removal/fl_layer_apply,g_north_west",
            "l_turned,e_background_removal/a_ignore/fl_layer_apply,g_north_west",
        ),
    ],
)
def test_a_ignore_cut_out_is_not_served_the_upright_mask(
    tmp_path: Path, upright: str, as_stored: str
) -> None:
    # Orientation 3 (half a turn) keeps the size, so a cached upright mask would fit, upside down.
    turned = tmp_path / "turned.jpg"
    image = photo(120, 80).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 3)
    image.write_to_file(str(turned))
    base = tmp_path / "base.png"
    pyvips.Image.black(160, 120, bands=3).copy(interpretation="srgb").write_to_file(str(base))
    source = str(turned) if upright.startswith("e_") else str(base)

    def cut_out(text: str, masks: SharedMasks) -> np.ndarray:
        rendered = render(
            compile_plan(parse_transformation(text)),
            source,
            source_key="src@1",
            choice=FormatChoice("png"),
            load_layer=lambda public_id: (str(turned), "turned@1"),
            masks=masks,
        )
        return np.asarray(pyvips.Image.new_from_buffer(rendered.data, "").numpy())

    shared = SharedMasks()
    cut_out(upright, shared)
    assert np.array_equal(cut_out(as_stored, shared), cut_out(as_stored, SharedMasks()))


SEEDS = [
    ("e_background_removal/c_scale,w_400/u_docs:road/fl_layer_apply,y_-200", (480, 530), 4, "png"),
    (
        "e_background_removal/c_scale,h_375/u_docs:bg_beach/c_scale,w_800/fl_layer_apply,g_south",
        (800, 600),
        3,
        "jpg",
    ),
    ("e_background_removal/e_dropshadow/c_scale,h_105", (140, 105), 4, "png"),
    ("e_background_removal/e_grayscale", (320, 240), 4, "png"),
]


@pytest.mark.parametrize(
    ("transformation", "size", "bands", "fmt"), SEEDS, ids=["road", "beach", "shadow", "grey"]
)
def test_seed_examples(
    files: dict[str, Path], transformation: str, size: tuple[int, int], bands: int, fmt: str
) -> None:
    rendered = run(transformation, files["photo"], files, segmenter=CornerSegmenter())
    decoded = pyvips.Image.new_from_buffer(rendered.data, "")
    assert ((decoded.width, decoded.height), decoded.bands, rendered.format) == (size, bands, fmt)
    check_golden(f"seed-{transformation.split('/')[1].replace(',', '-').replace(':', '-')}", rendered)


@pytest.mark.parametrize("extension", ["jpg", "png", "webp"])
def test_fl_strip_profile_is_what_every_output_is_already(files: dict[str, Path], extension: str) -> None:
    """Cloudinary's fl_strip_profile clears the metadata: every output here is written without any (an
    ICC profile's colours converted to sRGB first), so the flag is done, and the bytes are the plain
    render's."""
    photo = pyvips.Image.new_from_file(str(files["photo"]))
    with_metadata = photo.icc_transform("p3", embedded=False, input_profile="srgb").copy()
    with_metadata.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", "someone")
    data = with_metadata.jpegsave_buffer(keep="all")
    assert "icc-profile-data" in pyvips.Image.new_from_buffer(data, "").get_fields()
    stripped = run("c_scale,w_50,fl_strip_profile", data, files, extension=extension)
    plain = run("c_scale,w_50", data, files, extension=extension)
    assert stripped.data == plain.data
    fields = pyvips.Image.new_from_buffer(stripped.data, "").get_fields()
    assert not {"icc-profile-data", "exif-data", "xmp-data", "iptc-data"} & set(fields)

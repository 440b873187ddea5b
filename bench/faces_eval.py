"""The face detector (CenterFace, transform/faces) on a public face set with ground-truth boxes: recall and
precision at IoU 0.5, and time per photo.

The set: dlib's face-detection example set, ``examples/faces/{training,testing}.xml`` of the dlib
repository (davisking/dlib, commit 3d40bf5790ca9073c160cebb898800d9f33e12ab): 9 PASCAL VOC 2011
photographs with 43 hand-boxed faces (plus 3 other photos without boxes, which are skipped). It is
not committed here: point ``--faces`` at that folder. dlib's boxes are squares from the eyebrows to
the chin; CenterFace's run from the hairline to the chin and are taller, so IoU 0.5 is strict for
them: the "centre hit" column also counts a detection whose centre lies in a ground-truth box.

    .venv/bin/python bench/faces_eval.py --faces /path/to/dlib/examples/faces
"""

from __future__ import annotations

import argparse
import statistics
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pyvips

from transform.faces.centerface import default_detector

Box = tuple[float, float, float, float]  # left, top, width, height (pixels)


def iou(a: Box, b: Box) -> float:
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def load(folder: Path) -> dict[str, list[Box]]:
    truth: dict[str, list[Box]] = {}
    for name in ("training.xml", "testing.xml"):
        for image in ET.parse(folder / name).getroot().iter("image"):
            boxes = [
                (float(b.get("left", 0)), float(b.get("top", 0)), float(b.get("width", 0)),
                 float(b.get("height", 0)))
                for b in image.iter("box")
                if b.get("ignore") != "1"
            ]  # fmt: skip
            if boxes:
                truth[image.get("file", "")] = boxes
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, required=True, help="dlib's examples/faces folder")
    parser.add_argument("--threshold", type=float, default=0.5, help="IoU for a match")
    args = parser.parse_args()
    detector = default_detector()
    truth = load(args.faces)
    matched = found = total = centre_hits = 0
    times = []
    for name, boxes in sorted(truth.items()):
        image = pyvips.Image.new_from_file(str(args.faces / name))
        started = time.perf_counter()
        faces = detector.detect(image)
        times.append(time.perf_counter() - started)
        w, h = image.width, image.height
        detections = [(f.left * w, f.top * h, f.width * w, f.height * h) for f in faces]
        used: set[int] = set()
        for d in sorted(detections, key=lambda d: -d[2] * d[3]):
            best = max(range(len(boxes)), key=lambda i: iou(d, boxes[i]))
            if best not in used and iou(d, boxes[best]) >= args.threshold:
                used.add(best)
            cx, cy = d[0] + d[2] / 2, d[1] + d[3] / 2
            centre_hits += any(b[0] <= cx <= b[0] + b[2] and b[1] <= cy <= b[1] + b[3] for b in boxes)
        matched += len(used)
        found += len(detections)
        total += len(boxes)
        print(f"{name}: {len(boxes)} faces, {len(detections)} found, {len(used)} matched at IoU "
              f"{args.threshold}, {times[-1] * 1000:.0f} ms")  # fmt: skip
    print(f"\n{len(truth)} photos, {total} faces: recall {matched / total:.2f}, precision "
          f"{matched / max(found, 1):.2f} at IoU {args.threshold}; centre inside a true box: "
          f"{centre_hits}/{found} detections; "
          f"median {statistics.median(times) * 1000:.0f} ms per photo")  # fmt: skip


if __name__ == "__main__":
    main()

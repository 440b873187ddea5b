"""Issue 15's URL features against their plain counterparts, measured in the same run.

1. The avatar URL ``c_thumb,g_face,w_150,h_150`` of a 12-megapixel photo with a face (the astronaut from
   cutout/samples, upscaled to 4000x3000), as the server makes it (transform.render with the server's
   face cache, cutout.masks.CachedFaces, on a disk cache): the first request (the face detected, then the
   crop) and a request with the detection cached (another face URL of the same original), against a
   plain ``c_fill,w_150,h_150`` of the same photo.
2. A text overlay (``l_text:Arial_60_bold:...``, with and without ``stroke``) on a ``c_scale,w_1200`` of
   that photo, against the same render without the text.

    .venv/bin/python bench/faces_bench.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyvips

from cache import DiskBlobs
from cutout.masks import CachedFaces
from grammar import parse_transformation
from transform import FormatChoice, compile_plan, render
from transform.faces import FaceSource

ROOT = Path(__file__).resolve().parents[1]
FACE_PHOTO = ROOT / "cutout" / "samples" / "docs" / "rmv_bgd" / "woman_orig.jpg"
TEXT = "l_text:Arial_60_bold:Cutout%20on%20the%20pad,co_white/fl_layer_apply,g_south,y_40"
STROKE = ("l_text:Arial_60_bold_stroke:Cutout%20on%20the%20pad,co_white,bo_4px_solid_black"
          "/fl_layer_apply,g_south,y_40")


def make_original(folder: Path) -> Path:
    path = folder / "face_4000x3000.jpg"
    photo = pyvips.Image.new_from_file(str(FACE_PHOTO))
    photo.resize(4000 / photo.width, kernel="lanczos3").crop(0, 0, 4000, 3000).write_to_file(str(path), Q=90)
    return path


def renderer(transformation: str, path: Path, logo: Path | None = None
             ) -> Callable[[str, FaceSource | None], bytes]:
    """A render of ``path`` as the server makes it; ``logo``: the file every image layer reads."""
    plan = compile_plan(parse_transformation(transformation))
    layers = None if logo is None else (lambda public_id: (str(logo), "logo@1"))

    def run(source_key: str, faces: FaceSource | None) -> bytes:
        return render(plan, str(path), source_key=source_key, choice=FormatChoice("jpg"), faces=faces,
                      load_layer=layers).data

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    pyvips.cache_set_max(0)  # no operation cache: every round decodes the file again
    with tempfile.TemporaryDirectory() as tmp:
        path = make_original(Path(tmp))
        faces = CachedFaces(DiskBlobs(Path(tmp) / "cache", size_limit=1 << 26))
        thumb = renderer("c_thumb,g_face,w_150,h_150", path)
        other = renderer("c_thumb,g_face,w_150,h_150,z_0.7", path)
        fill = renderer("c_fill,w_150,h_150", path)
        plain = renderer("c_scale,w_1200", path)
        text = renderer("c_scale,w_1200/" + TEXT, path)
        stroke = renderer("c_scale,w_1200/" + STROKE, path)
        thumb("warm", faces), fill("warm", None), text("warm", None), stroke("warm", None)  # loaded, cached
        rows: dict[str, list[float]] = {k: [] for k in ("fill", "first", "cached", "plain", "text", "stroke")}
        runs = [("fill", fill, None), ("first", thumb, faces), ("cached", other, faces),
                ("plain", plain, None), ("text", text, None), ("stroke", stroke, None)]  # fmt: skip
        for round_ in range(args.rounds):  # interleaved, so load from other jobs hits all alike
            key = f"original@{round_}"  # a new original for the cache each round: nothing detected yet
            for name, run, source in runs:
                started = time.perf_counter()
                run(key, source)
                rows[name].append(time.perf_counter() - started)
        ms = {k: statistics.median(v) * 1000 for k, v in rows.items()}

        def line(label: str, name: str, reference: str) -> None:
            print(f"  {label:<42} {ms[name]:8.1f} ms   {ms[name] / ms[reference]:.2f}")

        print(f"12 MP JPEG (4000x3000, one face), median of {args.rounds}:")
        line("c_fill,w_150,h_150", "fill", "fill")
        line("c_thumb,g_face,w_150,h_150, first", "first", "fill")
        line("c_thumb,g_face (z_0.7), detection cached", "cached", "fill")
        print("text overlay on c_scale,w_1200 of it:")
        line("c_scale,w_1200", "plain", "plain")
        line("+ l_text:Arial_60_bold", "text", "plain")
        line("+ l_text:Arial_60_bold_stroke, bo_4px", "stroke", "plain")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

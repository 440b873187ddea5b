"""A layer placed on faces (issue 15) against the same layer placed at a compass point, in the same run.

On a ``c_scale,w_1200`` of a 12-megapixel photo with a face (the astronaut from cutout/samples, upscaled to
4000x3000), as the server makes it (transform.render with the server's face cache, cutout.masks.CachedFaces,
on a disk cache): the layer ``l_<logo>/c_scale,fl_region_relative,w_1.1/fl_layer_apply,g_faces`` with the
detection made in that request (a new original each round) and with it cached (another face URL of the same
original asked first), against ``l_<logo>/c_scale,w_100/fl_layer_apply,g_north_east`` and the render without
any layer.

    .venv/bin/python bench/face_layers_bench.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyvips

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.faces_bench import make_original, renderer  # noqa: E402
from cache import DiskBlobs  # noqa: E402
from cutout.masks import CachedFaces  # noqa: E402


def make_files(folder: Path) -> tuple[Path, Path]:
    """The 12 MP face photo of faces_bench, and a small opaque logo to place on it."""
    logo = folder / "logo.png"
    (pyvips.Image.black(200, 80) + [250, 200, 20]).bandjoin(255).cast("uchar").copy(
        interpretation="srgb"
    ).write_to_file(str(logo))
    return make_original(folder), logo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    pyvips.cache_set_max(0)  # no operation cache: every round decodes the file again
    with tempfile.TemporaryDirectory() as tmp:
        path, logo = make_files(Path(tmp))
        faces = CachedFaces(DiskBlobs(Path(tmp) / "cache", size_limit=1 << 26))
        plain = renderer("c_scale,w_1200", path, logo)
        compass = renderer("c_scale,w_1200/l_logo/c_scale,w_100/fl_layer_apply,g_north_east", path, logo)
        on_faces = renderer("c_scale,w_1200/l_logo/c_scale,fl_region_relative,w_1.1/fl_layer_apply,g_faces",
                            path, logo)  # fmt: skip
        other = renderer("c_scale,w_1200/e_blur_faces", path, logo)  # the same detection, asked first
        plain("warm", None), compass("warm", None), on_faces("warm", faces)  # models loaded
        rows: dict[str, list[float]] = {k: [] for k in ("plain", "compass", "first", "cached")}
        for round_ in range(args.rounds):  # interleaved, so load from other jobs hits all alike
            new, seen = f"original@{round_}", f"seen@{round_}"
            other(seen, faces)  # not timed: puts the detection of "seen" in the cache
            for name, run, key, source in [("plain", plain, new, None), ("compass", compass, new, None),
                                           ("first", on_faces, new, faces),
                                           ("cached", on_faces, seen, faces)]:  # fmt: skip
                started = time.perf_counter()
                run(key, source)
                rows[name].append(time.perf_counter() - started)
        ms = {k: statistics.median(v) * 1000 for k, v in rows.items()}

        def line(label: str, name: str) -> None:
            print(f"  {label:<52} {ms[name]:8.1f} ms   {ms[name] / ms['compass']:.2f}")

        print(f"c_scale,w_1200 of a 12 MP JPEG (4000x3000, one face), median of {args.rounds}, "
              "ratio to the compass layer:")  # fmt: skip
        line("no layer", "plain")
        line("l_logo/c_scale,w_100/fl_layer_apply,g_north_east", "compass")
        line("l_logo/...fl_region_relative,w_1.1/...,g_faces, first", "first")
        line("the same, detection cached", "cached")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

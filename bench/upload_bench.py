"""The Upload API (issue 11), each figure against a reference measured in the same run (loopback only):

1. Uploads per second of a 2 MB JPEG (no background removal) through Cloudinary's own SDK against a real
   `cutout serve`, one client after the other, against plain PUTs of the same bytes into the originals
   store (``FolderOriginals.write`` in this process: the least an upload must do). Target >= 0.5x.
2. The time from the upload of a 12 MP photo with ``background_removal=cloudinary_ai`` to its signed
   notification, against the bare background removal of the same photo in this process
   (``cutout remove-bg``'s own function: decode, model, cut-out, PNG). Target <= 1.2x. Every round uses
   a photo of new content, so no mask cache helps either side.

Cases alternate, the reference first in every round; medians are reported.

    .venv/bin/python bench/upload_bench.py [--uploads 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyvips

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cache import FolderOriginals  # noqa: E402
from tests.app.server_process import ServerProcess  # noqa: E402

PHOTO = ROOT / "cutout" / "samples" / "docs" / "rmv_bgd" / "dog_couch_orig.jpg"
CLOUD, KEY, SECRET = "bench", "111222333444555", "bench-secret"


def jpeg(width: int, height: int, marker: int) -> bytes:
    """The sample photo at ``width`` x ``height`` with a little sensor-like noise (so it compresses like
    a photo, not like an upscaled one), and a pixel that makes each ``marker`` new content."""
    image = pyvips.Image.new_from_file(str(PHOTO)).thumbnail_image(width, height=height, size="force")
    noise = pyvips.Image.gaussnoise(width, height, sigma=10, mean=0)
    image = (image + noise).cast("uchar").draw_rect([marker % 256, 7, 7], 0, 0, 1, 1, fill=True)
    data: bytes = image.jpegsave_buffer(Q=92)
    return data


class Notifications:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.condition = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with owner.condition:
                    owner.arrived[body["public_id"]] = time.perf_counter()
                    owner.condition.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait(self, public_id: str, timeout: float = 600) -> float:
        with self.condition:
            self.condition.wait_for(lambda: public_id in self.arrived, timeout)
            return self.arrived[public_id]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=30, help="uploads (and puts) per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import cloudinary
    import cloudinary.uploader

    from cutout.cmd_remove_bg import process
    from transform.segment import load_segmenter

    work = Path(tempfile.mkdtemp(prefix="upload-bench-"))
    (work / "originals").mkdir()
    (work / "puts").mkdir()
    env = {"CUTOUT_UPLOAD": "1", "CUTOUT_API_KEY": KEY, "CUTOUT_API_SECRET": SECRET,
           "CUTOUT_FETCH_ALLOW_PRIVATE": "1"}  # fmt: skip
    server = ServerProcess(work / "originals", work / "cache", env=env)
    server.wait_ready()
    cloudinary.config(cloud_name=CLOUD, api_key=KEY, api_secret=SECRET, upload_prefix=server.url)
    store = FolderOriginals(work / "puts")
    hooks = Notifications()
    segmenter = load_segmenter()
    small = jpeg(2450, 1840, 0)
    print(f"1. {len(small) / 1e6:.2f} MB JPEG, {args.uploads} per round; 2. 4000x3000 photo", flush=True)
    throughput, latency = [], []
    try:
        for round_ in range(args.rounds):
            started = time.perf_counter()
            for i in range(args.uploads):
                store.write(f"r{round_}/p{i}", "jpg", small)
            puts = args.uploads / (time.perf_counter() - started)
            started = time.perf_counter()
            for i in range(args.uploads):
                cloudinary.uploader.upload(small, public_id=f"r{round_}/u{i}")
            uploads = args.uploads / (time.perf_counter() - started)
            throughput.append(uploads / puts)

            photo = jpeg(4000, 3000, round_ + 1)
            source = work / f"photo{round_}.jpg"
            source.write_bytes(photo)
            started = time.perf_counter()
            process(segmenter, source, work / f"bare{round_}.png", mask_only=False, fine_edges=False)
            bare = time.perf_counter() - started
            photo = jpeg(4000, 3000, round_ + 101)  # new content: the server's mask cache cannot help
            public_id = f"big/r{round_}"
            started = time.perf_counter()
            cloudinary.uploader.upload(photo, public_id=public_id, background_removal="cloudinary_ai",
                                       notification_url=hooks.url)  # fmt: skip
            notified = hooks.wait(public_id) - started
            latency.append(notified / bare)
            print(f"round {round_ + 1}: puts {puts:.1f}/s, uploads {uploads:.1f}/s ({uploads / puts:.2f}x); "
                  f"bare removal {bare:.2f} s, upload to notification {notified:.2f} s "
                  f"({notified / bare:.2f}x)", flush=True)  # fmt: skip
    finally:
        server.stop()
    print(f"median: uploads / puts {statistics.median(throughput):.2f}x (target >= 0.5); upload-to-"
          f"notification / bare removal {statistics.median(latency):.2f}x (target <= 1.2)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

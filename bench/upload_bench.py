"""The Upload API (issue 11), each figure against a reference measured in the same run (loopback only):

1. Uploads per second of a 2 MB JPEG (no background removal) to a real `cutout serve`, against plain
   HTTP PUTs of the same bytes into the originals store it writes to, with the same number of concurrent
   clients (``--clients``). Target >= 0.5x. One row per originals store:

   - folder: the reference is nginx's WebDAV module (``dav_methods PUT``) writing into the same folder.
     The uploads are sent by the same client as the PUTs (urllib3, the file's bytes as they are, in the
     multipart body the SDK builds, signed as it signs), so the ratio compares the two servers; a second
     row sends them through Cloudinary's own SDK (whose client builds the multipart body in Python), a
     third has ``FolderOriginals.write`` in this process (no HTTP at all).
   - S3: the reference is boto3's ``put_object`` into a real SeaweedFS (``weed server -s3``, as the
     scale tests start it), beside a `cutout serve` with ``CUTOUT_ORIGINALS=s3://bucket/originals``;
     uploads through the SDK. ``--no-s3`` skips it.

   ``--pages``: see ``recycle`` below (this machine's memory makes a write into new pages cost several
   times a write into pages just freed, so both folder servers are given the same kind).

   Each case also reports the CPU each call cost the server's processes (from /proc: the machine's load
   moves it far less than it moves the rates) and this client process; "server CPU, nginx PUT / upload"
   is the ratio of the two servers' CPU per request.

2. The time from the upload of a 12 MP photo with ``background_removal=cloudinary_ai`` to its signed
   notification, against the bare background removal of the same photo in this process
   (``cutout remove-bg``'s own function: decode, model, cut-out, PNG). Target <= 1.2x. Every round uses
   a photo of new content, so no mask cache helps either side. ``--latency-rounds 0`` skips it.

Cases alternate, the reference first in every round; medians are reported.

    .venv/bin/python bench/upload_bench.py [--uploads 40] [--seconds 2] [--clients 4] [--rounds 3]
        [--latency-rounds 1] [--no-s3] [--pages recycled|fresh]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyvips

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cache import FolderOriginals  # noqa: E402
from tests.app.server_process import ServerProcess, free_port  # noqa: E402
from tests.scale.servers import ACCESS_KEY, SECRET_KEY, SeaweedS3, weed_binary  # noqa: E402

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


class WebDav:
    """nginx (Debian's build has ``http_dav_module``) taking plain PUTs into ``root``: it writes each body
    to a temporary file and renames it into place, as an atomic write of an original must."""

    def __init__(self, binary: str, root: Path, prefix: Path) -> None:
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "body").mkdir(exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        user = "user root;\n" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/error.log;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {prefix}/body;\n"
            f"  server {{\n    listen 127.0.0.1:{self.port};\n    root {root};\n"
            "    client_max_body_size 64m;\n    client_body_buffer_size 4m;\n"
            "    dav_methods PUT;\n    create_full_put_path on;\n    dav_access user:rw group:r all:r;\n"
            "  }\n}\n"
        )  # fmt: skip
        self.process = subprocess.Popen([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                        start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                import urllib3

                urllib3.request("GET", self.url + "/", timeout=1, retries=False)
                return
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError((prefix / "error.log").read_text()[-2000:]) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@dataclass(frozen=True)
class Measured:
    """One case of one round: calls per second, and the CPU each call cost the server side (every
    process of its group, from /proc: load-independent, unlike the rate) and this client process."""

    rate: float
    server_ms: float
    client_ms: float

    def __str__(self) -> str:
        return f"{self.rate:.1f}/s (server {self.server_ms:.2f} ms CPU, client {self.client_ms:.2f} ms CPU)"


def group_cpu(group: int | None) -> float:
    """CPU seconds (user + system) used so far by the processes of the process group ``group`` (each
    server here is started in its own session: its workers and threads are counted, nothing else)."""
    if group is None:
        return 0.0
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == group:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rate(count: int, clients: int, one: Callable[[int], object], least: float = 0.0,
         group: int | None = None) -> Measured:  # fmt: skip
    """Calls of ``one(i)`` per second, spread over ``clients`` threads: ``count`` of them, and batches of
    ``count`` more until ``least`` seconds have passed (a fast reference measured over 80 ms would be
    one scheduler hiccup away from any figure). ``group``: the server's process group, for its CPU."""
    done = 0
    with ThreadPoolExecutor(clients) as pool:
        server, client = group_cpu(group), time.process_time()
        started = time.perf_counter()
        while done == 0 or time.perf_counter() - started < least:
            for answer in pool.map(one, range(done, done + count)):
                assert answer is not None
            done += count
        elapsed = time.perf_counter() - started
        server, client = group_cpu(group) - server, time.process_time() - client
    return Measured(done / elapsed, 1000 * server / done, 1000 * client / done)


class SignedForm:
    """The multipart body the SDK sends for ``upload(data, public_id=...)`` (its fields, signed as it
    signs them), sent by plain urllib3 as three chunks (head, the file's own bytes, tail): the same
    client and the same bytes as the PUTs, so that the ratio compares the servers, not the clients."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def body(self, public_id: str) -> tuple[list[bytes], dict[str, str]]:
        import cloudinary.utils

        params = {"public_id": public_id, "timestamp": str(int(time.time()))}
        params["signature"] = cloudinary.utils.api_sign_request(params, SECRET)
        params["api_key"] = KEY
        boundary = uuid.uuid4().hex
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in params.items()
        ) + (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="file"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
        tail = f"\r\n--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}",
                   "Content-Length": str(len(head) + len(self.data) + len(tail))}  # fmt: skip
        return [head, self.data, tail], headers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=40, help="uploads (and puts) per batch")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients, the same for every case")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-rounds", type=int, default=1, help="rounds of figure 2 (0: skip it)")
    parser.add_argument("--seconds", type=float, default=2.0, help="each case: batches until this long")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 case (SeaweedFS)")
    parser.add_argument("--pages", choices=("recycled", "fresh"), default="recycled",
                        help="folder cases: remove each file once answered, so that every write takes "
                             "page-cache pages just freed (recycled), or keep them all (fresh)")
    args = parser.parse_args()

    import cloudinary
    import cloudinary.uploader
    import cloudinary.utils
    import urllib3

    work = Path(tempfile.mkdtemp(prefix="upload-bench-"))
    (work / "originals").mkdir()
    env = {"CUTOUT_UPLOAD": "1", "CUTOUT_API_KEY": KEY, "CUTOUT_API_SECRET": SECRET,
           "CUTOUT_FETCH_ALLOW_PRIVATE": "1"}  # fmt: skip
    servers: list[Any] = []
    try:
        folder = ServerProcess(work / "originals", work / "cache", env=env)
        servers.append(folder)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        dav = WebDav(nginx, work / "originals", work / "nginx") if Path(nginx).exists() else None
        if dav is not None:
            servers.append(dav)
        weed = None if args.no_s3 else weed_binary()
        s3 = s3_server = None
        if weed is not None:
            s3 = SeaweedS3(weed, work / "seaweed")
            servers.append(s3)
            s3.client().create_bucket(Bucket="bench")
            s3_server = ServerProcess("s3://bench/originals", work / "cache-s3",  # type: ignore[arg-type]
                                      env={**env, **s3.env()})  # fmt: skip
            servers.append(s3_server)
            s3_server.wait_ready()
        folder.wait_ready()
        cloudinary.config(cloud_name=CLOUD, api_key=KEY, api_secret=SECRET, upload_prefix=folder.url)
        # The SDK's own connector, with a connection per client kept open (as the references have).
        cloudinary.uploader._http = cloudinary.utils.get_http_connector(
            cloudinary.config(), {**cloudinary.CERT_KWARGS, "maxsize": args.clients}
        )
        # The client of the PUTs and of the "uploads" rows; the "through the SDK" rows use the SDK's.
        http = urllib3.PoolManager(maxsize=args.clients)
        boto = None
        if s3 is not None:
            import boto3
            from botocore.config import Config

            boto = boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=ACCESS_KEY,
                                aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                                config=Config(max_pool_connections=args.clients))  # fmt: skip
        store = FolderOriginals(work / "originals")
        small = jpeg(2450, 1840, 0)
        print(f"1. {len(small) / 1e6:.2f} MB JPEG, batches of {args.uploads} for {args.seconds} s per case "
              f"and round, {args.clients} clients"
              f"{'' if dav else '; nginx not found: no WebDAV reference'}"
              f"{'' if s3 else '; no S3 case (--no-s3, or weed not found)'}", flush=True)  # fmt: skip
        cases: dict[str, list[float]] = {}

        form = SignedForm(small)

        def measure(one: Callable[[int], object], group: int | None = None) -> Measured:
            return rate(args.uploads, args.clients, one, args.seconds, group)

        def upload(prefix: str, server: ServerProcess) -> Callable[[int], object]:
            def one(i: int) -> object:
                answer = cloudinary.uploader.upload(small, public_id=f"{prefix}/u{i}",
                                                    upload_prefix=server.url)  # fmt: skip
                if server is folder:
                    recycle(f"{prefix}/u{i}.jpg")
                return answer

            return one

        def post(prefix: str, server: ServerProcess) -> Callable[[int], object]:
            def one(i: int) -> object:
                body, headers = form.body(f"{prefix}/u{i}")
                answer = http.request("POST", f"{server.url}/v1_1/{CLOUD}/image/upload", body=body,
                                      headers=headers)  # fmt: skip
                assert answer.status == 200, answer.data[:300]
                if server is folder:
                    recycle(f"{prefix}/u{i}.jpg")
                return answer.status

            return one

        def put(prefix: str) -> Callable[[int], object]:
            def one(i: int) -> object:
                assert dav is not None
                answer = http.request("PUT", f"{dav.url}/{prefix}/p{i}.jpg", body=small,
                                      headers={"Content-Type": "image/jpeg"})  # fmt: skip
                assert answer.status in (201, 204), answer.status
                recycle(f"{prefix}/p{i}.jpg")
                return answer.status

            return one

        def write(prefix: str) -> Callable[[int], object]:
            def one(i: int) -> object:
                found = store.write(f"w-{prefix}/p{i}", "jpg", small)
                recycle(f"w-{prefix}/p{i}.jpg")
                return found

            return one

        def recycle(name: str) -> None:
            """This VM (Firecracker, free page reporting) hands the host back memory freed a while ago:
            a page touched again then costs a host fault, about 3.5 ms of CPU per 2 MB written into new
            page-cache pages against 0.6 ms into pages just freed. Whoever writes first into such pages
            pays, so both servers' files are removed as soon as answered (``--pages recycled``: every
            write takes pages just freed, as on a machine whose page cache is full) or none are
            (``fresh``); removing one case's files before another case runs would favour that one."""
            if args.pages == "recycled":
                (work / "originals" / name).unlink()

        def put_object(prefix: str) -> Callable[[int], object]:
            assert boto is not None
            return lambda i: boto.put_object(Bucket="bench", Key=f"puts/{prefix}/p{i}.jpg", Body=small,
                                             ContentType="image/jpeg")  # fmt: skip

        # Warm every path once (connections, SeaweedFS's first volume, the servers' first requests).
        warm = [write("warm"), upload("warm", folder), post("warm-post", folder)]
        if dav is not None:
            warm.append(put("warm"))
        if boto is not None and s3_server is not None:
            warm += [put_object("warm"), upload("warm-s3", s3_server)]
        for one in warm:
            rate(args.clients, args.clients, one)
        dav_group = dav.process.pid if dav is not None else None
        for round_ in range(args.rounds):
            r = f"r{round_}"
            figures: dict[str, Measured] = {}
            if dav is not None:
                figures["folder: nginx WebDAV PUT"] = measure(put(f"dav-{r}"), dav_group)
            here = folder.process.pid
            figures["folder: uploads"] = measure(post(f"post-{r}", folder), here)
            figures["folder: uploads through the SDK"] = measure(upload(f"up-{r}", folder), here)
            figures["folder: in-process FolderOriginals.write"] = measure(write(r))
            if boto is not None and s3_server is not None and s3 is not None:
                figures["S3: put_object"] = measure(put_object(r), s3.process.pid)
                figures["S3: uploads through the SDK"] = measure(upload(f"up-{r}", s3_server),
                                                                 s3_server.process.pid)  # fmt: skip
            print(f"round {round_ + 1}:", flush=True)
            for name, figure in figures.items():
                print(f"  {name}: {figure}", flush=True)
            ratios = {
                "folder / WebDAV": ("folder: uploads", "folder: nginx WebDAV PUT"),
                "folder (SDK) / WebDAV": ("folder: uploads through the SDK", "folder: nginx WebDAV PUT"),
                "folder / in-process write": ("folder: uploads", "folder: in-process FolderOriginals.write"),
                "S3 (SDK) / put_object": ("S3: uploads through the SDK", "S3: put_object"),
            }
            shown = []
            for name, (top, bottom) in ratios.items():
                if top in figures and bottom in figures:
                    ratio = figures[top].rate / figures[bottom].rate
                    cases.setdefault(name, []).append(ratio)
                    shown.append(f"{name} {ratio:.2f}x")
            if "folder: nginx WebDAV PUT" in figures:  # the servers' own CPU: what the load cannot move
                ratio = figures["folder: nginx WebDAV PUT"].server_ms / figures["folder: uploads"].server_ms
                cases.setdefault("server CPU, nginx PUT / upload", []).append(ratio)
                shown.append(f"server CPU, nginx PUT / upload {ratio:.2f}x")
            print("  " + ", ".join(shown), flush=True)
        print("median: " + ", ".join(f"{k} {statistics.median(v):.2f}x" for k, v in cases.items())
              + " (target >= 0.5)", flush=True)  # fmt: skip
        if args.latency_rounds:
            latency(folder, work, args.latency_rounds)
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(work, ignore_errors=True)  # gigabytes of copies of one photo
    return 0


def latency(server: ServerProcess, work: Path, rounds: int) -> None:
    import cloudinary.uploader

    from cutout.cmd_remove_bg import process
    from transform.segment import load_segmenter

    hooks = Notifications()
    segmenter = load_segmenter()
    ratios = []
    for round_ in range(rounds):
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
                                   notification_url=hooks.url, upload_prefix=server.url)  # fmt: skip
        notified = hooks.wait(public_id) - started
        ratios.append(notified / bare)
        print(f"2. round {round_ + 1}: bare removal {bare:.2f} s, upload to notification {notified:.2f} s "
              f"({notified / bare:.2f}x)", flush=True)  # fmt: skip
    median = statistics.median(ratios)
    print(f"2. median: upload-to-notification / bare removal {median:.2f}x (target <= 1.2)")


if __name__ == "__main__":
    sys.exit(main())

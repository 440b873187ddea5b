"""The HTTP API (issue 12) against references measured in the same run, on a real ``cutout serve`` with
the real model (loopback only).

1. ``rps``: requests/s of ``POST /v1/remove-background?channels=alpha`` (the photo sent as the body) for
   an image whose mask is cached, against a cached hit of the delivery URL of the very same result
   (the URL the API itself gives with ``output=json&encoding=url``), both with wrk. Target >= 0.5x.
   Two reference lines, not the ratio: what a bare POST of the same photo costs when Starlette answers it
   at once (405, body unread), and the true floor, a raw ASGI app under the same uvicorn settings that
   reads the same body and answers with the same bytes as the hit (``--floor-server``, a process of its
   own started by the bench). And the same POST with a new Content-Type parameter each time: a repeat
   that the API's front has not seen byte for byte, recognised by the sha256 of its body.
2. ``latency``: a sync ``POST`` of a new 1-megapixel photo (the cut-out, PNG, every result field), against
   the bare mask time of the same photo (the segmenter on the decoded image, in this process, one at a
   time, interleaved with the requests). Target <= 1.15x.
3. ``memory``: the server's peak resident memory (sampled every 10 ms over its processes) while 20
   clients upload 20 different 25 MB images at once (``async=true``: answered once stored); the peak
   with the first task running is printed too. Target < 1.5 GB.

    .venv/bin/python bench/api_bench.py [--only rps,latency,memory] [--seconds 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pyvips

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.app.server_process import ServerProcess, free_port  # noqa: E402

SAMPLES = ROOT / "cutout" / "samples"
EVAL = ROOT.parent / "shared" / "eval" / "alphamatting_train_lowres" / "image"
API = "/v1/remove-background"
ENV = {"CUTOUT_API_OPEN": "1", "CUTOUT_API_WAIT_SECONDS": "300"}


def start(tmp: Path, name: str, env: dict[str, str] | None = None) -> ServerProcess:
    originals = tmp / f"{name}-originals"
    shutil.copytree(SAMPLES, originals)
    server = ServerProcess(originals, tmp / f"{name}-cache", env={**ENV, **(env or {})})
    server.wait_ready(path="/readyz", timeout=300)
    return server


def wrk(
    url: str, seconds: int, connections: int, script: Path | None = None, errors_ok: bool = False
) -> float:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors and not errors_ok:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def floor_server(port: int, answer: Path) -> None:
    """A raw ASGI app (no Starlette) under uvicorn with ``cutout serve``'s options: it reads the request's
    whole body and answers with ``answer``'s bytes as a PNG. What a POST of the photo costs uvicorn and
    wrk, with nothing of cutout's."""
    import uvicorn

    body = answer.read_bytes()
    headers = [(b"content-type", b"image/png"), (b"content-length", str(len(body)).encode())]

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                proxy_headers=False, server_header=False, lifespan="off")


def start_floor(tmp: Path, answer: bytes) -> tuple[subprocess.Popen[bytes], str]:
    path = tmp / "floor-answer.png"
    path.write_bytes(answer)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--floor-server", str(port), str(path)], cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(url, content=b"x", timeout=2)
            return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise TimeoutError("the floor server did not start")


def rps(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    photo = SAMPLES / "docs" / "rmv_bgd" / "dog_couch_orig.jpg"
    server = start(tmp, "rps")
    floor_process = None
    try:
        first = httpx.post(
            server.url + API,
            content=photo.read_bytes(),
            timeout=300,
            headers={"Content-Type": "image/jpeg"},
            params={"channels": "alpha", "output": "json", "encoding": "url"},
        )
        first.raise_for_status()
        delivery = first.json()["image"]
        api_bytes = httpx.post(
            server.url + API,
            content=photo.read_bytes(),
            timeout=60,
            headers={"Content-Type": "image/jpeg"},
            params={"channels": "alpha"},
        )
        assert api_bytes.content == httpx.get(delivery, timeout=60).content, "not the same result"
        # The repeat the bench times is answered by the API's front (cutout/api/front.py), the first one
        # by the route: the same answer, but for uvicorn's Date.
        again = httpx.post(
            server.url + API,
            content=photo.read_bytes(),
            timeout=60,
            headers={"Content-Type": "image/jpeg"},
            params={"channels": "alpha"},
        )
        undated = [[(k, v) for k, v in r.headers.multi_items() if k != "date"] for r in (api_bytes, again)]
        assert undated[0] == undated[1] and again.content == api_bytes.content, "the repeat differs"
        floor_process, floor_url = start_floor(tmp, api_bytes.content)
        script = tmp / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f'local f = io.open("{photo}", "rb")\nwrk.body = f:read("*all")\nf:close()\n'
            'wrk.headers["Content-Type"] = "image/jpeg"\n'
        )
        # The same request, but each one's Content-Type carries a new parameter: a repeat that the front
        # has not seen byte for byte, so it is recognised by the sha256 of its body (the first repeat of
        # a request in each process, or one whose headers differ).
        hashed = tmp / "post-hashed.lua"
        hashed.write_text(
            script.read_text()
            # 400 requests made once per wrk thread (more than the front keeps: each is new to it by
            # the time it comes again), so wrk does no more work per request than for the plain POST.
            + "local made, n = {}, 0\n"
            + "init = function()\n  for i = 1, 400 do\n"
            + '    made[i] = wrk.format(nil, nil, {["Content-Type"] = "image/jpeg; n=" .. i})\n'
            + "  end\nend\n"
            + "request = function()\n  n = n % 400 + 1\n  return made[n]\nend\n"
        )
        print(f"photo {photo.name} ({photo.stat().st_size} bytes); reference {delivery}", flush=True)
        ratios, floors, raws, hits, posts, hasheds = [], [], [], [], [], []
        for round_ in range(args.rounds):
            hit = wrk(delivery, args.seconds, 16)
            post = wrk(server.url + API + "?channels=alpha", args.seconds, 16, script)
            # The floor: the same POST answered at once by Starlette without reading the body (405 on
            # /healthz): what sending the photo costs uvicorn and wrk before the API does anything.
            floor = wrk(server.url + "/healthz", args.seconds, 16, script, errors_ok=True)
            # The true floor: a raw ASGI app under uvicorn reads the same body, answers the same bytes.
            raw = wrk(floor_url, args.seconds, 16, script)
            by_hash = wrk(server.url + API + "?channels=alpha", args.seconds, 16, hashed)
            hasheds.append(by_hash / hit)
            hits.append(hit)
            posts.append(post)
            ratios.append(post / hit)
            floors.append(floor / hit)
            raws.append(raw / hit)
            print(
                f"round {round_ + 1}: delivery hit {hit:.0f}/s, API POST {post:.0f}/s, "
                f"ratio {post / hit:.2f}; "
                f"bare POST of the photo (405) {floor:.0f}/s, ratio {floor / hit:.2f}; "
                f"raw ASGI POST {raw:.0f}/s, ratio {raw / hit:.2f}; "
                f"API POST recognised by its sha256 {by_hash:.0f}/s, ratio {by_hash / hit:.2f}",
                flush=True,
            )
        result = {
            "hit": statistics.median(hits),
            "post": statistics.median(posts),
            "ratio": statistics.median(ratios),
            "floor": statistics.median(floors),
            "raw": statistics.median(raws),
            "hashed": statistics.median(hasheds),
        }
        print(
            f"RPS: API POST / delivery hit = {result['ratio']:.2f} (median; target >= 0.5); references: a "
            f"bare POST of the same photo (Starlette's 405) / delivery hit = {result['floor']:.2f}, a raw "
            f"ASGI POST of it (the floor) / delivery hit = {result['raw']:.2f}, the API POST recognised by "
            f"the sha256 of its body, not byte for byte / delivery hit = {result['hashed']:.2f}",
            flush=True,
        )
        return result
    finally:
        if floor_process is not None:
            floor_process.terminate()
            floor_process.wait(timeout=30)
        server.stop()


def photos(count: int) -> list[bytes]:
    """``count`` different 1-megapixel JPEGs (the evaluation photos scaled up, else the samples)."""
    sources = sorted(EVAL.glob("*.png"))[:count] if EVAL.is_dir() else []
    if len(sources) < count:
        sources = sorted((SAMPLES / "docs" / "rmv_bgd").glob("*.jpg")) * count
    out = []
    for i, path in enumerate(sources[:count]):
        image = (
            pyvips.Image.new_from_file(str(path)).flatten()
            if path.suffix == ".png"
            else pyvips.Image.new_from_file(str(path))
        )
        scale = (1_000_000 / (image.width * image.height)) ** 0.5
        image = image.resize(scale, kernel="lanczos3")
        if i >= len(set(sources)):  # a repeated sample: change it, so the server sees a new image
            image = image.flip("horizontal") if i % 2 else image.rot180()
        out.append(image.jpegsave_buffer(Q=90))
    return out


def latency(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    from transform.segment import load_segmenter

    segmenter = load_segmenter()
    server = start(tmp, "latency")
    try:
        samples = photos(args.photos)
        warm = pyvips.Image.new_from_buffer(samples[0], "")
        segmenter.segment(warm, fine_edges=False)  # both sessions warm before anything is timed
        httpx.post(
            server.url + API, content=samples[0], headers={"Content-Type": "image/jpeg"}, timeout=300
        ).raise_for_status()
        bare, api = [], []
        for i, data in enumerate(samples[1:], 1):
            started = time.perf_counter()
            segmenter.segment(pyvips.Image.new_from_buffer(data, "").copy_memory(), fine_edges=False)
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            answer = httpx.post(
                server.url + API, content=data, headers={"Content-Type": "image/jpeg"}, timeout=300
            )
            api.append(time.perf_counter() - started)
            answer.raise_for_status()
            assert answer.status_code == 200, answer.status_code
            print(
                f"photo {i}: {answer.headers['x-width']}x{answer.headers['x-height']}, bare mask "
                f"{bare[-1]:.2f} s, API {api[-1]:.2f} s, ratio {api[-1] / bare[-1]:.2f}",
                flush=True,
            )
        # Each photo's pair was measured back to back: the median of the pairs' ratios is the figure
        # (the ratio of the medians mixes photos, and on a loaded machine, moments).
        result = {
            "bare": statistics.median(bare),
            "api": statistics.median(api),
            "ratio": statistics.median(a / b for a, b in zip(api, bare, strict=True)),
            "ratio_of_medians": statistics.median(api) / statistics.median(bare),
        }
        print(
            f"LATENCY: API sync / bare mask = {result['ratio']:.2f} (median of the photos' ratios; target "
            f"<= 1.15); medians {result['api']:.2f} s / {result['bare']:.2f} s "
            f"= {result['ratio_of_medians']:.2f}",
            flush=True,
        )
        return result
    finally:
        server.stop()


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its children (uvicorn's workers)."""
    total = 0
    pids = [pid] + [
        int(p)
        for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    ]
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except FileNotFoundError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(match.group(1)) * 1024 if match else 0
    return total


def big_images(count: int, size: int) -> list[bytes]:
    """``count`` different uncompressed PNGs of just under ``size`` bytes (a photo scaled up)."""
    side = int((size / 3) ** 0.5) - 2
    photo = pyvips.Image.new_from_file(str(SAMPLES / "docs" / "rmv_bgd" / "woman_orig.jpg"))
    base = photo.resize(side / photo.width, vscale=side / photo.height, kernel="linear")
    out = []
    for i in range(count):
        marked = base.draw_rect([i * 12 % 255, 40, 200], 0, 0, 8 + i, 8, fill=True)
        out.append(marked.pngsave_buffer(compression=0, keep="none"))
    return out


def memory(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    images = big_images(20, 25_000_000)
    server = start(tmp, "memory", {"CUTOUT_MAX_UPLOAD_BYTES": "25M"})
    try:
        idle = tree_rss(server.process.pid)
        peak = idle
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, tree_rss(server.process.pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def upload(data: bytes) -> int:
            response = httpx.post(
                server.url + API,
                content=data,
                timeout=300,
                headers={"Content-Type": "image/png"},
                params={"async": "true"},
            )
            return response.status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(len(images)) as pool:
            statuses = list(pool.map(upload, images))
        took = time.perf_counter() - started
        uploads_peak = peak
        time.sleep(args.after)  # the first tasks run meanwhile
        stop.set()
        sampler.join()
        assert statuses == [202] * len(images), statuses
        mb = 1 << 20
        print(
            f"20 uploads of {len(images[0]) / 1e6:.1f} MB in {took:.1f} s; "
            f"server RSS idle {idle / mb:.0f} MiB, "
            f"peak during the uploads {uploads_peak / mb:.0f} MiB, peak with {args.after:.0f} s of tasks "
            f"after {peak / mb:.0f} MiB (target < 1536 MiB)",
            flush=True,
        )
        return {"idle": idle / mb, "uploads": uploads_peak / mb, "after": peak / mb}
    finally:
        server.stop()


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--floor-server":  # the bench's own child process
        floor_server(int(sys.argv[2]), Path(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="rps,latency,memory")
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration of each rps measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--photos", type=int, default=6, help="1 MP photos timed (the first warms up)")
    parser.add_argument("--after", type=float, default=15.0, help="seconds of task work sampled after")
    args = parser.parse_args()
    chosen = [name for name in args.only.split(",") if name]
    benches = {"rps": rps, "latency": latency, "memory": memory}
    unknown = sorted(set(chosen) - set(benches))
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}")
    if "rps" in chosen and not shutil.which("wrk"):
        print("rps: skipped (wrk not installed)")
        chosen.remove("rps")
    print(f"{os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="api-bench-") as folder:
        for name in chosen:
            print(f"== {name}", flush=True)
            benches[name](args, Path(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())

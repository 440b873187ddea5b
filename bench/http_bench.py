"""HTTP throughput of the origin, with the reference measured in the same run (loopback only).

1. A cached hit at 64 connections (wrk): nginx serving the same bytes as a static file (reference),
   the origin alone (target >= 0.3x), and the origin behind nginx/cutout.conf (target >= 0.9x).
2. Uncached ``c_scale,w_400`` renders of a 12-MP JPEG, each request a different public id so nothing
   is cached: cutout vs thumbor (in its own venv: THUMBOR_PYTHON, default /tmp/thumbor-venv/bin/python)
   with the same concurrency and the same request count (target >= 1.5x).

    .venv/bin/python bench/http_bench.py [--seconds 10] [--renders 48] [--append-results]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import pyvips

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.app.server_process import ServerProcess, free_port  # noqa: E402
from tests.nginx.test_nginx import main_config, render_config  # noqa: E402

HIT = "/demo/image/upload/c_scale,w_400/docs/road"


def wrk(url: str, seconds: int, connections: int) -> float:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", url],
                         capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def big_originals(root: Path, count: int) -> None:
    """``count`` copies of one 12-MP JPEG under distinct ids, so every request is a real render."""
    source = pyvips.Image.new_from_file(str(ROOT / "cutout/samples/docs/rmv_bgd/router_orig.jpg"))
    big = source.resize(4242 / source.width, kernel="lanczos3")  # 4242 x 2828 = 12.0 MP
    (root / "big").mkdir(parents=True)
    first = root / "big" / "img0.jpg"
    big.jpegsave(str(first), Q=90)
    for i in range(1, count):
        os.link(first, root / "big" / f"img{i}.jpg")


def render_load(urls: list[str], concurrency: int) -> float:
    with httpx.Client(timeout=120) as client:
        def one(url: str) -> None:
            response = client.get(url)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: HTTP {response.status_code} {response.text[:200]}")

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, urls))
        return len(urls) / (time.perf_counter() - started)


def start_thumbor(python: str, originals: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = tmp / "thumbor.conf"
    conf.write_text(
        "LOADER = 'thumbor.loaders.file_loader'\n"
        f"FILE_LOADER_ROOT_PATH = '{originals}'\n"
        "STORAGE = 'thumbor.storages.no_storage'\n"
        "RESULT_STORAGE = None\n"
        "ALLOW_UNSAFE_URL = True\n"
        "QUALITY = 80\n"
    )
    thumbor = Path(python).parent / "thumbor"
    process = subprocess.Popen([str(thumbor), "-p", str(port), "-c", str(conf), "-l", "warning"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + "/healthcheck", timeout=2)
            return process, url
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("thumbor did not start") from None
            time.sleep(0.3)


def main() -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--renders", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    thumbor_python = os.environ.get("THUMBOR_PYTHON", "/tmp/thumbor-venv/bin/python")
    parser.add_argument("--thumbor-python", default=thumbor_python)
    parser.add_argument("--append-results", action="store_true", help="append a section to bench/RESULTS.md")
    args = parser.parse_args()
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = Path(tempfile.mkdtemp(prefix="cutout-http-bench-"))
    originals = tmp / "originals"
    shutil.copytree(ROOT / "cutout/samples", originals)
    big_originals(originals, args.renders * 2 + 2)
    env = {"CUTOUT_BACKGROUND_REMOVAL": "0", "CUTOUT_RENDER_THREADS": "2"}
    server = ServerProcess(originals, tmp / "cache", workers=args.workers, env=env)
    processes: list[subprocess.Popen[bytes]] = []
    results: dict[str, float] = {"load_before": os.getloadavg()[0]}
    try:
        server.wait_ready()
        hit = httpx.get(server.url + HIT)
        static = tmp / "static"
        static.mkdir()
        (static / "hit.jpg").write_bytes(hit.content)
        prefix = tmp / "nginx"
        prefix.mkdir()
        proxy_port, static_port = free_port(), free_port()
        (prefix / "cutout.conf").write_text(
            render_config(proxy_port, f"127.0.0.1:{server.port}", prefix / "cache")
            + f"server {{ listen 127.0.0.1:{static_port}; root {static}; }}\n"
        )
        workers = main_config(prefix).replace("worker_processes 1;", f"worker_processes {args.workers};")
        (prefix / "nginx.conf").write_text(workers)
        processes.append(subprocess.Popen([nginx_bin, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True))
        time.sleep(1)
        httpx.get(f"http://127.0.0.1:{proxy_port}{HIT}")  # fill nginx's cache
        results["static"] = wrk(f"http://127.0.0.1:{static_port}/hit.jpg", args.seconds, args.connections)
        results["origin"] = wrk(server.url + HIT, args.seconds, args.connections)
        results["proxied"] = wrk(f"http://127.0.0.1:{proxy_port}{HIT}", args.seconds, args.connections)

        count = args.renders
        cut_urls = [f"{server.url}/demo/image/upload/c_scale,w_400/big/img{i}" for i in range(count)]
        warm_up = f"{server.url}/demo/image/upload/c_scale,w_400/big/img{count * 2 + 1}"
        httpx.get(warm_up, timeout=60)
        results["cutout_renders"] = render_load(cut_urls, args.concurrency)
        if Path(args.thumbor_python).exists():
            thumbor, thumbor_url = start_thumbor(args.thumbor_python, originals, tmp)
            processes.append(thumbor)
            httpx.get(f"{thumbor_url}/unsafe/400x0/big/img{count * 2}.jpg", timeout=60)  # warm-up
            thumb_urls = [f"{thumbor_url}/unsafe/400x0/big/img{count + i}.jpg" for i in range(count)]
            results["thumbor_renders"] = render_load(thumb_urls, args.concurrency)
        results["load_after"] = os.getloadavg()[0]
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report = format_report(results, args)
    print(report)
    if args.append_results:
        with open(ROOT / "bench" / "RESULTS.md", "a") as f:
            f.write("\n" + report)
    return 0


def machine() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = re.search(r"Model name:\s+(.+)", out)
    cpus = re.search(r"^CPU\(s\):\s+(\d+)", out, re.M)
    return f"{model.group(1).strip() if model else 'unknown CPU'}, {cpus.group(1) if cpus else '?'} CPUs"


def format_report(r: dict[str, float], args: argparse.Namespace) -> str:
    lines = [
        f"## HTTP origin (bench/http_bench.py) — {date.today().isoformat()}, {machine()}",
        "",
        f"Load average {r['load_before']:.2f} before, {r['load_after']:.2f} after (1 min, `os.getloadavg`).",
        "",
        f"Cached hit of `{HIT}` (the 400 px JPEG), wrk -t2 -c{args.connections} -d{args.seconds}s. "
        f"Same cores for all: cutout has {args.workers} uvicorn workers (httptools, uvloop), nginx has "
        f"{args.workers} worker processes; wrk, nginx and cutout share the machine's cores. The static "
        "server and the proxy are in one nginx `http {}` (sendfile on, tcp_nopush on, access_log off: "
        "as Debian's nginx.conf, except the log); cutout logs no access either.",
        "",
        "| what | requests/s | ratio | target |",
        "|---|---:|---:|---|",
        f"| nginx static file (reference) | {r['static']:.0f} | 1.00 | |",
        f"| cutout origin alone | {r['origin']:.0f} | {r['origin'] / r['static']:.2f} | >= 0.3 |",
        f"| cutout behind nginx/cutout.conf (HIT) | {r['proxied']:.0f} | "
        f"{r['proxied'] / r['static']:.2f} | >= 0.9 |",
        "",
        f"Uncached `c_scale,w_400` of a 12-MP JPEG (4242x2828), {args.renders} requests for distinct ids, "
        f"{args.concurrency} concurrent:",
        "",
        "| what | renders/s | ratio | target |",
        "|---|---:|---:|---|",
    ]
    if "thumbor_renders" in r:
        reference = r["thumbor_renders"]
        lines.append(f"| thumbor (reference, file loader, no storage) | {reference:.2f} | 1.00 | |")
        ratio = f"{r['cutout_renders'] / r['thumbor_renders']:.2f}"
    else:
        ratio = "n/a (thumbor not installed)"
    lines.append(f"| cutout | {r['cutout_renders']:.2f} | {ratio} | >= 1.5 |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

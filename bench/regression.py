"""Does this checkout serve as fast and as lean as an earlier revision? Both measured in the same run.

The core split (issue 16) moved every request through new code (resolver, store, scheduler, seams);
its promise was "no benchmark regresses beyond noise". This runs the same server workload against two
revisions, interleaved round by round (base first in every round), each a real ``cutout serve`` from
its own checkout with the same venv, and prints after/before ratios:

1. cached hit throughput of the origin alone, and through nginx/cutout.conf (wrk, 64 connections);
2. uncached render latency: sequential ``c_scale,w_400`` of a 12-MP JPEG, a new public id per request;
3. mask time: ``e_background_removal`` of a new photo from the first request (423) to its 200;
4. memory: peak RSS (VmHWM) of the server's worker after those renders and masks.

The base revision is checked out with ``git worktree`` into a temporary folder (removed afterwards).
The model input changed between the core split and now (issue 18 made the square input the default
again); the head side runs with ``CUTOUT_MODEL_ASPECT=keep``, the base's only behaviour, so that the
mask rows compare the request path and not two model inputs.

    .venv/bin/python bench/regression.py [--base c86eb62] [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_bench import big_originals, children, machine, wrk  # noqa: E402
from tests.app.server_process import ServerProcess, free_port  # noqa: E402
from tests.nginx.test_nginx import main_config, render_config  # noqa: E402

#: main just before the core split merged (the revision the issue's "today" describes).
DEFAULT_BASE = "c86eb62"
HIT = "/demo/image/upload/c_scale,w_400/docs/road"
PHOTOS = ROOT.parent / "shared" / "eval" / "ecssd_subset64" / "image"


@contextmanager
def checkout(revision: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="cutout-base-"))
    tree = folder / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), revision],
                   check=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
        shutil.rmtree(folder, ignore_errors=True)


class Server(ServerProcess):
    """``cutout serve`` from ``tree``: its own code first on the path, the same interpreter and venv."""

    def __init__(self, tree: Path, originals: Path, cache_dir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cache_dir.parent / f"server-{self.port}.log"
        command = [sys.executable, "-m", "cutout.cli", "serve", "--originals", str(originals),
                   "--cache-dir", str(cache_dir), "--port", str(self.port), "--workers", "1",
                   "--log-level", "warning"]
        environment = {**os.environ, "PYTHONPATH": str(tree), **env}
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(command, cwd=tree, env=environment, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)


def peak_rss_mb(pids: list[int]) -> float:
    peak = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    return peak / 1024


def start_nginx(tmp: Path, upstream: int) -> tuple[subprocess.Popen[bytes], str]:
    prefix = tmp / "nginx"
    prefix.mkdir()
    port = free_port()
    (prefix / "cutout.conf").write_text(render_config(port, f"127.0.0.1:{upstream}", prefix / "cache"))
    config = main_config(prefix).replace("worker_processes 1;", "worker_processes 2;")
    (prefix / "nginx.conf").write_text(config)
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    process = subprocess.Popen([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(1)
    url = f"http://127.0.0.1:{port}{HIT}"
    httpx.get(url).raise_for_status()
    return process, url


def until_200(client: httpx.Client, url: str, timeout: float = 300) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        response = client.get(url)
        if response.status_code == 200:
            return time.perf_counter() - started
        if response.status_code != 423:
            raise RuntimeError(f"{url}: HTTP {response.status_code} {response.text[:200]}")
        time.sleep(0.02)
    raise TimeoutError(url)


def one_round(name: str, server: Server, nginx_url: str, nginx_pids: list[int], args: argparse.Namespace,
              round_no: int, out: dict[str, list[float]]) -> None:
    pids = children(server.process.pid) or [server.process.pid]
    rate, _ = wrk(server.url + HIT, args.seconds, 64, pids)
    out.setdefault(f"{name} hit origin r/s", []).append(rate)
    rate, _ = wrk(nginx_url, args.seconds, 64, nginx_pids)
    out.setdefault(f"{name} hit via nginx r/s", []).append(rate)
    with httpx.Client(timeout=300) as client:
        for i in range(args.renders):
            url = f"{server.url}/demo/image/upload/c_scale,w_400/big/img{round_no * args.renders + i}"
            started = time.perf_counter()
            response = client.get(url)
            response.raise_for_status()
            out.setdefault(f"{name} render ms", []).append((time.perf_counter() - started) * 1000)
        photo = sorted(PHOTOS.glob("*.jpg"))[round_no]
        out.setdefault(f"{name} mask s", []).append(
            until_200(client, f"{server.url}/demo/image/upload/e_background_removal/photos/{photo.stem}"))
    out.setdefault(f"{name} peak RSS MB", []).append(peak_rss_mb(pids))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=DEFAULT_BASE, help="the earlier revision (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per hit measurement")
    parser.add_argument("--renders", type=int, default=6, help="uncached renders per round")
    args = parser.parse_args()
    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch, checkout(args.base) as base_tree:
        tmp = Path(scratch)
        originals = tmp / "originals"
        shutil.copytree(ROOT / "cutout" / "samples", originals)
        big_originals(originals, args.rounds * args.renders)
        (originals / "photos").mkdir()
        for photo in sorted(PHOTOS.glob("*.jpg"))[: args.rounds]:
            shutil.copy(photo, originals / "photos" / photo.name)
        sides = {"base": (base_tree, {}), "head": (ROOT, {"CUTOUT_MODEL_ASPECT": "keep"})}
        servers: dict[str, tuple[Server, subprocess.Popen[bytes], str]] = {}
        try:
            for name, (tree, env) in sides.items():
                (tmp / name).mkdir()
                server = Server(tree, originals, tmp / name / "cache", env)
                server.wait_ready()
                httpx.get(server.url + HIT).raise_for_status()
                nginx, url = start_nginx(tmp / name, server.port)
                servers[name] = (server, nginx, url)
            for server, nginx, url in servers.values():  # warm-up, not recorded
                wrk(server.url + HIT, 2, 64, children(server.process.pid) or [server.process.pid])
                wrk(url, 2, 64, children(nginx.pid))
            for round_no in range(args.rounds):
                for name, (server, nginx, url) in servers.items():
                    one_round(name, server, url, children(nginx.pid), args, round_no, out)
                    print(f"round {round_no + 1} {name} done", file=sys.stderr)
        finally:
            for server, nginx, _ in servers.values():
                server.stop()
                nginx.terminate()
                nginx.wait(timeout=10)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    print(f"\n{time.strftime('%Y-%m-%d')}, {machine()}; base {args.base}, head {head} (+ working tree); "
          f"{args.rounds} rounds, load average {os.getloadavg()[0]:.1f}\n")
    print("| what | base (median) | head (median) | head / base | better is |")
    print("|---|---:|---:|---:|---|")
    rows = (("hit origin r/s", "higher"), ("hit via nginx r/s", "higher"), ("render ms", "lower"),
            ("mask s", "lower"), ("peak RSS MB", "lower"))
    for what, better in rows:
        before = statistics.median(out[f"base {what}"])
        after = statistics.median(out[f"head {what}"])
        print(f"| {what} | {before:.2f} | {after:.2f} | {after / before:.2f} | {better} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

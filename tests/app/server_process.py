"""Start `cutout serve` as a real uvicorn subprocess on a free loopback port (tests and the benchmark)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, originals: Path, cache_dir: Path, *, workers: int = 1,
                 env: Mapping[str, str] | None = None, log: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or cache_dir.parent / f"server-{self.port}.log"
        command = [sys.executable, "-m", "cutout.cli", "serve", "--originals", str(originals),
                   "--cache-dir", str(cache_dir), "--port", str(self.port), "--workers", str(workers),
                   "--log-level", "warning"]
        environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        with open(self.log, "wb") as out:
            # Its own session, so stopping it reaches the worker processes and nothing else.
            self.process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 120.0, path: str = "/healthz") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"server exited with {code}: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout}s: {self.log.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def claims_left(cache: Path) -> int:
    """The claims (derivatives' and contents') a stopped server left in its cache folder's state."""
    from cache.coordinator import DiskCoordinator

    state = DiskCoordinator(cache)
    try:
        return state.depth()
    finally:
        state.close()


def metric(base_url: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(base_url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def rss_mib(group: int) -> float:
    """Resident memory of every process in the server's process group, MiB."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total / 2**20

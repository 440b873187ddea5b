"""Three (or N) cutout replicas and `cutout worker`s on loopback over one SeaweedFS bucket and one Redis,
behind nginx/cluster.conf: the scale-out layout of the README, for the tests and the benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.app.helpers import SAMPLES
from tests.app.server_process import ROOT, ServerProcess, free_port, metric
from tests.nginx.test_nginx import main_config, nginx_binary
from tests.scale.servers import SeaweedS3


def upload_samples(seaweed: SeaweedS3, bucket: str, prefix: str = "originals") -> None:
    s3 = seaweed.client()
    for path in SAMPLES.rglob("*"):
        if path.is_file() and path.suffix.lower() in (".jpg", ".png"):
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(SAMPLES).as_posix()}",
                          Body=path.read_bytes())


def cluster_env(seaweed: SeaweedS3, redis_url: str, bucket: str, **extra: str) -> dict[str, str]:
    return {**seaweed.env(), "CUTOUT_STATE": redis_url, "CUTOUT_SHARED_CACHE": f"s3://{bucket}/derived",
            "CUTOUT_BACKGROUND_REMOVAL": "queue", **extra}


class WorkerProcess:
    """`cutout worker` with its metrics on a free port."""

    def __init__(self, originals: str, cache_dir: Path, env: Mapping[str, str]) -> None:
        self.metrics_port = free_port()
        self.url = f"http://127.0.0.1:{self.metrics_port}"
        cache_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log = cache_dir.parent / f"worker-{self.metrics_port}.log"
        command = [sys.executable, "-m", "cutout.cli", "worker", "--originals", originals, "--cache-dir",
                   str(cache_dir), "--metrics-port", str(self.metrics_port), "--log-level", "info"]
        environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while "cutout worker: model" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def inferences(self) -> float:
        return metric(self.url, "cutout_inference_total")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=60)


class Nginx:
    def __init__(self, prefix: Path, replicas: list[str]) -> None:
        binary = nginx_binary()
        prefix.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        text = (ROOT / "nginx" / "cluster.conf").read_text()
        lines = "\n".join(f"server {r} max_fails=2 fail_timeout=10s;" for r in replicas)
        text = text.replace("${CUTOUT_REPLICAS}", lines)
        text = text.replace("${CUTOUT_LISTEN}", f"127.0.0.1:{self.port}")
        text = text.replace("${CUTOUT_NGINX_CACHE}", str(prefix / "cache"))
        assert "${" not in text
        (prefix / "cutout.conf").write_text(text)
        (prefix / "nginx.conf").write_text(main_config(prefix))
        check = subprocess.run([binary, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(self.url + "/healthz")
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, (prefix / "error.log").read_text()
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def start_replicas(count: int, originals: str, folder: Path, env: Mapping[str, str]) -> list[ServerProcess]:
    replicas = []
    for i in range(count):
        (folder / f"replica{i}").mkdir(parents=True, exist_ok=True)
        # Each names itself (X-Cutout-Replica): "<folder>-<i>", e.g. "cluster-1" or "fourth-0".
        named = {**env, "CUTOUT_REPLICA_NAME": f"{folder.name}-{i}"}
        replicas.append(ServerProcess(originals, folder / f"replica{i}" / "cache", env=named))  # type: ignore[arg-type]
    for replica in replicas:
        replica.wait_ready(path="/healthz", timeout=120)
    return replicas


def until_made(url: str, *, timeout: float = 240, headers: Mapping[str, str] | None = None) -> httpx.Response:
    """GET ``url`` until it is no longer 423 (or 503 while the state recovers)."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(url, headers=headers, timeout=60)
        if response.status_code not in (423, 503) or time.monotonic() > deadline:
            return response
        time.sleep(0.2)

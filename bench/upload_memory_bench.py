"""Memory a real `cutout serve` holds for Upload API bodies still streaming in, by who sends them (issue 11):

- **unknown callers**: the file part first and a signature that does not hold (anyone on the network can
  send these: the signature is in the body, so the bytes come before it can be checked);
- **known callers** (the reference, same run): the same bytes in the SDKs' order, parameters first with a
  valid signature, so the caller is known when the file begins.

``--clients`` connections each send a ``--megabytes`` body but its last byte, all at once, to a server
started for the case (memory a process has freed is not always given back, so a server that served one
case would carry it into the next); with every body
that far, the server's resident memory (all its processes, ``/proc``) is read, then the last bytes go and
the answers are read (401 for the unknown callers; 400 for the known ones, whose bytes are not an image:
nothing is stored). Printed: the growth over the idle server for each case, and unknown / known (a
server that keeps unknown callers' bytes on disk is far under 1x).

    .venv/bin/python bench/upload_memory_bench.py [--clients 20] [--megabytes 25] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from urllib3 import encode_multipart_formdata  # noqa: E402

from cutout.upload import auth  # noqa: E402
from tests.app.server_process import ServerProcess, rss_mib  # noqa: E402

CLOUD, KEY, SECRET = "bench", "111222333444555", "bench-secret"


def body(data: bytes, known: bool, n: int) -> tuple[bytes, str]:
    params = {"public_id": f"bench/held{n}", "timestamp": str(int(time.time()))}
    signed = {**params, "api_key": KEY, "signature": auth.sign(params, SECRET if known else "not-the-secret")}
    fields: list = [("file", (f"held{n}.jpg", data))]
    fields = [*signed.items(), *fields] if known else [*fields, *signed.items()]
    return encode_multipart_formdata(fields)


def held(server: ServerProcess, data: bytes, clients: int, known: bool) -> tuple[float, list[bytes]]:
    """RSS growth (MiB) with ``clients`` bodies all sent but their last byte; the answers' status lines."""
    idle = rss_mib(server.process.pid)
    bodies = [body(data, known, n) for n in range(clients)]
    sent = threading.Barrier(clients + 1)
    go = threading.Event()
    answers: list[bytes] = []

    def client(n: int) -> None:
        payload, content_type = bodies[n]
        head = (f"POST /v1_1/{CLOUD}/image/upload HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n\r\n")  # fmt: skip
        with socket.create_connection(("127.0.0.1", server.port), timeout=300) as sock:
            sock.sendall(head.encode() + payload[:-1])
            sent.wait()
            go.wait()
            sock.sendall(payload[-1:])
            received = b""
            while b"\r\n" not in received:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
            answers.append(received.split(b"\r\n")[0])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    sent.wait()
    # Sent is not yet read: wait until the server has taken every byte it will take before the last.
    peak, last, steady = 0.0, -1.0, 0
    while steady < 10:
        now = rss_mib(server.process.pid)
        peak = max(peak, now)
        steady = steady + 1 if abs(now - last) < 1 else 0
        last = now
        time.sleep(0.1)
    go.set()
    for thread in threads:
        thread.join()
    return peak - idle, answers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--megabytes", type=float, default=25)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    data = os.urandom(int(args.megabytes * 1e6))
    print(f"{args.clients} bodies of {args.megabytes:g} MB each held open but their last byte; a new server "
          "for each case")  # fmt: skip
    ratios = []
    for round_ in range(1, args.rounds + 1):
        growth: dict[bool, float] = {}
        for known in (True, False):
            growth[known], answers = measure(data, args.clients, known)
            who = "known" if known else "unknown"
            print(f"round {round_}: {who} callers +{growth[known]:.0f} MiB (answers {sorted(set(answers))})")
        ratios.append(growth[False] / growth[True])
        print(f"round {round_}: unknown / known {ratios[-1]:.3f}x")
    print(f"median unknown / known: {sorted(ratios)[len(ratios) // 2]:.3f}x")


def measure(data: bytes, clients: int, known: bool) -> tuple[float, list[bytes]]:
    with tempfile.TemporaryDirectory() as work:
        originals, cache = Path(work) / "originals", Path(work) / "cache"
        originals.mkdir()
        env = {"CUTOUT_UPLOAD": "1", "CUTOUT_API_KEY": KEY, "CUTOUT_API_SECRET": SECRET,
               "CUTOUT_CLOUD_NAME": CLOUD, "CUTOUT_MAX_UPLOAD_BYTES": "60M"}  # fmt: skip
        server = ServerProcess(originals, cache, env=env)
        try:
            server.wait_ready()
            time.sleep(1)
            return held(server, data, clients, known)
        finally:
            server.stop()

if __name__ == "__main__":
    main()

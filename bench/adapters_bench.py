"""Overhead of the vendor adapters (issue 13) against the native ``POST /v1/remove-background``.

One ``cutout serve`` worker with the real model. The photo is segmented once (warm-up), so every timed
request is a cached result: what is measured is reading the request, storing the (known) original,
resolving the job, finding the result and shaping the answer. Each face sends the same photo and asks
for the same full-size cut-out, and is compared with the native API called the same way: a multipart
file (rembg; remove.bg with its one form field, ``size=full``, against the native ``size=full``), a
multipart file answered in JSON (API4AI), base64 in a JSON body answered in JSON (Runware), the raw
body (Azure); Perfect Corp's flow (file step, PUT, task, poll, GET of the result URL) with the native
async flow (POST async, poll, GET result). The faces take turns call by call, in a new random
order each turn (a face's background work, such as a task's driver, lands on whichever face comes next:
a fixed order would charge it to the same neighbour every time); the ratio is each face's median over
its reference's in the same round. Target: each at most 1.1x.

Every one-request face and its reference are answered by the ASGI front on a repeat
(``cutout.api.front``; the adapters' ``FACE``s). A body seen before byte for byte is recognised there
without parsing or hashing it again: the raw and JSON native references repeat their bodies exactly,
a multipart body never does (httpx draws a new boundary each time), nor does Runware's (a new taskUUID
each task, as its protocol asks), so Runware pays a JSON parse and a sha256 its reference does not.

Perfect Corp's protocol has five requests where the native flow has three, so part of its ratio is two
round trips no adapter can save: ``floor`` (a bare ``GET /healthz``) is timed alongside, and the
Perfect Corp line also prints its ratio with two floors taken off (what the adapter adds beyond the
protocol's own extra round trips). The polls each flow needed are counted too.

    .venv/bin/python bench/adapters_bench.py [--requests 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_bench import machine  # noqa: E402
from tests.app.server_process import ServerProcess  # noqa: E402

KEY = "bench-key"
PHOTO = (ROOT / "cutout/samples/docs/rmv_bgd/dog_couch_orig.jpg").read_bytes()
B64 = base64.b64encode(PHOTO).decode()
Call = Callable[[httpx.Client], None]


def ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code == 200, response.text[:300]
    return response


def native(c: httpx.Client) -> None:
    ok(
        c.post(
            "/v1/remove-background", content=PHOTO, headers={"Content-Type": "image/jpeg", "X-Api-Key": KEY}
        )
    )


def native_multipart(c: httpx.Client) -> None:
    files = {"image_file": ("a.jpg", PHOTO, "image/jpeg")}
    ok(c.post("/v1/remove-background", files=files, headers={"X-Api-Key": KEY}))


def native_multipart_size(c: httpx.Client) -> None:
    """As remove.bg's request below: the file and one form field, the native ``size=full``."""
    files = {"image_file": ("a.jpg", PHOTO, "image/jpeg")}
    ok(c.post("/v1/remove-background", files=files, data={"size": "full"}, headers={"X-Api-Key": KEY}))


def native_multipart_json(c: httpx.Client) -> None:
    files = {"image_file": ("a.jpg", PHOTO, "image/jpeg")}
    ok(c.post("/v1/remove-background", files=files, data={"output": "json"}, headers={"X-Api-Key": KEY}))


def native_b64_json(c: httpx.Client) -> None:
    body = {"image_file_b64": B64, "output": "json"}
    ok(c.post("/v1/remove-background", json=body, headers={"X-Api-Key": KEY}))


FINAL = ("success", "error")
#: Each request of the two task flows, by face and step: milliseconds.
STEPS: dict[str, dict[str, list[float]]] = {"native_async": {}, "perfectcorp": {}}


def step(face: str, name: str, request: Callable[[], httpx.Response]) -> httpx.Response:
    start = time.perf_counter()
    response = request()
    STEPS[face].setdefault(name, []).append((time.perf_counter() - start) * 1000)
    return response


#: The polls each flow made, by face.
POLLS: dict[str, list[int]] = {"native_async": [], "perfectcorp": []}


def floor(c: httpx.Client) -> None:
    ok(c.get("/healthz"))


def native_async(c: httpx.Client) -> None:
    headers = {"Content-Type": "image/jpeg", "X-Api-Key": KEY}
    post = partial(c.post, "/v1/remove-background", content=PHOTO, params={"async": "1"}, headers=headers)
    task = step("native_async", "POST async", post).headers["location"]
    polls = 1
    while step("native_async", "poll", partial(c.get, task, headers=headers)).json()["status"] not in FINAL:
        time.sleep(0.002)
        polls += 1
    POLLS["native_async"].append(polls)
    ok(step("native_async", "GET result", partial(c.get, task + "/result", headers=headers)))


def removebg(c: httpx.Client) -> None:
    ok(c.post("/v1.0/removebg", files={"image_file": ("a.jpg", PHOTO, "image/jpeg")}, data={"size": "full"},
              headers={"X-Api-Key": KEY}))  # fmt: skip


def rembg(c: httpx.Client) -> None:
    ok(c.post("/api/remove", files={"file": ("a.jpg", PHOTO, "image/jpeg")}, headers={"X-Api-Key": KEY}))


def azure(c: httpx.Client) -> None:
    ok(
        c.post(
            "/computervision/imageanalysis:segment",
            content=PHOTO,
            params={"api-version": "2023-02-01-preview", "mode": "backgroundRemoval"},
            headers={"Content-Type": "application/octet-stream", "Ocp-Apim-Subscription-Key": KEY},
        )
    )


def api4ai(c: httpx.Client) -> None:
    ok(
        c.post(
            "/v1/results", files={"image": ("a.jpg", PHOTO, "image/jpeg")}, headers={"X-RapidAPI-Key": KEY}
        )
    )


def runware(c: httpx.Client) -> None:
    task = {"taskType": "imageBackgroundRemoval", "taskUUID": str(uuid.uuid4()), "inputImage": B64,
            "outputType": "base64Data"}  # fmt: skip
    ok(c.post("/v1", json=[task], headers={"Authorization": f"Bearer {KEY}"}))


def perfectcorp(c: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    files = [{"content_type": "image/jpg", "file_name": "a.jpg", "file_size": len(PHOTO)}]
    asked = step("perfectcorp", "file step", partial(c.post, "/s2s/v2.0/file/sod", json={"files": files},
                                                     headers=auth))  # fmt: skip
    entry = ok(asked).json()["data"]["files"][0]
    put = entry["requests"][0]
    ok(step("perfectcorp", "PUT", partial(c.put, put["url"], content=PHOTO, headers=put["headers"])))
    body = {"src_file_id": entry["file_id"]}
    task_id = ok(step("perfectcorp", "task", partial(c.post, "/s2s/v2.0/task/sod", json=body, headers=auth)))
    path = f"/s2s/v2.0/task/sod/{task_id.json()['data']['task_id']}"
    polls = 1
    while True:
        data = ok(step("perfectcorp", "poll", partial(c.get, path, headers=auth))).json()["data"]
        if data["task_status"] != "running":
            break
        time.sleep(0.002)
        polls += 1
    POLLS["perfectcorp"].append(polls)
    ok(step("perfectcorp", "GET result URL", partial(c.get, data["results"]["url"])))


#: face -> (call, the reference it is compared with)
FACES: dict[str, tuple[Call, str]] = {
    "floor": (floor, "floor"), "native": (native, "native"),
    "native_multipart": (native_multipart, "native_multipart"),
    "native_multipart_size": (native_multipart_size, "native_multipart_size"),
    "native_multipart_json": (native_multipart_json, "native_multipart_json"),
    "native_b64_json": (native_b64_json, "native_b64_json"), "native_async": (native_async, "native_async"),
    "removebg": (removebg, "native_multipart_size"), "rembg": (rembg, "native_multipart"),
    "azure": (azure, "native"), "api4ai": (api4ai, "native_multipart_json"),
    "runware": (runware, "native_b64_json"), "perfectcorp": (perfectcorp, "native_async"),
}  # fmt: skip


def round_of(client: httpx.Client, count: int) -> dict[str, float]:
    """Each face's median milliseconds over ``count`` calls, the faces interleaved call by call (so a
    burst of load on the shared machine lands on all of them alike)."""
    times: dict[str, list[float]] = {face: [] for face in FACES}
    order = list(FACES.items())
    for _ in range(count):
        random.shuffle(order)
        for face, (call, _) in order:
            start = time.perf_counter()
            call(client)
            times[face].append((time.perf_counter() - start) * 1000)
    return {face: statistics.median(values) for face, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    random.seed(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "originals").mkdir()
        server = ServerProcess(root / "originals", root / "cache", env={"CUTOUT_API_KEYS": KEY})
        try:
            server.wait_ready()
            with httpx.Client(base_url=server.url, timeout=300) as client:
                for call, _ in FACES.values():  # the segmentation, once; each face's first request
                    call(client)
                for polls in POLLS.values():
                    polls.clear()
                for steps in STEPS.values():
                    steps.clear()
                medians: dict[str, list[float]] = {face: [] for face in FACES}
                for _ in range(args.rounds):
                    for face, median in round_of(client, args.requests).items():
                        medians[face].append(median)
        finally:
            server.stop()
    print(f"adapters overhead, {date.today()}, {machine()}, {args.rounds} rounds x {args.requests} requests")
    print("| face | median ms per round | ratio to its reference per round | reference |")
    print("|---|---|---|---|")
    for face, (_, reference) in FACES.items():
        ratios = [a / b for a, b in zip(medians[face], medians[reference], strict=True)]
        runs = " / ".join(f"{m:.1f}" for m in medians[face])
        print(f"| {face} | {runs} | {', '.join(f'{r:.2f}' for r in ratios)} (median "
              f"{statistics.median(ratios):.2f}) | {reference} |")  # fmt: skip
    flows = zip(medians["perfectcorp"], medians["floor"], medians["native_async"], strict=True)
    bare = [(p - 2 * f) / n for p, f, n in flows]
    old = [r / n for r, n in zip(medians["removebg"], medians["native_multipart"], strict=True)]
    print(
        f"removebg / native_multipart (its earlier reference, without remove.bg's size "
        f"field) per round: {', '.join(f'{r:.2f}' for r in old)} (median {statistics.median(old):.2f})"
    )
    print(f"perfectcorp less two floors / native_async per round: {', '.join(f'{r:.2f}' for r in bare)} "
          f"(median {statistics.median(bare):.2f})")  # fmt: skip
    for face, polls in POLLS.items():
        print(f"{face}: polls per flow mean {statistics.mean(polls):.2f}, max {max(polls)}")
    for face, steps in STEPS.items():
        print(f"{face} requests, median ms: " + ", ".join(
            f"{name} {statistics.median(times):.2f}" for name, times in steps.items()))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

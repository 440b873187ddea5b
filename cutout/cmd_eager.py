"""`cutout eager`: pre-generate derivatives, straight into the cache or through a running server.

Input lines (files or stdin) are delivery paths or URLs (``/demo/image/upload/c_scale,w_400/docs/road``)
or ``TRANSFORMATION PUBLIC_ID`` pairs (``e_background_removal docs/rmv_bgd/dog_couch_orig.png``).
Blank lines and ``#`` comments are skipped. Straight into the cache, the keys are the server's own
(same ``Origin.prepare``), and each derivative is recorded as allowed for strict mode.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from cutout.settings import SettingsError, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", help="files of lines to generate (default: stdin)")
    parser.add_argument("--originals", default=None, help="originals folder [CUTOUT_ORIGINALS]")
    parser.add_argument("--cache-dir", default=None, help="derivative cache folder [CUTOUT_CACHE_DIR]")
    parser.add_argument("--concurrency", type=int, default=2, help="generated at once (default 2)")
    parser.add_argument("--accept", default=None, help="Accept header to negotiate f_auto with")
    parser.add_argument("--server", default=None, help="request the derivatives from this server instead")
    parser.add_argument("--timeout", type=float, default=600.0, help="overall limit with --server (s)")


def to_path(line: str) -> str:
    """A delivery path for one input line; ValueError with the reason when it is neither form."""
    if line.startswith(("http://", "https://")):
        return urlsplit(line).path
    if line.startswith("/"):
        return line
    parts = line.split()
    if len(parts) != 2:
        raise ValueError("expected a delivery path, a URL, or 'TRANSFORMATION PUBLIC_ID'")
    transformation, public_id = parts
    # v1 marks where the public id starts, as the SDKs do for ids with folders.
    return f"/image/upload/{transformation.strip('/')}/v1/{quote(public_id, safe='/.')}"


def read_lines(files: list[str]) -> list[str]:
    texts = [sys.stdin.read()] if not files else [Path(f).read_text(encoding="utf-8") for f in files]
    lines = (line.strip() for text in texts for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@dataclass
class Progress:
    total: int
    done: int = 0
    failed: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tty = sys.stderr.isatty()

    def step(self, ok: bool) -> None:
        with self._lock:
            self.done += 1
            self.failed += not ok
            width = 30
            filled = width * self.done // max(self.total, 1)
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} failed {self.failed}"
            end = "" if self._tty and self.done < self.total else "\n"
            if self._tty or self.done == self.total or self.done % 10 == 0:
                print(("\r" if self._tty else "") + bar, end=end, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    lines = read_lines(args.files)
    if not lines:
        print("cutout eager: nothing to generate", file=sys.stderr)
        return 0
    if args.concurrency < 1:
        print("cutout eager: --concurrency must be at least 1", file=sys.stderr)
        return 2
    if args.server:
        generate, close = _through_server(args.server, time.monotonic() + args.timeout)
    else:
        try:
            generate, close = _into_cache(args)
        except SettingsError as exc:
            print(f"cutout eager: {exc}", file=sys.stderr)
            return 2
    progress = Progress(len(lines))
    failures: list[tuple[str, str]] = []

    def one(line: str) -> None:
        try:
            generate(to_path(line))
        except Exception as exc:  # noqa: BLE001 - every failure is reported in the summary
            failures.append((line, getattr(exc, "public", None) or str(exc) or type(exc).__name__))
            progress.step(False)
        else:
            progress.step(True)

    try:
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(one, lines))
    finally:
        close()
    print(f"cutout eager: {len(lines) - len(failures)} generated, {len(failures)} failed", file=sys.stderr)
    for line, reason in failures:
        print(f"  FAILED {line}: {reason}", file=sys.stderr)
    return 1 if failures else 0


Generate = tuple[Callable[[str], None], Callable[[], None]]


def _into_cache(args: argparse.Namespace) -> Generate:
    from cache import DerivativeCache
    from cutout.app import _load_segmenter
    from cutout.service import Origin
    from grammar import parse_path

    settings = load_settings(os.environ, {"originals": args.originals, "cache_dir": args.cache_dir})
    _, cache_dir = settings.require_paths()
    cache = DerivativeCache(cache_dir, size_limit=settings.cache_size)
    origin = Origin(settings, cache, segmenter=None)
    model_lock = threading.Lock()
    model_tried = False

    def generate(path: str) -> None:
        nonlocal model_tried
        # Eager is the operator's own doing: no signature or strict check, and it allow-lists the result.
        delivery = parse_path(path)
        prepared = origin.prepare(delivery, accept=args.accept, signed_ok=True)
        if prepared.plan.needs_segmentation and origin.segmenter is None:
            with model_lock:  # loaded once, and only when a line needs it
                if not model_tried:
                    model_tried = True
                    origin.use_segmenter(_load_segmenter())
            # Again, now that the key can name the model (as the server's does).
            prepared = origin.prepare(delivery, accept=args.accept, signed_ok=True)
        if cache.get(prepared.key) is None:
            origin.produce(prepared)
        cache.allow(prepared.allow_name)

    def close() -> None:
        origin.close()
        cache.close()

    return generate, close


def _through_server(server: str, deadline: float) -> Generate:
    import httpx

    client = httpx.Client(base_url=server.rstrip("/"), timeout=120.0)

    def generate(path: str) -> None:
        while True:
            response = client.get(path, headers={"Accept": "*/*"})
            if response.status_code == 200:
                return
            reason = response.headers.get("x-cld-error") or f"HTTP {response.status_code}"
            if response.status_code not in (423, 503):
                raise RuntimeError(f"HTTP {response.status_code}: {reason}")
            wait = float(response.headers.get("retry-after", "1") or 1)
            if time.monotonic() + wait > deadline:
                raise RuntimeError(f"timed out waiting ({reason})")
            time.sleep(wait)

    return generate, client.close

"""`cutout eager`: pre-generate derivatives, straight into the cache or through a running server.

Input lines (files or stdin) are delivery paths or URLs (``/demo/image/upload/c_scale,w_400/docs/road``)
or ``TRANSFORMATION PUBLIC_ID`` pairs (``e_background_removal docs/rmv_bgd/dog_couch_orig.png``).
Blank lines and ``#`` comments are skipped. Straight into the cache, the keys are the server's own
(the same resolver), and each derivative is recorded as allowed for strict mode.
"""

from __future__ import annotations

import argparse
import math
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from cutout.cli import settings_with_cache_folder
from cutout.hinting import add_hint_arguments, hint_headers, hints_of
from cutout.settings import SettingsError
from transform.variables import BY_NAME


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", help="files of lines to generate ('-' or none: stdin)")
    for name in ("CUTOUT_ORIGINALS", "CUTOUT_CACHE_DIR"):
        flag = "--" + name.removeprefix("CUTOUT_").lower().replace("_", "-")
        parser.add_argument(flag, default=None, help=f"{BY_NAME[name].help} [{name}]")
    parser.add_argument("--concurrency", type=_at_least_one, default=2, help="generated at once (default 2)")
    parser.add_argument("--accept", type=_accept, default=None,
                        help="Accept header to negotiate f_auto with, e.g. 'image/avif,image/webp,*/*'")
    add_hint_arguments(parser)
    parser.add_argument("--server", type=_server_url, default=None,
                        help="request the derivatives from this server (an http:// or https:// URL) instead; "
                        "one it cannot connect to stops the run (exit 1)")
    parser.add_argument("--timeout", type=_seconds, default=None,
                        help=f"overall limit in seconds, with --server only (default {DEFAULT_TIMEOUT:g})")
    parser.epilog = ("exit status: 0 all generated, 1 a line failed or --server cannot be reached, "
                     "2 a mistake in the command (an option, an input file)")


#: --timeout's default: the whole run through a server, however many lines.
DEFAULT_TIMEOUT = 600.0

# RFC 9110 media ranges: type/subtype (either "*"), each with ;name=value parameters, q a weight 0 to 1.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_WEIGHT = r"[qQ]=(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)"
_PARAMETER = rf"(?:{_WEIGHT}|(?![qQ]=){_TOKEN}=(?:{_TOKEN}|\"[^\"]*\"))"
_MEDIA_RANGE = re.compile(rf"(?:\*/\*|(?!\*/){_TOKEN}/(?:\*|{_TOKEN}))(?:\s*;\s*{_PARAMETER})*")


def _accept(text: str) -> str:
    """Checked here: a malformed header would only make every f_auto line quietly fall back to JPEG."""
    ranges = [part.strip() for part in text.split(",")]
    bad = next((r for r in ranges if not _MEDIA_RANGE.fullmatch(r)), None)
    if bad is not None:
        raise argparse.ArgumentTypeError(
            f"not an Accept header (media ranges such as image/avif,image/webp,*/*;q=0.8): {bad!r}")
    return text


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    if value > MAX_CONCURRENCY:  # a thread each: a slipped digit would start millions
        raise argparse.ArgumentTypeError(f"must be at most {MAX_CONCURRENCY}, not {value}")
    return value


#: The largest --concurrency and --timeout: past them a value is a slip (and a --timeout of 1e300 failed
#: every line with "timestamp out of range for platform time_t").
MAX_CONCURRENCY = 256
MAX_TIMEOUT = 30 * 86400.0


def _server_url(text: str) -> str:
    """Checked once here, not as every line fails against it."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http:// or https:// URL of a server: {text!r}")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        # httpx drops the base's path for it: every line was asked as GET / and failed with a 404.
        raise argparse.ArgumentTypeError(f"a server's URL takes no query or fragment (?, #): {text!r}")
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:  # NaN would compare false everywhere and never time out
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    if value > MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_TIMEOUT:.0f} seconds (30 days), not {text!r}")
    return value


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


class InputError(Exception):
    """An input file that cannot be read as text; the message names it."""


def read_lines(files: list[str]) -> list[str]:
    """The lines to generate from ``files`` ('-' is stdin, as is no file at all); InputError says why not."""
    texts = [_read_text(name) for name in files or ["-"]]
    lines = (line.strip() for text in texts for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _read_text(name: str) -> str:
    label = "stdin" if name == "-" else name
    # utf-8-sig: a byte-order mark (Windows editors write one) would stay glued to the first line, which
    # then failed as no delivery path, the mark invisible in the message.
    try:
        if name != "-":
            return Path(name).read_text(encoding="utf-8-sig")
        # The bytes when there are some, so stdin is UTF-8 whatever the locale says, as files are.
        stream = getattr(sys.stdin, "buffer", None)
        return stream.read().decode("utf-8-sig") if stream is not None else sys.stdin.read().lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(f"{label} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise InputError(f"cannot read {label}: {exc.strerror or exc}") from exc


@dataclass
class Progress:
    total: int
    done: int = 0
    failed: int = 0
    cached: int = 0  # done lines that were in the cache already

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tty = sys.stderr.isatty()

    def step(self, ok: bool, *, cached: bool = False) -> None:
        with self._lock:
            self.done += 1
            self.failed += not ok
            self.cached += cached
            width = 30
            filled = width * self.done // max(self.total, 1)
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} failed {self.failed}"
            end = "" if self._tty and self.done < self.total else "\n"
            if self._tty or self.done == self.total or self.done % 10 == 0:
                print(("\r" if self._tty else "") + bar, end=end, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.timeout is not None and not args.server:
        print("cutout eager: --timeout applies only with --server (straight into the cache there is none)",
              file=sys.stderr)
        return 2
    folders = (("--originals", args.originals), ("--cache-dir", args.cache_dir))
    given = [flag for flag, value in folders if value]
    if args.server and given:
        # Through a server its own folders are used: one given here would be ignored without a word.
        print(f"cutout eager: {' and '.join(given)} {'is' if len(given) == 1 else 'are'} for straight into "
              "the cache; with --server the server's own are used: give one or the other", file=sys.stderr)
        return 2
    try:
        lines = read_lines(args.files)
    except InputError as exc:
        print(f"cutout eager: {exc}", file=sys.stderr)
        return 2
    if not lines:
        print("cutout eager: nothing to generate", file=sys.stderr)
        return 0
    if args.server:
        deadline = time.monotonic() + (args.timeout or DEFAULT_TIMEOUT)
        generate, close = _through_server(args.server, deadline, args.accept, hint_headers(args))
    else:
        try:
            generate, close = _into_cache(args)
        except SettingsError as exc:
            print(f"cutout eager: {exc}", file=sys.stderr)
            return 2
    progress = Progress(len(lines))
    failures: list[tuple[str, str]] = []
    unreachable: list[str] = []
    interrupted = threading.Event()

    def one(line: str) -> None:
        if unreachable or interrupted.is_set():
            return  # every other line would fail the same way; or Ctrl-C: nothing more is started
        try:
            made = generate(to_path(line))
        except Unreachable as exc:
            unreachable.append(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - every failure is reported in the summary
            if not interrupted.is_set():  # a request abandoned by Ctrl-C: "interrupted" is all that is said
                failures.append((line, getattr(exc, "public", None) or str(exc) or type(exc).__name__))
                progress.step(False)
            return
        if not interrupted.is_set():
            progress.step(True, cached=not made)

    try:
        if args.server:
            _abandoning_on_interrupt(one, lines, args.concurrency)
        else:  # the first Ctrl-C lets the derivatives in hand be written: the cache gets whole entries
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                list(pool.map(one, lines))
    except KeyboardInterrupt:
        interrupted.set()
        raise
    finally:
        close()
    if unreachable:
        print(f"cutout eager: {unreachable[0]}; stopped", file=sys.stderr)
        return 1
    generated = len(lines) - len(failures) - progress.cached
    cached = f", {progress.cached} already cached" if progress.cached else ""
    print(f"cutout eager: {generated} generated, {len(failures)} failed{cached}", file=sys.stderr)
    for line, reason in failures:
        print(f"  FAILED {line}: {reason}", file=sys.stderr)
    return 1 if failures else 0


def _abandoning_on_interrupt(one: Callable[[str], None], lines: list[str], concurrency: int) -> None:
    """``one`` of each line on ``concurrency`` daemon threads, waited for in an interruptible join. A
    Ctrl-C (KeyboardInterrupt, raised here in the main thread) returns at once and leaves the requests in
    flight behind: their answers only say the server made what it makes anyway, and a thread pool's
    would be waited for at exit (its threads are joined), up to the whole --timeout."""
    todo = iter(lines)
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                line = next(todo, None)
            if line is None:
                return
            one(line)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(min(concurrency, len(lines)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class Unreachable(Exception):
    """The server cannot be connected to: the run stops rather than fail each line alike."""


#: generate(path) -> False when the derivative was there already; close().
Generate = tuple[Callable[[str], bool], Callable[[], None]]


def _into_cache(args: argparse.Namespace) -> Generate:
    from cache import DerivativeCache
    from cutout.app import _load_segmenter
    from cutout.service import Service
    from grammar import parse_path

    # No render time budget: eager is how an operator makes on purpose, on this machine's time, what
    # a server's CUTOUT_RENDER_TIMEOUT refuses to make while a client waits.
    overrides = {"originals": args.originals, "cache_dir": args.cache_dir, "render_timeout": 0.0}
    settings, cache_dir = settings_with_cache_folder(overrides)
    try:
        cache = DerivativeCache(cache_dir, size_limit=settings.cache_size)
    except (OSError, sqlite3.Error) as exc:  # e.g. its blobs/ or state/ is a file, or it is read-only
        problem = f"cannot use {cache_dir} as the cache: {exc}"
        raise SettingsError(f"CUTOUT_CACHE_DIR (--cache-dir): {problem}") from exc
    service = Service.open(settings, cache, segmenter=None)
    hints = hints_of(args)
    model_lock = threading.Lock()
    model_tried = False

    def generate(path: str) -> bool:
        nonlocal model_tried
        # Eager is the operator's own doing: no signature or strict check, and it allow-lists the result.
        delivery = parse_path(path)
        prepared = service.resolver.prepare(delivery, accept=args.accept, signed_ok=True, hints=hints)
        if prepared.segmenting and service.models.segmenter is None:
            with model_lock:  # loaded once, and only when a line needs it
                if not model_tried:
                    model_tried = True
                    service.models.use(_load_segmenter())
            # Again, now that the key can name the model (as the server's does).
            prepared = service.resolver.prepare(delivery, accept=args.accept, signed_ok=True, hints=hints)
        made = cache.get(prepared.key) is None
        if made and prepared.segmenting:
            service.scheduler.generate_and_wait(prepared)  # claims like a server: never two model runs
        elif made:
            service.scheduler.produce(prepared)
        service.coordinator.allow(prepared.allow_name)
        return made

    def close() -> None:
        service.close()
        cache.close()

    return generate, close


#: The least time a request is given, however close the overall deadline: less would fail requests the
#: server was about to answer.
MIN_REQUEST_SECONDS = 1.0
TIMED_OUT = "timed out (--timeout reached)"


def _through_server(server: str, deadline: float, accept: str | None, hints: dict[str, str]) -> Generate:
    import httpx

    client = httpx.Client(base_url=server.rstrip("/"))
    headers = {"Accept": accept or "*/*", **hints}

    def generate(path: str) -> bool:
        while True:
            # Each request gets what is left of --timeout (the overall limit), not a fixed time of its own.
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(TIMED_OUT)
            try:
                response = client.get(path, headers=headers, timeout=max(left, MIN_REQUEST_SECONDS))
            except httpx.TimeoutException as exc:
                raise RuntimeError(TIMED_OUT) from exc
            except httpx.ConnectError as exc:  # refused, or a name that does not resolve
                raise Unreachable(f"cannot connect to --server {server}: {exc}") from exc
            if response.status_code == 200:
                return True  # the server does not say whether it had it already
            reason = response.headers.get("x-cld-error") or f"HTTP {response.status_code}"
            if response.status_code not in (423, 503):
                raise RuntimeError(f"HTTP {response.status_code}: {reason}")
            wait = float(response.headers.get("retry-after", "1") or 1)
            if time.monotonic() + wait > deadline:
                raise RuntimeError(f"timed out waiting ({reason})")
            time.sleep(wait)

    return generate, client.close

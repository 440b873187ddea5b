"""`cutout serve`: the HTTP origin under uvicorn. Every option can also come from its CUTOUT_* variable."""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from cutout.cli import make_folder, settings_with_cache_folder
from cutout.settings import (
    Settings,
    SettingsError,
    check_buckets,
    check_state,
    describe,
    export_for_workers,
    ignored_model_variables,
)
from grammar.errors import OriginError
from transform.variables import BY_NAME

if TYPE_CHECKING:
    from cache.folder import FolderOriginals

_OPTIONS = ("originals", "cache_dir", "host", "port", "workers")

EXAMPLES = (
    ("the original", "docs/rmv_bgd/dog_couch_orig"),
    ("scaled to 400 px wide", "c_scale,w_400/docs/road"),
    ("filled to 300x300, WebP or AVIF when the browser takes it",
     "c_fill,h_300,w_300/f_auto/docs/rmv_bgd/router_orig"),
    ("background removed (423 until ready, then 200)", "e_background_removal/docs/rmv_bgd/dog_couch_orig"),
    ("cut-out placed over another picture",
     "e_background_removal/c_scale,w_400/u_docs:road/fl_layer_apply,y_-200/docs/rmv_bgd/dog_couch_orig"),
    ("cut-out, scaled, over a backdrop, as PNG",
     "e_background_removal/c_scale,h_375/u_docs:bg_beach/c_scale,w_800/fl_layer_apply,g_south/"
     "docs/rmv_bgd/woman_orig.png"),
    ("cut-out with a drop shadow",
     "e_background_removal/e_dropshadow/c_scale,h_105/docs/rmv_bgd/router_orig"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "environment variables (empty counts as unset):\n" + describe()
    for name in _OPTIONS:
        variable = BY_NAME[f"CUTOUT_{name.upper()}"]
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, dest=name, default=None, help=f"{variable.help} [{variable.name}]")
    parser.add_argument("--print-examples", action="store_true", help="print working example URLs")
    levels = ["critical", "error", "warning", "info", "debug"]
    parser.add_argument("--log-level", default="info", choices=levels)


#: The public ids EXAMPLES name: a folder of originals without all of them gets OWN_EXAMPLES instead.
SAMPLE_IDS = ("docs/rmv_bgd/dog_couch_orig", "docs/rmv_bgd/router_orig", "docs/rmv_bgd/woman_orig",
              "docs/road", "docs/bg_beach")

#: The same kinds of URL on one original of the operator's own folder (`make run ORIGINALS=...`).
OWN_EXAMPLES = (
    ("the original", "{id}"),
    ("scaled to 400 px wide", "c_scale,w_400/{id}"),
    ("filled to 300x300, WebP or AVIF when the browser takes it", "c_fill,h_300,w_300/f_auto/{id}"),
    ("background removed (423 until ready, then 200)", "e_background_removal/{id}"),
    ("cut-out with a drop shadow", "e_background_removal/e_dropshadow/c_scale,h_105/{id}"),
)


def example_urls(settings: Settings) -> list[str]:
    """The examples that work here: on the sample originals when the folder has them, else on one of its
    own (the samples' URLs would all be 404s); without background removal (CUTOUT_BACKGROUND_REMOVAL=0)
    those that need it would answer 501, so they are left out, and a last line says why."""
    base = browsable_base(settings)
    cloud = f"/{settings.cloud_name}" if settings.cloud_name else "/demo"
    off = settings.background_removal is False
    examples: Sequence[tuple[str, str]] = EXAMPLES
    if isinstance(settings.originals, Path):  # s3:// originals are not listed here: the samples it is
        from cache.folder import FolderOriginals

        originals = FolderOriginals(settings.originals)
        if not all(_has(originals, public_id) for public_id in SAMPLE_IDS):
            own = next(originals.list(), None)
            if own is None:
                return [f"  (none yet: {settings.originals} holds no originals; put <public_id>.jpg files "
                        "there, or upload them)"]
            examples = [(what, path.format(id=_url_tail(own))) for what, path in OWN_EXAMPLES]
    urls = [f"  {what}:\n    {base}{cloud}/image/upload/{path}" for what, path in examples
            if not (off and "e_background_removal" in path)]
    if off:
        urls.append("  (background removal is off, CUTOUT_BACKGROUND_REMOVAL=0: its examples are left out)")
    return urls


def _url_tail(public_id: str) -> str:
    """``public_id`` as the end of a delivery URL: with ``v1/`` before it when its first folder would be read
    as a component or a version (``w_100/photo`` is w_100 applied to ``photo``), as the SDKs mark where an
    id in folders starts; as it is otherwise, like the samples' URLs."""
    from grammar.path import parse_path

    written = quote(public_id, safe="/")
    try:
        if parse_path(f"/image/upload/{written}").public_id == public_id:
            return written
    except OriginError:
        pass
    return f"v1/{written}"


def browsable_base(settings: Settings) -> str:
    """``http://host:port`` that a browser on this machine reaches the server at: the wildcard addresses
    (--host 0.0.0.0 or ::) are where it listens, not an address to go to, and an IPv6 address is
    written in brackets (``http://::1:8080`` is no URL)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"


def _has(originals: FolderOriginals, public_id: str) -> bool:
    try:
        originals.find(public_id)
    except OriginError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from cutout import serving

    overrides = {name: getattr(args, name) for name in _OPTIONS}
    try:
        settings, cache_dir = settings_with_cache_folder(overrides)
    except SettingsError as exc:
        print(f"cutout serve: {exc}", file=sys.stderr)
        return 2
    ignored = ignored_model_variables(settings)
    if ignored:
        print(f"cutout serve: warning: {ignored}", file=sys.stderr, flush=True)
    # Before anything imports prometheus_client (cutout.service does).
    problem = make_folder(cache_dir / "metrics")  # a file there was a traceback
    if problem:
        print(f"cutout serve: CUTOUT_CACHE_DIR (--cache-dir): {problem}", file=sys.stderr)
        return 2
    export_for_workers(settings, _OPTIONS, _metrics_folder(cache_dir / "metrics"))
    from cutout.service import check_transformations

    try:
        check_transformations(settings)
        check_buckets(settings)
        check_state(settings)
        check_listening(settings)
    except SettingsError as exc:
        print(f"cutout serve: {exc}", file=sys.stderr)
        return 2
    segmenter = None
    if settings.loads_model:
        from cutout.app import start_segmenter
        from transform.segment import SegmenterError

        try:
            segmenter = start_segmenter()
        except SegmenterError as exc:
            print(f"cutout serve: background removal: {exc}\n"
                  "  (CUTOUT_BACKGROUND_REMOVAL=0 serves everything else without the model)", file=sys.stderr)
            return 2
    if args.print_examples:
        print("cutout is serving these example URLs:\n" + "\n".join(example_urls(settings)), flush=True)
        if settings.console:
            print(f"the console: {browsable_base(settings)}/console", flush=True)
    # cutout never uses the client's address, so uvicorn's X-Forwarded-For middleware would only
    # cost time on every hit; no access log for the same reason (nginx in front keeps one).
    # httptools with a header size limit and a header timeout (cutout/serving.py), named by import
    # path so that every worker builds it; limit_concurrency answers 503 past CUTOUT_MAX_CONNECTIONS.
    options: dict[str, Any] = dict(host=settings.host, port=settings.port, log_level=args.log_level,
                                   access_log=False, proxy_headers=False, server_header=False,
                                   http=serving.IMPORT_PATH, limit_concurrency=settings.max_connections)
    if settings.workers == 1:
        from cutout.app import create_app

        uvicorn.run(create_app(settings, segmenter=segmenter), **options)
    else:
        del segmenter  # checked; each worker process loads its own
        uvicorn.run("cutout.app:create_app", factory=True, workers=settings.workers, **options)
    return 0


def check_listening(settings: Settings) -> None:
    """SettingsError naming CUTOUT_HOST or CUTOUT_PORT when uvicorn could not listen there: found before
    the model loads (seconds) rather than by uvicorn afterwards, as a bare resolver or socket error."""
    host, port = settings.host, settings.port
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (OSError, UnicodeError) as exc:  # gaierror is an OSError; UnicodeError: a label over 63 chars
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SettingsError(f"CUTOUT_HOST (--host): {host!r} is neither an address nor a name this machine "
                            f"resolves ({reason})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise SettingsError(f"CUTOUT_PORT (--port): cannot listen on port {port}: "
                                    f"{exc.strerror}") from None
            raise SettingsError(f"CUTOUT_HOST (--host): cannot listen on {host}: {exc.strerror}") from None


def _metrics_folder(root: Path) -> Path:
    """This server's own folder of per-process metric files (``root/<pid>``). Another server sharing the
    cache folder has its own, so starting one never wipes a running one's counters; folders of servers
    that are gone (and files of the old flat layout) are removed, or their counts would be summed in."""
    root.mkdir(exist_ok=True)
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.isdigit() and _alive(int(entry.name)):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    folder = root / str(os.getpid())
    folder.mkdir()
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True

"""The `cutout` command: one sub-command per module, imported only when it runs."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cutout.settings import Settings

# name -> (module, one-line help). Each module defines add_arguments(parser) and run(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "render": ("cutout.cmd_render", "render a transformation string against a local file"),
    "remove-bg": ("cutout.cmd_remove_bg", "remove the background of local images"),
    "fetch-model": ("cutout.cmd_fetch_model", "fetch the IS-Net model into $CUTOUT_HOME"),
    "serve": ("cutout.cmd_serve", "start the HTTP origin server"),
    "eager": ("cutout.cmd_eager", "pre-generate derivatives into the cache or through a server"),
    "worker": ("cutout.worker", "run background removal for servers with CUTOUT_BACKGROUND_REMOVAL=queue"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="cutout", description=__doc__)
    parser.add_argument("--version", action="version", version=f"cutout {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            importlib.import_module(module_name).add_arguments(sp)
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    with _second_interrupt_ends_at_once():
        try:
            _warn_of_unknown_variables(args.command)
            module = importlib.import_module(COMMANDS[args.command][0])
            return int(module.run(args))
        except KeyboardInterrupt:  # Ctrl-C is the user's choice, not a crash: no traceback
            print(f"cutout {args.command}: interrupted", file=sys.stderr)
            return 130  # as a shell reports a command that SIGINT ended


def _warn_of_unknown_variables(command: str) -> None:
    """Every command reads CUTOUT_* variables (the server's, the model's, CUTOUT_HOME): one that nothing
    reads is named before any command runs, so a misspelt CUTOUT_ORT_THREADS under remove-bg, or
    CUTOUT_HOME under fetch-model, is seen, and so is a misspelt CUTOUT_ORIGINALS when serve then stops
    for want of it."""
    from cutout.settings import unknown_variables

    stray = unknown_variables()
    if stray:
        print(f"cutout {command}: warning: {stray}", file=sys.stderr, flush=True)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cutout")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


@contextmanager
def _second_interrupt_ends_at_once() -> Iterator[None]:
    """The first Ctrl-C raises KeyboardInterrupt as usual; the commands then finish the work in hand (the
    image being written, the derivative being cached; `eager --server` leaves its requests in flight,
    which only wait for a server's answer), and a second one ends the process at once."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler  # ignored, or the caller's own
    ):
        yield
        return

    def first(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# -- helpers the sub-commands share ---------------------------------------------------------------------


def settings_with_cache_folder(
    overrides: Mapping[str, Any], check: Callable[[Settings], None] | None = None
) -> tuple[Settings, Path]:
    """The server's settings with its cache folder made (serve, worker, eager); ``SettingsError``
    naming the variable when either cannot be had. ``check`` (a command's own requirement) runs before
    anything is created."""
    from cutout.settings import SettingsError, load_settings

    settings = load_settings(overrides=overrides)
    originals, cache_dir = settings.require_paths()
    if isinstance(originals, Path) and originals.resolve() == cache_dir.resolve():
        # The cache's blobs/, state/ and fetched/ would sit among the originals, in the Upload API's ids.
        raise SettingsError(f"CUTOUT_CACHE_DIR (--cache-dir): {cache_dir} is the originals folder "
                            "(CUTOUT_ORIGINALS): give the cache a folder of its own")
    if check is not None:
        check(settings)
    problem = make_folder(cache_dir) or _cache_problem(cache_dir, settings.cache_size)
    if problem:
        raise SettingsError(f"CUTOUT_CACHE_DIR (--cache-dir): {problem}")
    return settings, cache_dir


def _cache_problem(cache_dir: Path, size_limit: int) -> str | None:
    """Why the cache cannot be opened in ``cache_dir`` (its blobs/ or state/ a file, or a database that
    is none): said here, and not as a traceback from the server's start-up or the worker's first job."""
    import sqlite3

    from cache.store import DerivativeCache

    try:
        DerivativeCache(cache_dir, size_limit=size_limit).close()
    except (OSError, sqlite3.Error) as exc:
        return f"cannot use {cache_dir} as the cache: {exc}"
    return None


def make_folder(path: Path) -> str | None:
    """Create ``path`` (and its parents) unless it is already a folder, and write a file in it once; the
    reason when it cannot be a folder that takes files (a folder that refuses them otherwise stopped
    `cutout serve` with a traceback from its first write)."""
    if path.exists() and not path.is_dir():
        return f"{path} is not a folder"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the folder {path}: {exc.strerror or exc}"
    try:  # is_dir and os.access do not tell: root passes the permission bits, sysfs still refuses files
        fd, probe = tempfile.mkstemp(dir=path, prefix=".cutout-probe-")
    except OSError as exc:
        return f"cannot write files in {path}: {exc.strerror or exc}"
    os.close(fd)
    os.unlink(probe)
    return None


if __name__ == "__main__":
    raise SystemExit(main())

"""Server settings: one frozen dataclass over the ``server`` variables of ``transform/variables.py``,
read from the environment and command-line overrides.

``load_settings`` validates everything at start-up and names the offending variable, so a typo fails
the boot instead of the first request that needs the setting. The README's settings table and
``cutout serve --help`` are generated here from the variables table (``python -m cutout.settings --write
README.md``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from transform import variables
from transform.ops.docs import cell, replace_block, table_command
from transform.variables import BY_NAME


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _setting(name: str) -> Any:
    """A field whose default, help and validation are the ``transform.variables`` entry ``name``."""
    variable = BY_NAME[name]
    assert variable.group == "server" and variable.attribute, name
    return field(default=variable.default, metadata={"help": variable.help, "env": name})


@dataclass(frozen=True)
class Settings:
    """The server's settings; each attribute is the variable ``CUTOUT_<ATTRIBUTE>`` of the table in
    ``transform/variables.py`` (``tests/test_settings.py`` checks that they match one to one)."""

    originals: Path | str | None = _setting("CUTOUT_ORIGINALS")
    cache_dir: Path | None = _setting("CUTOUT_CACHE_DIR")
    host: str = _setting("CUTOUT_HOST")
    port: int = _setting("CUTOUT_PORT")
    workers: int = _setting("CUTOUT_WORKERS")
    max_connections: int = _setting("CUTOUT_MAX_CONNECTIONS")
    header_timeout: float = _setting("CUTOUT_HEADER_TIMEOUT")
    max_header_bytes: int = _setting("CUTOUT_MAX_HEADER_BYTES")
    cache_size: int = _setting("CUTOUT_CACHE_SIZE")
    wait_seconds: float = _setting("CUTOUT_WAIT_SECONDS")
    cloud_name: str | None = _setting("CUTOUT_CLOUD_NAME")
    api_secret: str | None = _setting("CUTOUT_API_SECRET")
    strict: bool = _setting("CUTOUT_STRICT")
    named_transformations: Path | None = _setting("CUTOUT_NAMED_TRANSFORMATIONS")
    allowed_transformations: tuple[str, ...] = _setting("CUTOUT_ALLOWED_TRANSFORMATIONS")
    max_age: int = _setting("CUTOUT_MAX_AGE")
    max_pixels: int = _setting("CUTOUT_MAX_PIXELS")
    render_threads: int = _setting("CUTOUT_RENDER_THREADS")
    model_workers: int = _setting("CUTOUT_MODEL_WORKERS")
    queue_size: int = _setting("CUTOUT_QUEUE_SIZE")
    render_timeout: float = _setting("CUTOUT_RENDER_TIMEOUT")
    lease_seconds: float = _setting("CUTOUT_LEASE_SECONDS")
    failure_seconds: float = _setting("CUTOUT_FAILURE_SECONDS")
    crash_backoff_seconds: float = _setting("CUTOUT_CRASH_BACKOFF_SECONDS")
    stop_grace_seconds: float = _setting("CUTOUT_STOP_GRACE_SECONDS")
    memory_cache: int = _setting("CUTOUT_MEMORY_CACHE")
    background_removal: bool | str = _setting("CUTOUT_BACKGROUND_REMOVAL")
    state: str | None = _setting("CUTOUT_STATE")
    shared_cache: str | None = _setting("CUTOUT_SHARED_CACHE")
    replica_name: str | None = _setting("CUTOUT_REPLICA_NAME")
    s3_endpoint: str | None = _setting("CUTOUT_S3_ENDPOINT")
    s3_timeout: float = _setting("CUTOUT_S3_TIMEOUT")
    originals_cache: int = _setting("CUTOUT_ORIGINALS_CACHE")
    retry_after: int = _setting("CUTOUT_RETRY_AFTER")
    api_keys: tuple[str, ...] = _setting("CUTOUT_API_KEYS")
    api_open: bool = _setting("CUTOUT_API_OPEN")
    api_wait_seconds: float = _setting("CUTOUT_API_WAIT_SECONDS")
    api_rate: float = _setting("CUTOUT_API_RATE")
    task_ttl: float = _setting("CUTOUT_TASK_TTL")
    api_upload_cache: int = _setting("CUTOUT_API_UPLOAD_CACHE")
    api_webhook_secret: str | None = _setting("CUTOUT_API_WEBHOOK_SECRET")
    fetch_ttl: float = _setting("CUTOUT_FETCH_TTL")
    fetch_cache: int = _setting("CUTOUT_FETCH_CACHE")
    max_upload_bytes: int = _setting("CUTOUT_MAX_UPLOAD_BYTES")
    upload: bool = _setting("CUTOUT_UPLOAD")
    resource_list: bool = _setting("CUTOUT_RESOURCE_LIST")
    api_key: str | None = _setting("CUTOUT_API_KEY")
    signature_algorithm: Literal["sha1", "sha256"] = _setting("CUTOUT_SIGNATURE_ALGORITHM")
    public_url: str | None = _setting("CUTOUT_PUBLIC_URL")
    console: bool = _setting("CUTOUT_CONSOLE")
    named: Mapping[str, str] = field(default_factory=dict, metadata={"help": "loaded named transformations"})

    @property
    def loads_model(self) -> bool:
        """Whether this process runs the model (not with 0, nor with queue: `cutout worker` runs it)."""
        return self.background_removal is True

    @property
    def queued(self) -> bool:
        return self.background_removal == "queue"

    def require_paths(self) -> tuple[Path | str, Path]:
        if self.originals is None:
            raise SettingsError("CUTOUT_ORIGINALS (--originals) is required: the folder of original images")
        if self.cache_dir is None:
            raise SettingsError("CUTOUT_CACHE_DIR (--cache-dir) is required: the derivative cache folder")
        return self.originals, self.cache_dir


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Settings from CUTOUT_* variables (``environ``, default this process's environment), with
    ``overrides`` (command-line values by attribute name, None = unset) on top."""
    by_variable = {f"CUTOUT_{name.upper()}": value for name, value in (overrides or {}).items()}
    try:
        values = variables.read("server", environ, by_variable)
        # The fetcher's and the webhooks' variables are read where they are used; checked here too, so
        # that a bad one stops the start with its name, not with a traceback from the app's start-up.
        variables.read("fetch", environ)
    except variables.VariableError as exc:
        raise SettingsError(str(exc)) from None
    settings = Settings(**{BY_NAME[name].attribute: value for name, value in values.items()})
    if settings.api_webhook_secret is not None:
        from cutout.webhooks.signing import StandardSigner

        try:
            StandardSigner(settings.api_webhook_secret)
        except ValueError as exc:
            raise SettingsError(f"CUTOUT_API_WEBHOOK_SECRET: {exc}") from None
    if isinstance(settings.originals, Path) and not settings.originals.is_dir():
        shown = str(settings.originals)
        if shown != shown.strip():  # a space an env file left at the end of the line: seen, not guessed
            shown = repr(shown)
        raise SettingsError(f"CUTOUT_ORIGINALS: {shown} is not a folder")
    if settings.upload and not (settings.api_key and settings.api_secret):
        raise SettingsError("CUTOUT_UPLOAD=1 needs CUTOUT_API_KEY and CUTOUT_API_SECRET (the SDK's api_key "
                            "and api_secret)")
    if settings.resource_list and not settings.upload:
        raise SettingsError("CUTOUT_RESOURCE_LIST=1 needs CUTOUT_UPLOAD=1 (the list reads the assets' tags)")
    if settings.replica_name is not None and not re.fullmatch(r"[!-~]{1,64}", settings.replica_name):
        raise SettingsError("CUTOUT_REPLICA_NAME: 1 to 64 printable ASCII characters without spaces (it is "
                            f"sent as a response header), got {settings.replica_name!r}")
    if settings.queued and settings.state is None:
        raise SettingsError("CUTOUT_BACKGROUND_REMOVAL=queue needs CUTOUT_STATE (the Redis the queue is in)")
    if settings.named_transformations is not None:
        settings = _with_named(settings, _read_named(settings.named_transformations))
    return settings


def ignored_model_variables(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    """A warning naming each model variable set in ``environ`` that a server with these settings never
    reads (None when there is none): with CUTOUT_BACKGROUND_REMOVAL=queue `cutout worker` runs the model
    with its own environment, with 0 nothing runs it. Not an error: the same environment file may well
    serve both commands, but a setting that changes nothing must not pass in silence."""
    if settings.loads_model:
        return None
    named = variables.given("model", environ)
    if not named:
        return None
    if settings.queued:
        where = ("the model runs in `cutout worker` (CUTOUT_BACKGROUND_REMOVAL=queue): set them there; "
                 "cut-outs use the worker's")
    else:
        where = "background removal is off here (CUTOUT_BACKGROUND_REMOVAL=0)"
    return f"{', '.join(named)} {'is' if len(named) == 1 else 'are'} not used by this server: {where}"


def unknown_variables(environ: Mapping[str, str] | None = None) -> str | None:
    """A warning naming each cutout-prefixed variable in ``environ`` that no part of cutout reads, with
    the setting it was probably meant to be (None when there is none): a misspelt CUTOUT_STRICT would
    otherwise leave strict mode off without a word."""
    import difflib

    strays = variables.undeclared(environ)
    if not strays:
        return None
    known = [v.name for v in variables.VARIABLES]
    named = []
    for name in strays:
        close = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.8)
        named.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return f"{', '.join(named)}: not a cutout setting, ignored (the settings: README, 'Settings')"


def check_buckets(settings: Settings) -> None:
    """A SettingsError naming the variable whose bucket the storage says does not exist (a typo there
    otherwise shows only as a warning per request, and cut-outs that stay 423 for ever), or whose
    credentials it refuses."""
    from cache.s3 import missing_bucket, refused_credentials

    named = (("CUTOUT_ORIGINALS", settings.originals), ("CUTOUT_SHARED_CACHE", settings.shared_cache))
    for name, url in named:
        if isinstance(url, str) and url.startswith("s3://"):
            # Wrong credentials otherwise start a replica that answers 503 to every render, for ever.
            refused = refused_credentials(url, settings.s3_endpoint, timeout=settings.s3_timeout)
            if refused is not None:
                raise SettingsError(f"{name}: the storage refuses the credentials ({refused}): check AWS_"
                                    f"ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the AWS profile) for {url}")
            bucket = missing_bucket(url, settings.s3_endpoint, timeout=settings.s3_timeout)
            if bucket is not None:
                raise SettingsError(f"{name}: the storage has no bucket {bucket!r} ({url})")


def check_state(settings: Settings) -> None:
    """A SettingsError naming CUTOUT_STATE when its Redis refuses this client for good (a wrong password,
    a database it does not have): else every new cut-out answers 503, and every worker waits, for ever."""
    if settings.state is None:
        return
    from cache.redis_state import refusal

    refused = refusal(settings.state)
    if refused is not None:
        raise SettingsError(f"CUTOUT_STATE: Redis refuses this client ({refused.rstrip('.')}): check the "
                            "password, user and database in the URL")


def _read_named(path: Path) -> dict[str, str]:
    env = "CUTOUT_NAMED_TRANSFORMATIONS"
    try:
        # utf-8-sig: a byte-order mark (Windows editors) made the file "not valid TOML" at line 1, column 1.
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SettingsError(f"{env}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{env}: {path} is not UTF-8 text (byte {exc.start})") from None
    kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
    try:
        data = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{env}: {path} is not valid {kind}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise SettingsError(f"{env}: {path} must map names to transformation strings")
    for name in data:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise SettingsError(f"{env}: bad transformation name {name!r} (letters, digits, _ and - only)")
    return dict(data)


def _with_named(settings: Settings, named: dict[str, str]) -> Settings:
    return replace(settings, named=named)


# -- what passes the settings to uvicorn's worker processes ------------------------------------------------


def export_for_workers(settings: Settings, options: Iterable[str], metrics_folder: Path) -> None:
    """Put the command-line ``options`` (attribute names) and the metrics folder into this process's
    environment. The one place cutout writes ``os.environ``, because it is the only channel there is:
    with ``--workers N`` uvicorn starts fresh interpreters that call ``cutout.app:create_app()`` with no
    arguments, and they inherit nothing but the environment, from which they load the same settings.
    Before anything imports prometheus_client: it picks per-process files or memory at import time."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_folder)
    for name in options:
        value = getattr(settings, name)
        if value is not None:
            os.environ[f"CUTOUT_{name.upper()}"] = str(value.resolve() if isinstance(value, Path) else value)


# -- documentation: `cutout serve --help` and the README's settings table ----------------------------------


def describe(width: int = 100) -> str:
    """Every variable, its default and its help, for ``cutout serve --help``."""
    lines = []
    for variable in variables.VARIABLES:
        text = f"{variable.help} (default: {variable.default_text})"
        lines.append(f"  {variable.name}")
        lines += textwrap.wrap(text, width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def markdown_table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for variable in variables.VARIABLES:
        lines.append(f"| `{variable.name}` | {cell(variable.default_text)} | {cell(variable.help)} |")
    return "\n".join(lines) + "\n"


BEGIN = "<!-- settings: generated by `python -m cutout.settings --write README.md` -->"
END = "<!-- end of generated settings -->"


def with_table(readme: str) -> str:
    """``readme`` with the text between BEGIN and END replaced by the current table."""
    return replace_block(readme, BEGIN, END, markdown_table())


def main(argv: list[str]) -> int:
    return table_command(argv, "cutout.settings", markdown_table(), with_table)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

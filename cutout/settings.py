"""Server settings: one frozen table, read from CUTOUT_* variables and command-line overrides.

``load_settings`` validates everything at start-up and names the offending variable, so a typo fails
the boot instead of the first request that needs the setting.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _setting(default: Any, help: str, env: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, "env": env, **extra})


@dataclass(frozen=True)
class Settings:
    originals: Path | None = _setting(None, "originals: <public_id>.<ext>", "CUTOUT_ORIGINALS")
    cache_dir: Path | None = _setting(None, "derivative cache folder (shared)", "CUTOUT_CACHE_DIR")
    host: str = _setting("127.0.0.1", "address to listen on", "CUTOUT_HOST")
    port: int = _setting(8080, "TCP port to listen on", "CUTOUT_PORT", low=1, high=65535)
    workers: int = _setting(1, "uvicorn worker processes", "CUTOUT_WORKERS", low=1, high=64)
    cache_size: int = _setting(2 << 30, "cache size limit in bytes (suffixes K, M, G)", "CUTOUT_CACHE_SIZE",
                               low=1 << 20)
    wait_seconds: float = _setting(0.0, "how long a request waits for a queued generation before 423",
                                   "CUTOUT_WAIT_SECONDS", low=0.0, high=600.0)
    cloud_name: str | None = _setting(None, "the only cloud name accepted (unset: any)", "CUTOUT_CLOUD_NAME")
    api_secret: str | None = _setting(None, "secret that verifies s--SIG-- signed URLs", "CUTOUT_API_SECRET")
    strict: bool = _setting(False, "only signed, eager, allowed or named transformations render",
                            "CUTOUT_STRICT")
    named_transformations: Path | None = _setting(
        None, "TOML or JSON file: name -> transformation string, used as t_<name>",
        "CUTOUT_NAMED_TRANSFORMATIONS")
    allowed_transformations: tuple[str, ...] = _setting(
        (), "transformations allowed in strict mode, separated by '|'", "CUTOUT_ALLOWED_TRANSFORMATIONS")
    max_age: int = _setting(3600, "Cache-Control max-age (s) for URLs without a version", "CUTOUT_MAX_AGE",
                            low=0)
    max_pixels: int = _setting(50_000_000, "largest original accepted, in pixels", "CUTOUT_MAX_PIXELS", low=1)
    render_threads: int = _setting(os.cpu_count() or 2, "threads for cheap renders", "CUTOUT_RENDER_THREADS",
                                   low=1, high=256)
    model_workers: int = _setting(1, "concurrent background-removal jobs per process",
                                  "CUTOUT_MODEL_WORKERS", low=1, high=64)
    queue_size: int = _setting(64, "renders waiting or running per process before 503",
                               "CUTOUT_QUEUE_SIZE", low=1)
    lease_seconds: float = _setting(60.0, "lease of a generation claim; renewed while the job runs",
                                    "CUTOUT_LEASE_SECONDS", low=0.5)
    # At least a second: a failure that expires as it is written is never reported, and waiting requests
    # would resubmit the job every poll, running the model in a loop while clients get 423.
    failure_seconds: float = _setting(30.0, "how long a failed generation is remembered",
                                      "CUTOUT_FAILURE_SECONDS", low=1.0)
    memory_cache: int = _setting(64 << 20, "per-process memory for hot derivatives, bytes (K, M, G)",
                                 "CUTOUT_MEMORY_CACHE", low=0)
    background_removal: bool = _setting(
        True, "load the model at start-up (missing: no start); 0: serve without it, e_background_removal 501",
        "CUTOUT_BACKGROUND_REMOVAL")
    retry_after: int = _setting(2, "Retry-After seconds sent with 423", "CUTOUT_RETRY_AFTER", low=1)
    named: Mapping[str, str] = field(default_factory=dict, metadata={"help": "loaded named transformations"})

    def require_paths(self) -> tuple[Path, Path]:
        if self.originals is None:
            raise SettingsError("CUTOUT_ORIGINALS (--originals) is required: the folder of original images")
        if self.cache_dir is None:
            raise SettingsError("CUTOUT_CACHE_DIR (--cache-dir) is required: the derivative cache folder")
        return self.originals, self.cache_dir


_SIZE = re.compile(r"^\s*(\d+)\s*([kKmMgGtT]?)[bB]?\s*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _convert(name: str, kind: str, raw: Any, meta: Mapping[str, Any]) -> Any:
    env = meta["env"]
    if raw is None or not isinstance(raw, str):
        return raw
    try:
        if kind == "bool":
            if raw.strip().lower() not in _TRUE | _FALSE:
                raise ValueError
            return raw.strip().lower() in _TRUE
        if name in ("cache_size", "memory_cache"):
            match = _SIZE.match(raw)
            if not match:
                raise ValueError
            return int(match.group(1)) * 1024 ** "_KMGT".index((match.group(2) or "_").upper())
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        expected = {"bool": "1/0/true/false", "int": "an integer", "float": "a number"}.get(kind, kind)
        if name in ("cache_size", "memory_cache"):
            expected = "a size in bytes such as 2G or 500M"
        raise SettingsError(f"{env}: expected {expected}, got {raw!r}") from None
    if kind == "Path | None":
        return Path(raw) if raw else None
    if kind == "tuple[str, ...]":
        return tuple(part.strip() for part in raw.split("|") if part.strip())
    if kind == "str | None":
        return raw or None
    return raw


def _check_range(value: Any, meta: Mapping[str, Any]) -> None:
    low, high = meta.get("low"), meta.get("high")
    bounds = f"at least {low}" if high is None else f"between {low} and {high}"
    # nan passes every comparison, and an expiry of now + nan is stored as NULL (never expires), as good
    # as one of now + inf: a failure remembered for ever, a dead worker's claim that never lapses.
    if isinstance(value, float) and not math.isfinite(value):
        raise SettingsError(f"{meta['env']}: expected a finite number, {bounds}, got {value}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise SettingsError(f"{meta['env']}: expected {bounds}, got {value}")


def load_settings(environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings from CUTOUT_* variables, with ``overrides`` (command-line values, None = unset) on top."""
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if "env" not in f.metadata:
            continue
        raw: Any = environ.get(f.metadata["env"])
        if overrides and overrides.get(f.name) is not None:
            raw = overrides[f.name]
        if raw is None:
            continue
        value = _convert(f.name, str(f.type), raw, f.metadata)
        if isinstance(value, int | float) and not isinstance(value, bool):
            _check_range(value, f.metadata)
        values[f.name] = value
    settings = Settings(**values)
    if settings.originals is not None and not settings.originals.is_dir():
        raise SettingsError(f"CUTOUT_ORIGINALS: {settings.originals} is not a folder")
    if settings.named_transformations is not None:
        settings = _with_named(settings, _read_named(settings.named_transformations))
    return settings


def _read_named(path: Path) -> dict[str, str]:
    env = "CUTOUT_NAMED_TRANSFORMATIONS"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{env}: cannot read {path}: {exc.strerror}") from None
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
    return Settings(**{f.name: getattr(settings, f.name) for f in fields(Settings) if f.name != "named"},
                    named=named)


def describe() -> str:
    """One line per setting, for --help and the README."""
    lines = []
    for f in fields(Settings):
        if "env" in f.metadata:
            lines.append(f"  {f.metadata['env']:<32} {f.metadata['help']} (default: {f.default!r})")
    return "\n".join(lines)

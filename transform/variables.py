"""Every ``CUTOUT_*`` environment variable, declared once: name, type, default, validation and help.

The server's settings (``cutout/settings.py``), the model's configuration (``transform/segment/model.py``)
and the model's home (``transform/segment/paths.py``) get their values from ``read`` and from nowhere
else; ``cutout serve --help`` and the README's settings table are generated from ``VARIABLES``
(``python -m cutout.settings --write README.md``), and ``tests/test_settings.py`` fails when they drift.
A leaf module (standard library only) so that both ``transform/`` and ``cutout/`` can import it.

An empty value counts as unset (``CUTOUT_PORT= cutout serve`` listens on the default port), as a
systemd ``Environment=CUTOUT_PORT=`` line or an empty Docker ``-e`` would mean.

>>> read("server", {"CUTOUT_PORT": "9000"})["CUTOUT_PORT"]
9000
>>> read("server", {"CUTOUT_PORT": "eighty"})
Traceback (most recent call last):
...
transform.variables.VariableError: CUTOUT_PORT: expected an integer, got 'eighty'
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

#: Where a variable is read: ``server`` by ``cutout.settings.load_settings`` (one ``Settings`` attribute
#: each, named like the variable without its prefix), ``model`` by ``transform.segment.model``, ``home``
#: by ``transform.segment.paths`` (also used by ``cutout fetch-model``, which reads nothing else),
#: ``fetch`` by ``cutout.fetch.FetchPolicy.from_environ`` and ``cutout.webhooks`` (outgoing requests).
Group = Literal["server", "model", "home", "fetch"]


class VariableError(ValueError):
    """A variable has a value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Kind:
    """A value type: ``parse`` turns the text into the value or raises ValueError; ``expected`` is what
    the error message says a value should look like."""

    expected: str
    parse: Callable[[str], Any]


def _integer(text: str) -> int:
    # ASCII only: int() takes "٣" (an Arabic-Indic 3) and "1_000", which no operator means.
    if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text):
        raise ValueError(text)
    return int(text)


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word not in _TRUE + _FALSE:
        raise ValueError(text)
    return word in _TRUE


_SIZE = re.compile(r"^\s*(\d+)\s*([kKmMgGtT]?)[bB]?\s*$")


def _bytes(text: str) -> int:
    match = _SIZE.match(text)
    if not match:
        raise ValueError(text)
    scale: int = 1024 ** "_KMGT".index((match.group(2) or "_").upper())
    return int(match.group(1)) * scale


def _choice(*names: str) -> Kind:
    def parse(text: str) -> str:
        word = text.strip().lower()
        if word not in names:
            raise ValueError(text)
        return word

    return Kind(f"one of {', '.join(names)}", parse)


def _model_size(text: str) -> tuple[int, int]:
    """``1024`` -> (1024, 1024); ``1024x768`` -> (1024, 768): width x height."""
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) in (1, 2) and all(p.isascii() and p.isdigit() and 16 <= int(p) <= 8192 for p in parts):
        return int(parts[0]), int(parts[-1])
    raise ValueError(text)


def _triple(text: str) -> tuple[float, float, float]:
    values = [float(v) for v in text.split(",")]
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise ValueError(text)
    return values[0], values[1], values[2]


#: The normalisation recipes ``CUTOUT_MODEL_MEAN`` may name; transform/segment/model.py holds their values.
RECIPE_NAMES = ("imagenet", "imgly", "isnet")
#: ``CUTOUT_MODEL_ASPECT`` and ``CUTOUT_QUALITY`` (transform/segment/segmenter.py says what each level runs).
ASPECTS = ("keep", "stretch")
QUALITIES = ("default", "best")


def _networks(text: str) -> tuple[str, ...]:
    """``10.1.0.0/16, fd00::/8`` -> ('10.1.0.0/16', 'fd00::/8'), each checked to be an address or network."""
    names = _names(text)
    return tuple(str(ipaddress.ip_network(name, strict=False)) for name in names)


def _mean(text: str) -> str | tuple[float, float, float]:
    return text.strip().lower() if text.strip().lower() in RECIPE_NAMES else _triple(text)


def _positive_triple(text: str) -> tuple[float, float, float]:
    values = _triple(text)
    if min(values) <= 0:
        raise ValueError(text)
    return values


def _originals(text: str) -> Path | str:
    """A folder, or ``s3://bucket[/prefix]`` (kept as text: a Path would fold its ``//``)."""
    if text.strip().lower().startswith("s3:"):
        return _url(text, ("s3",))
    return Path(text).expanduser()


def _url(text: str, schemes: tuple[str, ...]) -> str:
    """``text`` if it is a URL of one of ``schemes`` with a host (a bucket, a server)."""
    url = text.strip()
    scheme, sep, rest = url.partition("://")
    if scheme.lower() not in schemes or not sep or not (rest.split("/", 1)[0] or scheme == "unix"):
        raise ValueError(text)
    return url


def _redis_url(text: str) -> str:
    """A Redis URL whose port and database redis-py can use: it would raise a traceback from the app's
    start for a port that is not a number, and silently use database 0 for a path that is not one."""
    from urllib.parse import urlsplit

    url = _url(text, ("redis", "rediss", "unix"))
    parts = urlsplit(url)
    if parts.scheme.lower() != "unix":
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
        if parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise ValueError(text)
    return url


def _http_url(text: str) -> str:
    """An http(s) URL with a host name and, when it gives one, a port that is a number: `https://h:abc` or
    one with a space in it was kept, and every request made from it failed later (an S3 endpoint's at each
    render, with nothing said at start)."""
    from urllib.parse import urlsplit

    url = _url(text, ("http", "https"))
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        raise ValueError(text) from None
    if not parts.hostname or re.search(r"[\s\x00-\x1f\x7f]", url):
        raise ValueError(text)
    return url


def _base_url(text: str) -> str:
    """An http(s) URL that paths are appended to: no query or fragment, no trailing '/'."""
    url = _http_url(text)
    if "?" in url or "#" in url:
        raise ValueError(text)
    return url.rstrip("/")


def _removal(text: str) -> bool | str:
    return "queue" if text.strip().lower() == "queue" else _boolean(text)


TEXT = Kind("text", lambda text: text)
ORIGINALS = Kind("a folder or s3://bucket[/prefix]", _originals)
S3_URL = Kind("s3://bucket[/prefix]", lambda text: _url(text, ("s3",)))
REDIS_URL = Kind("redis://[:password@]host[:port][/db], rediss://... or unix:///path",
                 _redis_url)
HTTP_URL = Kind("an http:// or https:// URL", _http_url)
BASE_URL = Kind("an http:// or https:// URL without a query", lambda text: _base_url(text))
REMOVAL = Kind("1/0/true/false or queue", _removal)
PATH = Kind("a path", lambda text: Path(text).expanduser())  # "~/..." from systemd or Docker, unexpanded
INTEGER = Kind("an integer", _integer)
NUMBER = Kind("a number", float)
BOOLEAN = Kind("1/0/true/false", _boolean)
BYTES = Kind("a size in bytes such as 2G or 500M", _bytes)
def _transformations(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split("|") if p.strip())
    if not parts:  # "|": set, but to nothing (as _names: not silently the same as unset)
        raise ValueError(text)
    return parts


TRANSFORMATIONS = Kind("transformations separated by '|'", _transformations)


def _names(text: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    if not names:  # set, but to nothing a list can hold (", ,"): not silently the same as unset
        raise ValueError(text)
    return names


def _host_patterns(text: str) -> tuple[str, ...]:
    patterns = []
    for pattern in _names(text):
        if not re.fullmatch(r"[A-Za-z0-9*?.:\-\[\]]+", pattern):  # IPv6 literals too
            raise ValueError(pattern)
        # A host is matched without its port, so example.org:8080 would never match: refused, not kept.
        if re.fullmatch(r"[^:\[\]]+:[0-9]*|\[[^\]]*\]:[0-9]*", pattern):
            raise ValueError(pattern)
        # [::1] as a URL writes it: to fnmatch the brackets are a set of characters, never the address.
        if pattern.startswith("[") and pattern.endswith("]") and ":" in pattern:
            pattern = pattern[1:-1]
        patterns.append(pattern)
    return tuple(patterns)


def _cloud_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,127}", text):  # what a delivery path can name
        raise ValueError(text)
    return text


NAMES = Kind("names separated by ','", _names)
HOST_PATTERNS = Kind("host names without a port, or glob patterns (*.example.org, *), separated by ','",
                     _host_patterns)
CLOUD_NAME = Kind("a letter, then up to 127 letters, digits, '-' or '_'", _cloud_name)
NETWORKS = Kind("addresses or networks such as 10.1.0.0/16, separated by ','", _networks)
MODEL_SIZE = Kind("a size like 1024 or 1024x768 (16 to 8192 pixels)", _model_size)
MEAN = Kind(
    "three comma-separated numbers (R,G,B, for pixels in [0, 1]) or one of the recipes "
    + ", ".join(RECIPE_NAMES),
    _mean,
)
STD = Kind("three comma-separated numbers greater than 0 (R,G,B, for pixels in [0, 1])", _positive_triple)


@dataclass(frozen=True)
class Variable:
    name: str
    group: Group
    kind: Kind
    default: Any
    help: str
    #: How the README and --help show the default, when ``str(default)`` does not say it.
    shown: str | None = None
    low: float | None = None
    high: float | None = None

    @property
    def attribute(self) -> str:
        """``CUTOUT_CACHE_DIR`` -> ``cache_dir``: the ``Settings`` attribute of a server variable."""
        return self.name.removeprefix("CUTOUT_").lower()

    @property
    def default_text(self) -> str:
        if self.shown is not None:
            return self.shown
        if isinstance(self.default, bool):
            return "1" if self.default else "0"
        if isinstance(self.default, float):
            return f"{self.default:g}"
        return "unset" if self.default is None else str(self.default)


def _server(name: str, kind: Kind, default: Any, help: str, **extra: Any) -> Variable:
    return Variable(name, "server", kind, default, help, **extra)


def _model(name: str, kind: Kind, default: Any, help: str, **extra: Any) -> Variable:
    return Variable(name, "model", kind, default, help, **extra)


def _fetch(name: str, kind: Kind, default: Any, help: str, **extra: Any) -> Variable:
    return Variable(name, "fetch", kind, default, help, **extra)


# Every number has a ceiling (tests/test_settings.py checks it): past it a value is a typo (a unit that
# slipped, a digit too many), and it would not start anything but fail later, far from its name: a cache
# size past SQLite's 64-bit integers as a traceback from the app's start-up, a lease of 1e300 s as a dead
# renewal thread, a max-age past the 2^31 RFC 9111 tells caches to cap at.
_STORE_MAX = 1 << 50  # bytes on disk or in a bucket: 1024T
_MEMORY_MAX = 1 << 40  # bytes in memory or in one body: 1T
_YEAR = 365 * 86400.0
_MAX_AGE_MAX = 1 << 31

VARIABLES: tuple[Variable, ...] = (
    _server("CUTOUT_ORIGINALS", ORIGINALS, None,
            "originals: a folder of <public_id>.<ext>, or s3://bucket/prefix (objects "
            "<prefix>/<public_id>.<ext>; endpoint and credentials from CUTOUT_S3_ENDPOINT and the AWS_* "
            "variables)", shown="—"),
    _server("CUTOUT_CACHE_DIR", PATH, None,
            "derivative and mask cache folder (shared by workers; not the originals folder)", shown="—"),
    _server("CUTOUT_HOST", TEXT, "127.0.0.1", "address to listen on"),
    _server("CUTOUT_PORT", INTEGER, 8080, "TCP port to listen on", low=1, high=65535),
    _server("CUTOUT_WORKERS", INTEGER, 1, "uvicorn worker processes", low=1, high=64),
    _server("CUTOUT_MAX_CONNECTIONS", INTEGER, 1000,
            "open connections (and requests in flight) per worker process; past it uvicorn answers 503 "
            "(its limit_concurrency). Facing the internet, nginx in front limits clients (README)",
            low=1, high=1_000_000),
    _server("CUTOUT_HEADER_TIMEOUT", NUMBER, 15.0,
            "seconds a client has to send a request's line and headers, from connecting or from its first "
            "byte; slower ones (slowloris) get 408 and are closed", low=1.0, high=600.0),
    _server("CUTOUT_MAX_HEADER_BYTES", BYTES, 64 << 10,
            "largest request line plus headers, bytes (suffixes K, M); larger gets 431 and is closed",
            shown="64K", low=4 << 10, high=16 << 20),
    _server("CUTOUT_CACHE_SIZE", BYTES, 2 << 30,
            "cache size limit in bytes (suffixes K, M, G); least recently used entries go first",
            shown="2G", low=1 << 20, high=_STORE_MAX),
    _server("CUTOUT_WAIT_SECONDS", NUMBER, 0.0,
            "how long a request waits for a queued generation before 423", low=0.0, high=600.0),
    _server("CUTOUT_CLOUD_NAME", CLOUD_NAME, None, "the only cloud name accepted in paths (others 404)",
            shown="any"),
    _server("CUTOUT_API_SECRET", TEXT, None, "secret that verifies s--SIG-- signed URLs"),
    _server("CUTOUT_STRICT", BOOLEAN, False,
            "strict mode: only signed, eager, allowed or named transformations render"),
    _server("CUTOUT_NAMED_TRANSFORMATIONS", PATH, None,
            "TOML or JSON file: name -> transformation string, used as t_<name>"),
    _server("CUTOUT_ALLOWED_TRANSFORMATIONS", TRANSFORMATIONS, (),
            "transformations allowed in strict mode, separated by '|'", shown="unset"),
    _server("CUTOUT_MAX_AGE", INTEGER, 3600, "Cache-Control max-age (s) for URLs without a version", low=0,
            high=_MAX_AGE_MAX),
    _server("CUTOUT_MAX_PIXELS", INTEGER, 50_000_000,
            "largest original (and result) in pixels, an animation's frames together; refused from the "
            "header", low=1, high=10**12),
    _server("CUTOUT_RENDER_THREADS", INTEGER, os.cpu_count() or 2, "threads for cheap renders",
            shown="cores", low=1, high=256),
    _server("CUTOUT_MODEL_WORKERS", INTEGER, 1, "concurrent background-removal jobs per process",
            low=1, high=64),
    _server("CUTOUT_QUEUE_SIZE", INTEGER, 64, "renders waiting or running per process before 503", low=1,
            high=1_000_000),
    _server("CUTOUT_RENDER_TIMEOUT", NUMBER, 10.0,
            "seconds a render may run (wall clock from when it gets a thread; background removal's model "
            "and cut-out and face detection not counted): past it libvips stops at the next tile, nothing "
            "is cached and the URL answers 503 for CUTOUT_FAILURE_SECONDS; 0: no limit. `cutout eager` "
            "into the cache has none",
            shown="10 (0: none)", low=0.0, high=3600.0),
    _server("CUTOUT_LEASE_SECONDS", NUMBER, 60.0,
            "lease of a generation claim (renewed while the job runs; a clean stop gives it back, a killed "
            "process's lapses), at least 0.5", low=0.5,
            high=86400.0),
    # At least a second: a failure that expires as it is written is never reported, and waiting requests
    # would resubmit the job every poll, running the model in a loop while clients get 423.
    _server("CUTOUT_FAILURE_SECONDS", NUMBER, 30.0,
            "how long a failure of the image itself (undecodable, too large, not found, past the render "
            "budget) is remembered, at least 1; a storage or Redis that did not answer, or a crash, never is",
            low=1.0, high=_YEAR),
    # A crash or an outage is not remembered as the image's failure, but retried at once it would run the
    # model for every request (a queued job: every poll of every waiting request), so it backs off.
    _server("CUTOUT_CRASH_BACKOFF_SECONDS", NUMBER, 30.0,
            "longest a background removal that crashed, or met a storage or Redis that did not answer, is "
            "answered with that 500/503 again before it runs again (never stored as a result): 1 s after "
            "the first failure in a row, doubling with each, back to 1 s after a success; at least 1",
            low=1.0, high=3600.0),
    # A supervisor kills a process its grace period after SIGTERM (Docker 10 s, Kubernetes 30 s): a worker
    # that waited for a longer job was killed, and the job waited out CUTOUT_LEASE_SECONDS.
    _server("CUTOUT_STOP_GRACE_SECONDS", NUMBER, 8.0,
            "how long `cutout worker`, told to stop (SIGTERM, Ctrl-C), lets the job in hand finish: past it, "
            "or at a second signal, it stops its model and hands the job back to the queue, where another "
            "worker takes it at once; under the supervisor's own grace period (Docker's is 10 s)",
            low=0.0, high=3600.0),
    _server("CUTOUT_RETRY_AFTER", INTEGER, 2, "Retry-After seconds of a 423 (a 503 says 1)", low=1,
            high=86400),
    _server("CUTOUT_MEMORY_CACHE", BYTES, 64 << 20,
            "per-process memory for hot derivatives, bytes (suffixes K, M, G)", shown="64M", low=0,
            high=_MEMORY_MAX),
    _server("CUTOUT_BACKGROUND_REMOVAL", REMOVAL, True,
            "load the model at start-up (missing: no start); 0 serves without it "
            "(e_background_removal answers 501); queue (with CUTOUT_STATE) serves without it and queues "
            "background removal in Redis for `cutout worker` processes (423 until done)"),
    _server("CUTOUT_STATE", REDIS_URL, None,
            "Redis for what every replica agrees on: generation claims and leases, remembered failures, the "
            "strict-mode allow-list, and the model queue; unset: the cache folder (one machine)",
            shown="the cache folder"),
    _server("CUTOUT_REPLICA_NAME", TEXT, None,
            "this server's name among replicas, sent on every response as X-Cutout-Replica (which replica "
            "answered, behind a load balancer); unset: no header", shown="none"),
    _server("CUTOUT_SHARED_CACHE", S3_URL, None,
            "s3://bucket/prefix: derivatives and masks also stored there, a second tier behind each "
            "replica's CUTOUT_CACHE_DIR, so one replica's render is a hit on every other", shown="none"),
    _server("CUTOUT_S3_ENDPOINT", HTTP_URL, None,
            "S3-compatible endpoint (SeaweedFS, MinIO, R2...) for s3:// settings; unset: AWS_ENDPOINT_URL "
            "or AWS", shown="AWS"),
    _server("CUTOUT_S3_TIMEOUT", NUMBER, 5.0,
            "seconds to connect to or wait on S3 storage per try (two tries); a storage that does not answer "
            "is then skipped for four times this long by every store on its endpoint: 503 for what needs "
            "it, cached answers still served, second-tier writes skipped",
            low=0.1, high=120.0),
    _server("CUTOUT_ORIGINALS_CACHE", BYTES, 2 << 30,
            "local copies of s3:// originals kept for renders, bytes (suffixes K, M, G); least recently "
            "used out first", shown="2G", low=1 << 20, high=_STORE_MAX),
    _server("CUTOUT_API_KEYS", NAMES, (),
            "keys of the HTTP API (/v1/...), separated by ','; a request sends one as Authorization: "
            "Bearer <key> or X-Api-Key; unset (and CUTOUT_API_OPEN=0): the API is off (404)", shown="unset"),
    _server("CUTOUT_API_OPEN", BOOLEAN, False,
            "1 serves the HTTP API without keys (local use); with CUTOUT_API_KEYS set, keys are still "
            "checked"),
    _server("CUTOUT_API_WAIT_SECONDS", NUMBER, 60.0,
            "how long a synchronous API request waits for its result before it answers 202 with a task",
            low=0.0, high=600.0),
    _server("CUTOUT_API_RATE", NUMBER, 0.0,
            "API requests per second per key (a token bucket holding 10 seconds' worth); 0: no limit",
            shown="0 (no limit)", low=0.0, high=1_000_000.0),
    _server("CUTOUT_TASK_TTL", NUMBER, 86400.0, "seconds an API task and its result are kept", low=1.0,
            high=_YEAR),
    _server("CUTOUT_API_UPLOAD_CACHE", BYTES, 2 << 30,
            "images sent to the HTTP API (api-uploads/<sha256>), kept beside the originals "
            "(.cutout/transient/), bytes (suffixes K, M, G); least recently used out first: a dropped one's "
            "delivery URLs (encoding=url) answer 404 until it is sent again. With s3:// originals they are "
            "objects under api-uploads/ (expire them with a lifecycle rule)", shown="2G", low=1 << 20,
            high=_STORE_MAX),
    _server("CUTOUT_API_WEBHOOK_SECRET", TEXT, None,
            "Standard Webhooks secret (whsec_<base64>) that signs the API's webhook_url notifications; "
            "unset: webhook_url is refused"),
    _server("CUTOUT_FETCH_TTL", NUMBER, 3600.0,
            "seconds an image fetched for /image/fetch/ is used before it is revalidated with its ETag "
            "or modification date", low=0.0, high=_YEAR),
    _server("CUTOUT_FETCH_CACHE", BYTES, 1 << 30,
            "images fetched for /image/fetch/ and the HTTP API's image_url (fetched/<sha256>), kept beside "
            "the originals (.cutout/transient/), bytes (suffixes K, M, G); least recently used out first "
            "(fetched again when next asked). With s3:// originals they are objects under fetched/ (expire "
            "them with a lifecycle rule)", shown="1G", low=1 << 20,
            high=_STORE_MAX),
    _server("CUTOUT_MAX_UPLOAD_BYTES", BYTES, 50 << 20,
            "largest HTTP API or Upload API request body in bytes (suffixes K, M, G), enforced while it "
            "streams", shown="50M", low=1024, high=_MEMORY_MAX),
    _server("CUTOUT_UPLOAD", BOOLEAN, False,
            "1 turns on the Cloudinary-compatible Upload and Admin API (/v1_1/<cloud>/...; needs "
            "CUTOUT_API_KEY and CUTOUT_API_SECRET); 0: those routes answer 404"),
    _server("CUTOUT_RESOURCE_LIST", BOOLEAN, False,
            "1 serves Cloudinary's client-side resource list, /image/list/<tag>.json: the assets with that "
            "tag, to anyone (Cloudinary restricts it by default too); needs CUTOUT_UPLOAD"),
    _server("CUTOUT_API_KEY", TEXT, None,
            "the api_key of the Upload and Admin API (CUTOUT_API_SECRET is its secret), as Cloudinary's "
            "SDKs send it"),
    _server("CUTOUT_SIGNATURE_ALGORITHM", _choice("sha1", "sha256"), "sha1",
            "the digest of the Upload API's signatures sent out, as a Cloudinary account's signature "
            "algorithm: X-Cld-Signature of notifications and the signature of answers (the SDKs' "
            "signature_algorithm); signed requests are taken in either"),
    _server("CUTOUT_PUBLIC_URL", BASE_URL, None,
            "the base URL clients reach delivery at (https://images.example.org, or with a path behind a "
            "proxy): the url and secure_url of Upload and Admin API answers and notifications are made from "
            "it (secure_url as given, url with http://, as Cloudinary's), and so are the HTTP API's "
            "encoding=url image and the adapters' result URLs; unset: the Host the request came to, in the "
            "scheme the client used or the one a TLS proxy names in X-Forwarded-Proto",
            shown="unset (the request's host)"),
    _server("CUTOUT_CONSOLE", BOOLEAN, False,
            "1 serves the console page at /console (browse, upload, build transformations): HTTP Basic "
            "with the API key and secret, or open on loopback when no secret is set"),
    Variable("CUTOUT_HOME", "home", PATH, Path("~/.cache/cutout"),
             "where `cutout fetch-model` stores the model; the first session also saves onnxruntime's "
             "optimised graph there (models/optimized/, ~170 MB per model, onnxruntime version and CPU; "
             "safe to delete)"),
    _model("CUTOUT_MODEL", PATH, None,
           "another compatible ONNX saliency model (one input [1, 3, H, W], first output the mask)",
           shown="IS-Net in CUTOUT_HOME"),
    _model("CUTOUT_MODEL_SIZE", MODEL_SIZE, None,
           "input size of a custom model with a dynamic input: 1024 or 1024x768 (width x height)",
           shown="the model's"),
    _model("CUTOUT_MODEL_MEAN", MEAN, None,
           "normalisation of a custom model: three comma-separated means for pixels in [0, 1], or a "
           f"recipe that also sets the deviations ({', '.join(RECIPE_NAMES)})", shown="isnet"),
    _model("CUTOUT_MODEL_STD", STD, None, "the three standard deviations that go with numeric means",
           shown="1,1,1"),
    _model("CUTOUT_MODEL_ASPECT", _choice(*ASPECTS), None,
           "stretch squeezes every photo to the model size, as the model was trained; keep (a model with "
           "a dynamic input only) runs the network at the photo's aspect ratio (4:3: 1024x768, 0.78x the "
           "time) but loses the object on some photos. Fine edges always stretch", shown="stretch"),
    _model("CUTOUT_QUALITY", _choice(*QUALITIES), "default",
           "background-removal quality: best averages the maps of four inputs (the photo and its mirror "
           "image at two sizes: 3.1x the inference)"),
    _model("CUTOUT_ORT_THREADS", INTEGER, None, "onnxruntime intra-op threads", shown="all cores", low=1,
           high=1024),
    _model("CUTOUT_ORT_PROVIDERS", NAMES, (),
           "onnxruntime execution providers, e.g. CUDAExecutionProvider,CPUExecutionProvider with "
           "onnxruntime-gpu", shown="CPU"),
    _model("CUTOUT_ORT_SPIN", BOOLEAN, None,
           "1 lets idle onnxruntime threads spin between operators: about 3 % faster inference when "
           "nothing else needs the cores, slower renders beside it", shown="0 (remove-bg: 1)"),
    _fetch("CUTOUT_FETCH_ALLOW", HOST_PATTERNS, (),
           "hosts or glob patterns (*.example.org) images may be fetched from, separated by ','; * allows "
           "any host; unset: fetching is off", shown="unset (off)"),
    _fetch("CUTOUT_FETCH_ALLOW_PRIVATE", BOOLEAN, False,
           "1 lets fetches and webhooks reach loopback, private, link-local, multicast and reserved "
           "addresses (tests, closed networks); 0 refuses them after resolving the name once"),
    _fetch("CUTOUT_FETCH_ALLOW_NETWORKS", NETWORKS, (),
           "networks fetches and webhooks may reach although they are not public (an internal image "
           "store at 10.1.0.0/16), separated by ','; narrower than CUTOUT_FETCH_ALLOW_PRIVATE", shown="none"),
    _fetch("CUTOUT_FETCH_MAX_BYTES", BYTES, 50 << 20,
           "largest fetched image in bytes (suffixes K, M, G), enforced while it downloads", shown="50M",
           low=1, high=_MEMORY_MAX),
    _fetch("CUTOUT_FETCH_CONNECT_TIMEOUT", NUMBER, 5.0, "seconds to connect to a server fetched from",
           low=0.1, high=600.0),
    _fetch("CUTOUT_FETCH_TIMEOUT", NUMBER, 30.0,
           "seconds for a whole fetch, redirects and body included (a server that trickles is cut)",
           low=0.1, high=3600.0),
    _fetch("CUTOUT_WEBHOOK_ALLOW", HOST_PATTERNS, ("*",),
           "hosts or glob patterns webhooks may be sent to, separated by ','", shown="*"),
    _fetch("CUTOUT_WEBHOOK_TRIES", INTEGER, 8, "attempts of a webhook delivery before it is given up",
           low=1, high=100),
)  # fmt: skip

BY_NAME: dict[str, Variable] = {v.name: v for v in VARIABLES}


def parse(variable: Variable, raw: object) -> Any:
    """The value of ``variable`` given ``raw``: text as found in the environment (None or empty:
    unset, the default), or an already typed value (a command-line option), which is only range-checked."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return variable.default
    value = raw
    if isinstance(raw, str):
        try:
            value = variable.kind.parse(raw)
        except ValueError:
            raise VariableError(f"{variable.name}: expected {variable.kind.expected}, got {raw!r}") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        _check_range(variable, value, raw.strip() if isinstance(raw, str) else str(value))
    return value


def _check_range(variable: Variable, value: float, given: str) -> None:
    """``given``: the value as the operator wrote it (``2P``, not the bytes it stands for)."""
    low, high = (None if b is None else _bound_text(variable, b) for b in (variable.low, variable.high))
    bounds = f"at least {low}" if high is None else f"between {low} and {high}"
    # nan passes every comparison, and an expiry of now + nan is stored as NULL (never expires), as good
    # as one of now + inf: a failure remembered for ever, a dead worker's claim that never lapses.
    if isinstance(value, float) and not math.isfinite(value):
        raise VariableError(f"{variable.name}: expected a finite number, {bounds}, got {given}")
    if (variable.low is not None and value < variable.low) or (
        variable.high is not None and value > variable.high
    ):
        raise VariableError(f"{variable.name}: expected {bounds}, got {given}")


def _bound_text(variable: Variable, bound: float) -> str:
    """A byte bound in the largest suffix that writes it exactly (``1M``, not 1048576)."""
    if variable.kind is not BYTES or not bound:
        return str(bound)
    for exponent in (4, 3, 2, 1):
        if bound % 1024**exponent == 0:
            return f"{int(bound) // 1024**exponent}{'_KMGT'[exponent]}"
    return str(bound)


def read(
    group: Group, environ: Mapping[str, str] | None = None, overrides: Mapping[str, object] | None = None
) -> dict[str, Any]:
    """``group``'s values by variable name, from ``environ`` (default: this process's environment) with
    ``overrides`` (by variable name; None = not given) on top. The one place a ``CUTOUT_*`` variable
    is read; raises VariableError naming the first bad one."""
    source = os.environ if environ is None else environ
    values = {}
    for variable in VARIABLES:
        if variable.group != group:
            continue
        raw: object = source.get(variable.name)
        if overrides and overrides.get(variable.name) is not None:
            raw = overrides[variable.name]
            try:
                values[variable.name] = parse(variable, raw)
            except VariableError as exc:
                # The value came from the command line: named as given there too (`--port abc` said only
                # CUTOUT_PORT, which the operator may never have set).
                flag = "--" + variable.name.removeprefix("CUTOUT_").lower().replace("_", "-")
                named = f"{variable.name} ({flag}):"
                raise VariableError(str(exc).replace(f"{variable.name}:", named, 1)) from None
            continue
        values[variable.name] = parse(variable, raw)
    return values


#: The test suite's own switches (README, "Tests and benchmarks"): cutout never reads them. Spelt in parts
#: so that the check that every name the code spells is declared here holds for cutout's own.
_SUITE = frozenset("CUTOUT_" + name for name in ("REQUIRE_INTEGRATION", "SHARED_DIR"))


def undeclared(environ: Mapping[str, str] | None = None) -> list[str]:
    """The ``CUTOUT_*`` names in ``environ`` (default: this process's) that no variable here declares."""
    source = os.environ if environ is None else environ
    declared = {v.name for v in VARIABLES} | _SUITE
    # Any case: the environment's names are case-sensitive, so cutout_port is not CUTOUT_PORT and is not read.
    return sorted(name for name in source if name.upper().startswith("CUTOUT_") and name not in declared)


def given(group: Group, environ: Mapping[str, str] | None = None) -> list[str]:
    """The names of ``group``'s variables set (not empty) in ``environ`` (default: this process's)."""
    source = os.environ if environ is None else environ
    return [v.name for v in VARIABLES if v.group == group and source.get(v.name)]

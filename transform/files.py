"""File helpers shared by the commands and the model files: atomic replacement and hashing."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A fresh file next to ``target`` to write into; it becomes ``target`` only when the block completes.

    A failed write (disk full, file size limit, a check that fails) then leaves ``target`` as it was
    instead of truncated, and the temporary file is removed; concurrent writers (worker processes
    starting at once) each write their own file and one wins. Same folder, so ``os.replace`` is a rename
    on one file system. The temporary name is hidden and keeps ``target``'s extension: libvips picks
    the format from it, onnxruntime's optimised-model writer too (``.ort`` would be another format).

    >>> with replacing(Path("out.png")) as temp:  # doctest: +SKIP
    ...     image.write_to_file(str(temp))
    """
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=f".tmp{target.suffix}")
    temp = Path(name)
    try:
        os.close(fd)
        readable_by_all(temp)
        yield temp
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: bytes | str) -> None:
    """``path`` holds ``data`` (str as UTF-8) in full or keeps what it held; see ``replacing``. Written
    through the descriptor ``mkstemp`` opened (``replacing`` closes it for writers that take a name): no
    second open and no chmod by name, on a path every upload takes twice (its original, its record)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=f".tmp{path.suffix}")
    try:
        with open(fd, "wb") as f:
            os.fchmod(fd, 0o666 & ~_UMASK)  # as readable_by_all
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def readable_by_all(path: Path) -> None:
    """Give a file the mode a plain new file would get (mkstemp makes them 0600), so that a server
    running as another user can read what a command wrote: models, manifests, cut-outs."""
    path.chmod(0o666 & ~_UMASK)


def _read_umask() -> int:
    mask = os.umask(0o022)  # only readable by setting it; set back at once
    os.umask(mask)
    return mask


#: Read once, at import: setting it to read it would race with files other threads create meanwhile.
_UMASK = _read_umask()


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file's contents, read in chunks (never the whole file in memory)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()

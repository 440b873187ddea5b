"""The originals store of today: a folder of ``<root>/<public_id>.<ext>`` files, never anything outside
``root``. Versions are content hashes, memoised by a file stamp so a known file costs one ``stat``."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from stat import S_ISDIR, S_ISLNK, S_ISREG

from cachetools import LRUCache

from cache.seams import Located
from grammar.errors import BadRequest, NotFound
from grammar.image_formats import EXTENSIONS, FORMAT_OF, UNREADABLE
from transform.files import sha256_of, write_atomically

log = logging.getLogger("cutout.originals")

#: Tried in this order, so a public id present as both .jpg and .png resolves the same way every time
#: (unless the asset's record names one of them: ``pick``).
_UNREADABLE = frozenset(UNREADABLE)
_RANK = {ext: i for i, ext in enumerate(e for lower in EXTENSIONS for e in (lower, lower.upper()))}

FileStamp = tuple[int, int, int, int]

#: Why an id whose folder leads out of the root through a link (or is a file) is refused: a 400, and
#: nothing is written.
OUTSIDE = "public_id/folder leads outside the originals folder (through a symbolic link) or into a file"

#: Records live under this hidden folder of the root (``list`` skips hidden folders) with this suffix,
#: which no original has: no delivery URL reaches one.
RECORDS = ".cutout"
RECORD_SUFFIX = ".record"

#: A folder listing is trusted only once the folder has been quiet this long when it is taken: its mtime
#: ticks coarsely (a few ms), so two changes within one tick look like one ("racy git").
_QUIET_NS = 1_000_000_000

#: A folder that changed within ``_QUIET_NS`` and held at least this many entries when last listed is
#: not listed again for each lookup (a listing taken now could not be kept: the next lookup would list
#: it again, 23 ms for 20 000 files on every upload into it); its candidate names are looked up instead.
_PROBE_FROM = 128
_UNREADABLE_NAMES = tuple(e for lower in UNREADABLE for e in dict.fromkeys((lower, lower.upper())))


#: The Upload API's record of an asset is the record ``assets/<public_id>`` (``cutout/versions.py``); its
#: ``format`` is the format of the stored original it describes.
ASSET_RECORDS = "assets"


class Warned:
    """What a store has warned of already (bounded), so that a warning is logged once, not per lookup."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._seen: LRUCache[object, bool] = LRUCache(max_entries)
        self._lock = threading.Lock()

    def first(self, key: object) -> bool:
        """Whether ``key`` is new (and from now on known)."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = True
            return True


def recorded_format(data: bytes | None) -> str | None:
    """The ``format`` an asset record (``ASSET_RECORDS``) names; None for none, a deleted asset's, or a
    record that cannot be read."""
    try:
        record = json.loads(data) if data is not None else None
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("deleted"):
        return None
    wanted = record.get("format")
    return wanted if isinstance(wanted, str) else None


def format_of(name: str) -> str:
    """The format of an original's file name (``a.JPEG``: jpg)."""
    return FORMAT_OF[name.rpartition(".")[2].lower()]


def several_formats(names: Sequence[str]) -> bool:
    """Whether the files ``names`` (or their extensions) of one id are in more than one format (``a.jpg``
    and ``a.JPEG`` are one: the extension order picks among them, no record need be read)."""
    return len({format_of(name) for name in names}) > 1


def pick(public_id: str, names: Sequence[str], record: bytes | None, warned: Warned) -> str:
    """Which of ``names``, the files of ``public_id`` (in several formats, in the extension order), is
    its original: the first in the format its asset record names, where there is one (the original the
    Upload API stored: the one the Admin API describes and the upload's URL names; a file put beside it
    by hand must not hide it), else the first (a folder of originals placed by hand: the extension
    order, as always). Either way the others are never delivered: a warning says so, once per id and
    set of files."""
    wanted = recorded_format(record)
    chosen = next((n for n in names if format_of(n) == wanted), names[0])
    if not warned.first((public_id, tuple(names))):
        return chosen
    ignored = ", ".join(n for n in names if n != chosen)
    if wanted is not None and format_of(chosen) == wanted:
        why = f"the Upload API's record of the asset names its {wanted} original"
    elif wanted is not None:
        why = f"the first in the extension order: the asset's record names {wanted}, stored in none of them"
    else:
        why = "the first in the extension order: no asset record names one"
    log.warning("%s is stored in several formats: %s is delivered (%s); %s never is: remove it, or "
                "give it an id of its own", public_id, chosen, why, ignored)
    return chosen


def file_stamp(st: os.stat_result) -> FileStamp:
    """What changes when a file's content may have: size, mtime, and the two a copy that restores the
    mtime (``cp -p``, ``rsync -t``, ``touch -r``) cannot set back: the change time and the inode."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class Fingerprints:
    """sha256 of file contents, memoised by path and ``file_stamp`` so a hit costs one ``stat``.

    >>> Fingerprints().of(Path("cutout/samples/docs/road.jpg"))  # doctest: +SKIP
    'c0ffee...'
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._memo: LRUCache[tuple[str, FileStamp], str] = LRUCache(max_entries)
        self._lock = threading.Lock()

    def of(self, path: Path) -> str:
        memo_key = (str(path), file_stamp(os.stat(path)))
        with self._lock:
            known = self._memo.get(memo_key)
        if known is not None:
            return known
        value = sha256_of(path)  # hashlib lets other threads (the event loop) run meanwhile
        with self._lock:
            self._memo[memo_key] = value
        return value

    def remember(self, path: Path, stamp: FileStamp, value: str) -> None:
        """``value`` is the sha256 of the file at ``path`` while it has ``stamp`` (its writer hashed it)."""
        with self._lock:
            self._memo[(str(path), stamp)] = value


def _valid(public_id: str) -> bool:
    """Whether an original may have this id: no empty, ``.`` or ``..`` folders, no backslash or NUL."""
    if not public_id or "\x00" in public_id or "\\" in public_id:
        return False
    return all(part not in ("", ".", "..") for part in public_id.split("/"))


def _unsupported(public_id: str, ext: str) -> BadRequest:
    return BadRequest(
        f"Unsupported original format .{ext} - {public_id}: cutout reads {', '.join(EXTENSIONS)} originals"
    )


@dataclass(frozen=True)
class _Listing:
    """One folder's originals: stem -> (file name, whether it resolves inside the root); and the stems
    only present in a format cutout cannot read (photo.psd), for a clearer refusal than "not found"."""

    stat: tuple[int, int, int]
    taken_ns: int
    best: dict[str, tuple[str, bool]]
    unreadable: dict[str, str]
    #: The stems stored in more than one format: each file as ``best`` holds one, in the extension order.
    several: dict[str, tuple[tuple[str, bool], ...]]
    #: stem -> the one of ``several`` that is its original (``pick``), once asked: kept while the listing
    #: is (the folder unchanged), so a record is read once per listing, not once per lookup.
    chosen: dict[str, tuple[str, bool]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.best) + len(self.unreadable)


class FolderOriginals:
    """The ``OriginalsStore`` of a folder.

    >>> FolderOriginals("cutout/samples").locate("docs/road").path.name  # doctest: +SKIP
    'road.jpg'
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve(strict=True)
        self.fingerprints = Fingerprints()
        self._listings: LRUCache[str, _Listing] = LRUCache(1024)
        self._lock = threading.Lock()
        self._warned = Warned()

    def locate(self, public_id: str, *, what: str = "Resource not found - {}") -> Located:
        # Made where it is raised, never kept in a local: this frame is in its traceback, and a local
        # naming it made a cycle that kept the frames above (a render's images, for a missing layer)
        # until the garbage collector's next full pass.
        missing = partial(NotFound, what.format(public_id))
        if not _valid(public_id):
            raise missing()
        folder, _, stem = public_id.rpartition("/")
        try:
            listing = self._listing(folder)
            if listing is None:
                return self._probe(public_id, folder, stem, missing)
            found = listing.best.get(stem)
            if found is None:
                if stem in listing.unreadable:
                    raise _unsupported(public_id, listing.unreadable[stem])
                raise missing()
            if stem in listing.several:
                found = self._chosen(public_id, listing, stem)
            name, inside = found
            if not inside:  # symlinks are fine inside the tree, refused when they point out of it
                raise missing()
            path = self.root / folder / name
            return Located(public_id, path, file_stamp(os.stat(path)))
        except OSError:  # gone meanwhile, or a name too long for the file system (ENAMETOOLONG)
            raise missing() from None

    def forget(self, public_id: str) -> None:
        """Only which format of an id stored in several is its original (read from its record) is dropped:
        a listing is kept only while its folder's mtime holds, and what is located is the file by its
        name, stat'ed at each lookup."""
        folder, _, stem = public_id.rpartition("/")
        with self._lock:
            listing = self._listings.get(folder)
        if listing is not None:
            listing.chosen.pop(stem, None)

    def _chosen(self, public_id: str, listing: _Listing, stem: str) -> tuple[str, bool]:
        known = listing.chosen.get(stem)
        if known is None:
            files = dict(listing.several[stem])
            name = pick(public_id, list(files), self._asset_record(public_id), self._warned)
            known = listing.chosen[stem] = (name, files[name])
        return known

    def _asset_record(self, public_id: str) -> bytes | None:
        try:
            return self.get_record(f"{ASSET_RECORDS}/{public_id}")
        except (OSError, ValueError):  # a name too long for a record: no record
            return None

    def find(self, public_id: str, *, what: str = "Resource not found - {}") -> Path:
        return self.locate(public_id, what=what).path

    def _listing(self, folder: str) -> _Listing | None:
        """The folder's listing, kept while the folder does not change; None for a big folder that is
        changing now (its names are looked up one by one instead: ``_probe``)."""
        path = self.root / folder
        st = os.stat(path)
        stat = (st.st_mtime_ns, st.st_ino, st.st_dev)
        with self._lock:
            known = self._listings.get(folder)
        now = time.time_ns()
        if known is not None and known.stat == stat and known.taken_ns - st.st_mtime_ns > _QUIET_NS:
            return known
        if known is not None and now - st.st_mtime_ns <= _QUIET_NS and known.size >= _PROBE_FROM:
            return None
        listing = _Listing(stat, now, *self._list(folder, path))
        with self._lock:
            self._listings[folder] = listing
        return listing

    def _list(self, folder: str, path: Path) -> tuple[
        dict[str, tuple[str, bool]], dict[str, str], dict[str, tuple[tuple[str, bool], ...]]
    ]:
        best: dict[str, tuple[int, str, bool]] = {}
        others: dict[str, list[tuple[int, str, bool]]] = {}  # every file of a stem found more than once
        unreadable: dict[str, str] = {}
        with os.scandir(path) as entries:
            for entry in entries:
                stem, dot, ext = entry.name.rpartition(".")
                if dot and stem and ext.lower() in _UNREADABLE and entry.is_file():
                    unreadable[stem] = ext
                    continue
                rank = _RANK.get(ext)
                if not dot or not stem or rank is None:
                    continue
                if entry.is_file():  # follows symlinks: a link to a file counts, a broken one does not
                    file = (rank, entry.name, entry.is_symlink())
                    known = best.get(stem)
                    if known is None:
                        best[stem] = file
                        continue
                    others.setdefault(stem, [known]).append(file)
                    if rank < known[0]:
                        best[stem] = file
        real = path.resolve()
        here = self.inside(folder)  # a plain file is where its folder is; only links move

        def inside(name: str, link: bool) -> bool:
            return here and (real / name).resolve().is_relative_to(self.root) if link else here

        several = {stem: tuple((name, inside(name, link)) for _, name, link in sorted(files))
                   for stem, files in others.items() if several_formats([name for _, name, _ in files])}
        found = {stem: (name, inside(name, link)) for stem, (_, name, link) in best.items()}
        return found, unreadable, several

    def _probe(self, public_id: str, folder: str, stem: str, missing: Callable[[], NotFound]) -> Located:
        """``locate`` without a listing: each candidate name (a ``stat`` each, as a miss costs), the same
        choice and checks (the extension order, or the record where the id is in several formats; a
        file, following links; a link must resolve inside the root). An unreadable format is recognised
        in lower or upper case here (a listing also sees ``photo.Psd``)."""
        base = f"{self.root}/{folder}" if folder else str(self.root)
        found: dict[str, os.stat_result] = {}
        for ext in _RANK:  # every one: an id stored in several formats is told by its record (``pick``)
            name = f"{stem}.{ext}"
            try:
                st = os.stat(f"{base}/{name}")
            except OSError:
                continue
            if S_ISREG(st.st_mode):
                found[name] = st
        if found:
            if not self.inside(folder):
                raise missing()
            names = list(found)
            name = names[0]
            if several_formats(names):
                name = pick(public_id, names, self._asset_record(public_id), self._warned)
            path = f"{base}/{name}"
            if os.path.islink(path) and not Path(path).resolve().is_relative_to(self.root):
                raise missing()
            return Located(public_id, Path(path), file_stamp(found[name]))
        for ext in _UNREADABLE_NAMES:
            if os.path.isfile(f"{base}/{stem}.{ext}"):
                raise _unsupported(public_id, ext)
        raise missing()

    def inside(self, folder: str) -> bool:
        """Whether ``root/folder`` is a folder (or can be made one) that stays in the root: no part of it
        is a file, and each link met on the way resolves inside the root (a link out, even one whose path
        comes back in, such as ``up -> ..`` then ``up/originals/...``, would let an id reach files, or
        other originals, by a name of its own). Only the part that exists is checked: ``write`` makes the
        rest as plain folders. One ``lstat`` per folder, more only at a link: this runs on every upload."""
        path = str(self.root)
        for part in folder.split("/") if folder else ():
            path = f"{path}/{part}"
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                return True
            except NotADirectoryError:  # reached through a file
                return False
            if S_ISLNK(st.st_mode):
                if not (Path(path).resolve().is_relative_to(self.root) and os.path.isdir(path)):
                    return False
            elif not S_ISDIR(st.st_mode):  # a file where a folder would be
                return False
        return True

    def writable(self, public_id: str) -> bool:
        return self.inside(public_id.rpartition("/")[0])

    def version(self, found: Located) -> str:
        return self.fingerprints.of(found.path)

    def fingerprint(self, data: bytes, *, md5: str | None = None) -> str:
        return hashlib.sha256(data).hexdigest()  # what sha256_of gives the written file

    def modified(self, found: Located) -> float:
        try:
            return os.stat(found.path).st_mtime
        except FileNotFoundError:  # removed since it was located
            raise NotFound(f"Resource not found - {found.public_id}") from None

    def current(self, found: Sequence[Located]) -> bool:
        try:
            for f in found:  # a loop, not all(...): this runs on every cached hit
                if file_stamp(os.stat(f.path)) != f.stamp:
                    return False
        except OSError:
            return False
        return bool(found)

    def local(self, found: Located) -> Path:
        return found.path

    def read(self, public_id: str) -> bytes:
        return self.locate(public_id).path.read_bytes()

    def write(
        self,
        public_id: str,
        extension: str,
        data: bytes,
        *,
        replacing: bool = True,
        version: str | None = None,
    ) -> Located:
        if extension not in _RANK:
            raise ValueError(f"not an original's extension: {extension!r}")
        if not _valid(public_id):
            raise NotFound(f"Resource not found - {public_id}")
        folder, _, stem = public_id.rpartition("/")
        if not self.inside(folder):  # before anything is written: a link leads out of the root
            raise BadRequest(f"{public_id}: {OUTSIDE}")
        base = f"{self.root}/{folder}" if folder else str(self.root)
        target = Path(f"{base}/{stem}.{extension}")
        try:
            write_atomically(target, data)
        except FileNotFoundError:  # its folder is new (made only then: one syscall fewer per upload)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, data)
        if replacing:
            self._remove_others(public_id, keep=target.name)
        # Located from the file just written, the only format of this id left, rather than by listing
        # its folder again (a folder of 100 000 originals would be read whole on every upload).
        stamp = file_stamp(os.stat(target))
        if version is not None:
            self.fingerprints.remember(target, stamp, version)
        return Located(public_id, target, stamp)

    def _remove_others(self, public_id: str, keep: str) -> bool:
        """Remove ``public_id`` in every format but the file ``keep``; whether any was removed."""
        folder, _, stem = public_id.rpartition("/")
        base = f"{self.root}/{folder}" if folder else str(self.root)
        removed = False
        for ext in _RANK:  # plain strings: this runs on every upload, pathlib would double its cost
            name = f"{stem}.{ext}"
            if name != keep:
                try:
                    os.unlink(f"{base}/{name}")
                    removed = True
                except FileNotFoundError:
                    pass
        return removed

    def delete(self, public_id: str) -> bool:
        if not _valid(public_id) or not self.writable(public_id):  # never through a link out of the root
            return False
        try:
            return self._remove_others(public_id, keep="")
        except OSError:  # a name too long for the file system: there is no such original
            return False

    # -- records ---------------------------------------------------------------------------------------
    def _record_path(self, name: str) -> Path:
        if not _valid(name):
            raise ValueError(f"not a record name: {name!r}")
        return self.root / RECORDS / f"{name}{RECORD_SUFFIX}"

    def put_record(self, name: str, data: bytes) -> None:
        target = self._record_path(name)
        for attempt in range(3):
            try:
                write_atomically(target, data)
                return
            except FileNotFoundError:  # a new folder of records, or one pruned as this write came
                if attempt == 2:
                    raise
                target.parent.mkdir(parents=True, exist_ok=True)

    def get_record(self, name: str) -> bytes | None:
        try:
            return self._record_path(name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def delete_record(self, name: str) -> None:
        path = self._record_path(name)
        path.unlink(missing_ok=True)
        # Folders left empty go too (a chunked upload's parts, a folder's job markers): else one empty
        # folder per upload ever made stays. rmdir fails on a folder a writer has just put a file into,
        # and a writer whose folder went just before retries (put_record).
        top = self.root / RECORDS
        for folder in path.parents:
            if folder == top or not folder.is_relative_to(top):
                break
            try:
                folder.rmdir()
            except OSError:
                break

    def list_records(self, prefix: str) -> Iterator[str]:
        base = self.root / RECORDS
        start = base / prefix
        if not _valid(prefix) or not start.is_dir():
            return
        for parent, _, files in os.walk(start):
            here = Path(parent).relative_to(base).as_posix()
            for name in files:  # temporary files of writes in progress start with '.'
                if name.endswith(RECORD_SUFFIX) and not name.startswith("."):
                    yield f"{here}/{name.removesuffix(RECORD_SUFFIX)}"

    def list(self, prefix: str = "") -> Iterator[str]:
        folder = prefix.rpartition("/")[0]
        if folder and not _valid(folder):  # '..', '/abs': nothing outside the root is listed
            return
        if not self.inside(folder):  # nor anything through a link out of it (links below: not followed)
            return
        start = self.root / folder
        if not start.is_dir():
            return
        for parent, dirs, files in os.walk(start):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            base = Path(parent).relative_to(self.root).as_posix()
            names = (name.rpartition(".") for name in files)
            stems = {stem for stem, dot, ext in names if dot and stem and ext in _RANK}
            for stem in sorted(stems):
                public_id = stem if base == "." else f"{base}/{stem}"
                if public_id.startswith(prefix):
                    yield public_id

"""Cache keys and content fingerprints. Everything that can change a derivative's bytes is in its key."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

from transform.files import sha256_of

#: Bump when the rendering pipeline changes output for the same URL; old entries then simply miss.
#: (Changes to background removal need no bump here: the segmenter's id is in the keys that use it.)
PIPELINE_VERSION = "5"  # 5: CMYK colours, borders around transparency, q_ on PNG

_SEP = "\x1f"  # unit separator: cannot occur in URL text, so the joined fields stay unambiguous


def _digest(*fields: str) -> str:
    return hashlib.sha256(_SEP.join(fields).encode("utf-8")).hexdigest()


def derivative_key(
    canonical: str,
    public_id: str,
    fingerprint: str,
    format_key: str,
    *,
    layers: str = "",
    model: str = "",
    pipeline_version: str = PIPELINE_VERSION,
) -> str:
    """The cache key of one rendered derivative.

    ``layers`` carries the fingerprints of layer originals, so replacing an overlay file invalidates
    the derivatives that use it. ``model`` is the segmenter's id (model file, its pre- and
    post-processing version, recipe) for derivatives that remove a background, so a new model or a
    new mask pipeline makes new cut-outs.
    """
    fields = (canonical, public_id, fingerprint, format_key, layers, model, pipeline_version)
    return "d:" + _digest("derivative", *fields)


def mask_key(source_key: str, model_id: str, fine_edges: bool) -> str:
    return "m:" + _digest("mask", source_key, model_id, "fine" if fine_edges else "coarse", PIPELINE_VERSION)


FileStamp = tuple[int, int, int, int]


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
        self._memo: OrderedDict[tuple[str, FileStamp], str] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def of(self, path: Path) -> str:
        memo_key = (str(path), file_stamp(os.stat(path)))
        with self._lock:
            known = self._memo.get(memo_key)
            if known is not None:
                self._memo.move_to_end(memo_key)
                return known
        value = sha256_of(path)
        with self._lock:
            self._memo[memo_key] = value
            while len(self._memo) > self._max:
                self._memo.popitem(last=False)
        return value

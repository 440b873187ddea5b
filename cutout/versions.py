"""Which version an original has now, for the one promise a version makes: a versioned URL that is served
as immutable is always one image.

An asset uploaded through the Upload API has its version in its record (``assets/<public_id>`` beside the
originals, written by ``cutout/upload/assets.py``); an original placed by hand has the time it was last
written (``OriginalsStore.modified``), as the Admin API describes it. A delivery URL naming another version
(an old one, or a made-up one such as the ``v1`` the SDKs add to ids in folders) still serves the current
image, as Cloudinary does, but not as immutable: the same URL will show the next image.
"""

from __future__ import annotations

import json
import logging

# Where the Upload API keeps an asset's record, under the originals store's records: the store reads its
# ``format`` too, to tell which of an id's files is the asset's original (``cache.folder.pick``).
from cache.folder import ASSET_RECORDS as ASSET_RECORDS
from cache.seams import Located, OriginalsStore
from cutout.memory import BoundedDict
from grammar.errors import NotFound, OriginError

log = logging.getLogger(__name__)


def asset_record_name(public_id: str) -> str:
    return f"{ASSET_RECORDS}/{public_id}"


class Versions:
    """``is_current``, remembered per original as located (its stamp changes with its content), so that
    a versioned URL costs one record read per new original rather than one per request."""

    def __init__(self, originals: OriginalsStore) -> None:
        self.originals = originals
        # (version found has now, the version its record names when the record describes other bytes)
        self._known: BoundedDict[tuple[str, object], tuple[int | None, int | None]] = BoundedDict(16384)

    def is_current(self, found: Located, version: int) -> bool:
        return self._read(found, version)[0] == version

    def behind(self, found: Located, version: int) -> bool:
        """Whether ``version`` is the one the asset's record names for bytes other than ``found``'s: the
        lookup that gave ``found`` is older than the upload that made ``version`` (another replica wrote
        the id a moment ago), so a fresh lookup finds the bytes the URL names."""
        return self._read(found, version)[1] == version

    def _read(self, found: Located, version: int) -> tuple[int | None, int | None]:
        key = (found.public_id, found.stamp)
        known = self._known.get(key)
        if known is not None and version in known:
            return known
        # Not remembered, or remembered as others: read again (the record's version moves on an upload
        # of the same bytes, which leaves the stamp as it was).
        now = self._current(found)
        self._known[key] = now
        return now

    def _current(self, found: Located) -> tuple[int | None, int | None]:
        """The version ``found`` has now, None when it cannot be told (the storage is away: the URL is
        then served, but not as immutable); and the version its record names for other bytes, if so."""
        try:
            data = self.originals.get_record(asset_record_name(found.public_id))
            record = json.loads(data) if data is not None else None
            # The record's version is ``found``'s only while the record describes ``found``'s bytes: a
            # replica whose lookup of the id is a moment old (another replica just uploaded over it) would
            # otherwise serve the old bytes as the new version's immutable image. Other bytes: the time
            # of their own last write, as for an original placed by hand.
            newer = None
            if isinstance(record, dict) and not record.get("deleted"):
                version = record.get("version")
                if isinstance(version, int):
                    written = record.get("fingerprint")
                    if written is None or written == self.originals.version(found):
                        return version, None
                    newer = version
            return int(self.originals.modified(found)), newer
        except (ValueError, NotFound):  # not a name records take; gone since it was located
            return None, None
        except OriginError as exc:  # the storage is away
            log.warning("the version of %s: %s", found.public_id, exc)
            return None, None

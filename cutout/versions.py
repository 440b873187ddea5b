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

from cache.seams import Located, OriginalsStore
from cutout.memory import BoundedDict
from grammar.errors import NotFound, OriginError

log = logging.getLogger(__name__)

#: Where the Upload API keeps an asset's record, under the originals store's records.
ASSET_RECORDS = "assets"


def asset_record_name(public_id: str) -> str:
    return f"{ASSET_RECORDS}/{public_id}"


class Versions:
    """``is_current``, remembered per original as located (its stamp changes with its content), so that
    a versioned URL costs one record read per new original rather than one per request."""

    def __init__(self, originals: OriginalsStore) -> None:
        self.originals = originals
        self._known: BoundedDict[tuple[str, object], int | None] = BoundedDict(16384)

    def is_current(self, found: Located, version: int) -> bool:
        key = (found.public_id, found.stamp)
        known = self._known.get(key)
        if known == version:
            return True
        # Not remembered, or remembered as another: read again (the record's version moves on an upload
        # of the same bytes, which leaves the stamp as it was).
        now = self.current(found)
        self._known[key] = now
        return now == version

    def current(self, found: Located) -> int | None:
        """The version ``found`` has now; None when it cannot be told (the storage is away: the URL is
        then served, but not as immutable)."""
        try:
            data = self.originals.get_record(asset_record_name(found.public_id))
            record = json.loads(data) if data is not None else None
            # The record's version is ``found``'s only while the record describes ``found``'s bytes: a
            # replica whose lookup of the id is a moment old (another replica just uploaded over it) would
            # otherwise serve the old bytes as the new version's immutable image. Other bytes: the time
            # of their own last write, as for an original placed by hand.
            located = self.originals.version(found)
            if (isinstance(record, dict) and not record.get("deleted")
                    and record.get("fingerprint", located) == located):  # fmt: skip
                version = record.get("version")
                if isinstance(version, int):
                    return version
            return int(self.originals.modified(found))
        except (ValueError, NotFound):  # not a name records take; gone since it was located
            return None
        except OriginError as exc:  # the storage is away
            log.warning("the version of %s: %s", found.public_id, exc)
            return None

"""Finding originals on disk: ``<root>/<public_id>.<ext>``, and never anything outside ``root``."""

from __future__ import annotations

from pathlib import Path

from grammar.errors import BadRequest, NotFound
from grammar.image_formats import EXTENSIONS, UNREADABLE

#: Tried in this order, so a public id present as both .jpg and .png resolves the same way every time.
_CANDIDATES = tuple(ext for lower in EXTENSIONS for ext in (lower, lower.upper()))
_UNREADABLE = tuple(ext for lower in UNREADABLE for ext in (lower, lower.upper()))


class Originals:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve(strict=True)

    def find(self, public_id: str, *, what: str = "Resource not found - {}") -> Path:
        """The file holding ``public_id``. ``what`` formats the 404 message (layers use their own)."""
        missing = NotFound(what.format(public_id))
        if not public_id or "\x00" in public_id or "\\" in public_id or public_id.startswith("/"):
            raise missing
        if any(part in ("", ".", "..") for part in public_id.split("/")):
            raise missing
        for ext in _CANDIDATES:
            candidate = self.root / f"{public_id}.{ext}"
            try:
                if not candidate.is_file():
                    continue
            except OSError:  # a name too long for the file system (ENAMETOOLONG) names nothing here
                raise missing from None
            # Symlinks are fine inside the tree, refused when they point out of it.
            if candidate.resolve().is_relative_to(self.root):
                return candidate
            raise missing
        self._refuse_unreadable(public_id)
        raise missing

    def _refuse_unreadable(self, public_id: str) -> None:
        """A 400 naming the format when the original is there in one cutout cannot read (photo.psd): more
        use to whoever stored it than "not found". Only asked on the way to a 404."""
        for ext in _UNREADABLE:
            candidate = self.root / f"{public_id}.{ext}"
            try:
                found = candidate.is_file() and candidate.resolve().is_relative_to(self.root)
            except OSError:  # as in find: a name too long names nothing
                return
            if found:
                raise BadRequest(
                    f"Unsupported original format .{ext} - {public_id}: cutout reads "
                    f"{', '.join(EXTENSIONS)} originals"
                )

"""Originals on disk, for the commands that read them directly (``cutout render``): the folder store."""

from cache.folder import FolderOriginals
from grammar.image_formats import EXTENSIONS

Originals = FolderOriginals

__all__ = ["EXTENSIONS", "Originals"]

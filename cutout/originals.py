"""Originals on disk, for the commands that read them directly (``cutout render``): the folder store."""

from cache.folder import EXTENSIONS, FolderOriginals

Originals = FolderOriginals

__all__ = ["EXTENSIONS", "Originals"]

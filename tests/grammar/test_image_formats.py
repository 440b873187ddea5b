"""The image-format table is the one list of formats: the README's lists of them must say the same."""

from __future__ import annotations

import re
from pathlib import Path

from grammar.image_formats import EXTENSIONS, FORMAT_OF, IMAGE_FORMATS, MIME, WRITABLE

README = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8").split())


def test_the_table_is_consistent() -> None:
    assert len(set(EXTENSIONS)) == len(EXTENSIONS)
    assert all(fmt.name in fmt.extensions and fmt.mime.startswith("image/") for fmt in IMAGE_FORMATS)
    assert set(FORMAT_OF.values()) == {fmt.name for fmt in IMAGE_FORMATS} and set(MIME) == set(EXTENSIONS)
    assert (FORMAT_OF["jpeg"], FORMAT_OF["tif"], MIME["jpeg"]) == ("jpg", "tiff", "image/jpeg")


def test_the_readme_lists_the_tables_formats() -> None:
    delivered = re.search(r"when it is a known image format \(([a-z ]+)\)", README)
    assert delivered and delivered[1].split() == [e for e in EXTENSIONS if FORMAT_OF[e] in WRITABLE]
    refused = re.search(r"\(([a-z, ]+) are recognised but cannot be delivered", README)
    assert refused and re.split(r", | and ", refused[1]) == [f.name for f in IMAGE_FORMATS if not f.writable]
    originals = re.search(r"files `DIR/<public_id>\.<ext>` \(([a-z ]+), tried in that order\)", README)
    assert originals and originals[1].split() == list(EXTENSIONS)

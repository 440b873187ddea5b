"""fl_keep_attribution: of the original's metadata, only the fields that say who made the image and who
owns it (https://cloudinary.com/documentation/transformation_reference#fl_keep_attribution: "keeps the
copyright related fields when stripping meta-data"). Cloudinary does not list the fields; these are the
IPTC Photo Metadata standard's rights fields (creator, its job title, credit line, source, copyright
notice, rights usage terms, web statement of rights, copyright owner, licensor; the set Fastly's
metadata=copyright keeps), in each of the three blocks that carry them: IPTC-IIM, XMP and Exif (Artist,
Copyright). Each block is rebuilt with those fields alone; one left without any is dropped.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

#: IPTC-IIM datasets kept: record 1's coded character set (how the text is encoded), and record 2's
#: version, By-line, By-line Title, Credit, Source and Copyright Notice.
_IIM_KEPT = {(1, 90), (2, 0), (2, 80), (2, 85), (2, 110), (2, 115), (2, 116)}
_IIM_RIGHTS = {(2, 80), (2, 85), (2, 110), (2, 115), (2, 116)}
_PHOTOSHOP = b"Photoshop 3.0\0"
_IPTC_RESOURCE = 0x0404

_NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
}
for _prefix, _uri in _NS.items():
    ET.register_namespace(_prefix, _uri)
#: XMP properties kept, as ElementTree names them ({namespace}name); every xmpRights property is kept.
_XMP_KEPT = {
    f"{{{_NS[ns]}}}{name}"
    for ns, name in (
        ("dc", "creator"),
        ("dc", "rights"),
        ("photoshop", "Credit"),
        ("photoshop", "Source"),
        ("photoshop", "AuthorsPosition"),
        ("Iptc4xmpCore", "CreatorContactInfo"),
        ("plus", "CopyrightOwner"),
        ("plus", "Licensor"),
        ("plus", "ImageCreator"),
    )
}
_RDF_DESCRIPTION = f"{{{_NS['rdf']}}}Description"
_RDF_ABOUT = f"{{{_NS['rdf']}}}about"

#: Exif IFD0 tags kept: Artist and Copyright (ASCII).
_EXIF_KEPT = (0x013B, 0x8298)
_EXIF_HEADER = b"Exif\0\0"


def attribution(metadata: dict[str, bytes]) -> dict[str, bytes]:
    """Of ``metadata`` (libvips' ``iptc-data``, ``xmp-data``, ``exif-data`` blocks), the rights fields
    alone; a block that is damaged, or holds none of them, is left out."""
    kept: dict[str, bytes] = {}
    for name, keep in (("iptc-data", _iptc), ("xmp-data", _xmp), ("exif-data", _exif)):
        if name in metadata:
            try:
                block = keep(metadata[name])
            except (ValueError, struct.error, ET.ParseError):
                block = None  # damaged: nothing of it is trusted to be what it says
            if block:
                kept[name] = block
    return kept


def _iptc(blob: bytes) -> bytes | None:
    """The IPTC-IIM datasets kept, as a Photoshop APP13 block (what libvips writes into a JPEG). libvips
    reads a JPEG's as that block, a TIFF's as the bare datasets."""
    iim = _photoshop_iptc(blob) if blob.startswith(_PHOTOSHOP) else blob
    if iim is None:
        return None
    kept, at = [], 0
    while at + 5 <= len(iim) and iim[at] == 0x1C:
        record, dataset, length = iim[at + 1], iim[at + 2], struct.unpack(">H", iim[at + 3 : at + 5])[0]
        if length & 0x8000:
            raise ValueError("extended IIM length")  # never for these short text fields
        if (record, dataset) in _IIM_KEPT:
            kept.append(((record, dataset), iim[at : at + 5 + length]))
        at += 5 + length
    if not any(key in _IIM_RIGHTS for key, _ in kept):
        return None
    data = b"".join(part for _, part in kept)
    return _PHOTOSHOP + b"8BIM" + struct.pack(">HH", _IPTC_RESOURCE, 0) + struct.pack(">I", len(data)) + (
        data + b"\0" * (len(data) % 2)
    )


def _photoshop_iptc(blob: bytes) -> bytes | None:
    """The IPTC resource (0x0404) of a Photoshop image resource block: ``8BIM``, id, a Pascal name padded
    to an even length, a size, the data padded to an even length."""
    at = len(_PHOTOSHOP)
    while at + 12 <= len(blob) and blob[at : at + 4] == b"8BIM":
        resource = struct.unpack(">H", blob[at + 4 : at + 6])[0]
        name = blob[at + 6] + 1
        at += 6 + name + name % 2
        size = struct.unpack(">I", blob[at : at + 4])[0]
        if resource == _IPTC_RESOURCE:
            return blob[at + 4 : at + 4 + size]
        at += 4 + size + size % 2
    return None


def _xmp(blob: bytes) -> bytes | None:
    """The XMP packet with only the rights properties of each rdf:Description (as elements or as
    attributes). XMP never declares a DTD: one that does is not parsed (no entity expansion)."""
    if b"<!DOCTYPE" in blob or b"<!ENTITY" in blob:
        return None
    root = ET.fromstring(blob.rstrip(b"\0"))
    found = False
    for description in root.iter(_RDF_DESCRIPTION):
        for child in list(description):
            if child.tag in _XMP_KEPT or child.tag.startswith(f"{{{_NS['xmpRights']}}}"):
                found = True
            else:
                description.remove(child)
        for attribute in list(description.attrib):
            if attribute in _XMP_KEPT or attribute.startswith(f"{{{_NS['xmpRights']}}}"):
                found = True
            elif attribute != _RDF_ABOUT:
                del description.attrib[attribute]
    return ET.tostring(root, encoding="utf-8") if found else None


def _exif(blob: bytes) -> bytes | None:
    """A new Exif block holding IFD0's Artist and Copyright alone (little-endian, one IFD)."""
    tiff = blob[len(_EXIF_HEADER) :] if blob.startswith(_EXIF_HEADER) else blob
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        raise ValueError("not a TIFF header")
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    values: list[tuple[int, bytes]] = []
    for index in range(count):
        entry = tiff[ifd + 2 + 12 * index : ifd + 14 + 12 * index]
        tag, kind, length = struct.unpack(order + "HHI", entry[:8])
        if tag in _EXIF_KEPT and kind == 2:  # ASCII
            value = entry[8:12] if length <= 4 else tiff[slice(*_span(order, entry, length))]
            if len(value) != length:
                raise ValueError("Exif value past the block")
            values.append((tag, value[:length]))
    if not values:
        return None
    entries, data = b"", b""
    start = 8 + 2 + 12 * len(values) + 4  # where the values too long for an entry begin
    for tag, value in values:
        if len(value) <= 4:
            entries += struct.pack("<HHI", tag, 2, len(value)) + value.ljust(4, b"\0")
        else:
            entries += struct.pack("<HHII", tag, 2, len(value), start + len(data))
            data += value + b"\0" * (len(value) % 2)
    return _EXIF_HEADER + b"II*\0" + struct.pack("<IH", 8, len(values)) + entries + b"\0\0\0\0" + data


def _span(order: str, entry: bytes, length: int) -> tuple[int, int]:
    (offset,) = struct.unpack(order + "I", entry[8:12])
    return offset, offset + length

"""Delivery path -> ``DeliveryPath``.

The path must be the raw request path, still percent-encoded (ASGI ``scope["raw_path"]``):
signatures hash the encoded text, and an encoded ``%2F`` must not become a folder separator before
the public id is checked.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from grammar.ast import DeliveryPath
from grammar.errors import BadRequest
from grammar.parse import parse_transformation, show
from grammar.vocabulary import (
    DELIVERY_TYPES,
    IMAGE_EXTENSIONS,
    MAX_PATH,
    MAX_PUBLIC_ID,
    PARAM_KEYS,
    RESOURCE_TYPES,
    SHORTCUTS,
    SUPPORTED,
)

_SIGNATURE = re.compile(r"s--([A-Za-z0-9_-]{8}|[A-Za-z0-9_-]{32})--")
_VERSION = re.compile(r"v[0-9]{1,18}")
_CLOUD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,127}")
_SHAPE = (
    "expected /<cloud_name>/image/upload/[s--<signature>--/][<transformation>/][v<version>/]"
    "<public_id>[.<extension>], or the same without /<cloud_name>, or /images/ in place of /image/upload/"
    " with /<public_id>/<seo_suffix>[.<extension>]"
)
#: Cloudinary's dynamic SEO suffix URLs (the SDKs' ``url_suffix``): ``/images/`` stands for
#: ``/image/upload/`` and a last segment, the suffix, follows the public id: a name for search engines and
#: for people, not part of what is delivered (nor of what the signature covers; the extension is the
#: format's, written after the suffix).
_SEO = "images"
_ENCODED = re.compile("%([0-9A-Fa-f]{2})")
_PIECES = re.compile("%[0-9A-Fa-f]{2}|!|[^%!]+|%")
#: What a component's percent-encoding may stand for and mean the same decoded (``plain_component``): the
#: reserved characters a path segment may hold as they are (RFC 3986 ``pchar``), but for ``,`` and ``!``
#: (strings' quotes, ``_next_piece``), and the unreserved ones (the same encoded or not, RFC 3986 says).
_DECODED = frozenset("$&'()*+;=:@-._~abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
#: Keys whose values keep their own percent-encoding rules (see ``plain_component``).
_OWN_ESCAPING = frozenset({"l", "u", "d"})


def parse_path(path: str) -> DeliveryPath:
    """Parse ``/demo/image/upload/c_scale,w_400/v1/docs/dog.jpg`` (cloud name optional)."""
    if len(path) > MAX_PATH:
        raise BadRequest(f"Delivery path is too long ({len(path)} characters; at most {MAX_PATH})")
    if not path.startswith("/"):
        raise BadRequest(f"Invalid delivery path {show(path)}: must start with '/'")
    cloud_name, seo, rest = _split_prefix(path, path[1:].split("/"))
    resource_type, delivery_type = SUPPORTED
    if not rest or rest == [""]:
        raise BadRequest(f"Invalid delivery path {show(path)}: no public id")
    if rest[-1] == "":
        raise BadRequest(f"Invalid delivery path {show(path)}: no public id (the path ends with '/')")
    if "" in rest:
        raise BadRequest(f"Invalid delivery path {show(path)}: empty component ('//')")
    signature, rest = split_signature(rest)
    if seo:
        rest = _without_suffix(path, rest)
    component_texts, version, source_segments = _split_components(rest)
    raw_transformation = "/".join(component_texts)
    transformation = plain_transformation(raw_transformation)
    raw_source = "/".join(source_segments)
    public_id, extension = _split_source(raw_source)
    return DeliveryPath(
        cloud_name=cloud_name,
        resource_type=resource_type,
        delivery_type=delivery_type,
        signature=signature,
        components=parse_transformation(transformation),
        version=version,
        public_id=public_id,
        extension=extension,
        raw_transformation=raw_transformation,
        raw_source=raw_source,
        transformation=transformation,
    )


def escape_public_id(public_id: str) -> str:
    """A public id as a delivery path writes it: percent-encoded but for its ``/`` (``parse_path``
    decodes it back), as the Upload API's ``url`` writes it."""
    return quote(public_id, safe="/")


def versioned_source(public_id: str, version: int | None = None) -> str:
    """The ``v<version>/<public id>`` tail of a delivery path the server composes (``v1`` when there is
    no version, as the SDKs write ids in folders). Without the version, a folder named like a component
    (``w_100/x``) would be read as a transformation of ``x``; a version segment ends the components.

    >>> versioned_source("w_100/my photo")
    'v1/w_100/my%20photo'
    """
    return f"v{version or 1}/{escape_public_id(public_id)}"


def layer_public_id(value: str, what: str = "layer public id") -> str:
    """The public id a layer (or default image) value names: ``docs:road`` -> ``docs/road``;
    percent-decoded, and checked as a delivered public id is (no ``..`` folder reaches out of the store).
    ``what`` names the value in the 400."""
    decoded = "/".join(_decode(part, what) for part in value.split(":"))
    _check_public_id(decoded, f"{what} {show(value)}")
    return decoded


def is_control(char: str) -> bool:
    """A C0 or C1 control character, or DEL: what must never reach a header or a file name (an attachment's
    name goes into ``Content-Disposition``, where a CR or LF would end the header).

    >>> [is_control(c) for c in ("a", "\\r", "\\x7f", "\\x85", "é")]
    [False, True, True, True, False]
    """
    return ord(char) < 32 or 127 <= ord(char) < 160


def plain_transformation(raw: str) -> str:
    """A transformation as delivery reads it (``DeliveryPath.transformation``): each ``/`` component's
    percent-encoded structural characters decoded (``plain_component``). The console's check reads a typed
    transformation through this too, so it answers what the delivery URL would.

    >>> plain_transformation("%24w_300/c_scale%2Cw_%24w")
    '$w_300/c_scale,w_$w'
    """
    return "/".join(plain_component(text) for text in raw.split("/"))


def plain_component(segment: str) -> str:
    """A transformation component with its percent-encoded structural characters decoded: some HTTP
    clients, proxies and CDNs encode ``$ : ! ; ,`` in a path (RFC 3986 lets them; Cloudinary decodes a
    path before it reads it), so ``%24w_300`` is ``$w_300`` and ``ar_16%3A9`` is ``ar_16:9``.

    What is never decoded here: ``%25`` and ``%2F`` (a decoded ``%`` or ``/`` would change what follows
    it), and anything in a token whose value keeps its own escaping rules: layers, underlays and default
    images (``l_``, ``u_``, ``d_``: a text layer decodes its text twice, ``%252C`` and ``%2C`` being a
    literal comma there, and an id's ``%3A`` is a colon, not a folder) and ``fl_attachment``'s file name.
    Nor is what is inside a ``!string!`` (its text is percent-encoded by its own rule: ``%21`` a literal
    ``!`` there, ``%3A`` a colon, not a separator); where the component has no unencoded ``!``, its
    ``%21`` are the strings' quotes. An encoded comma separates tokens but in those values and strings
    (a literal comma there, as before); what follows such a value, to the next unencoded comma, stays as
    written.

    >>> plain_component("c_scale%2Cw_%24w")
    'c_scale,w_$w'
    >>> plain_component("if_%21sale%21_in_tags%2Cl_text:Arial_40:a%2Cb%24")
    'if_!sale!_in_tags,l_text:Arial_40:a%2Cb%24'
    >>> plain_component("if_!a%21b%3Ac!_in_tags%2Cw_1")
    'if_!a%21b%3Ac!_in_tags,w_1'
    """
    if "%" not in segment:
        return segment
    tokens = []
    for token in segment.split(","):
        plain: list[str] = []
        rest = token
        while rest:
            key, _, value = _ENCODED.sub(_structural, rest).partition("_")
            if key in _OWN_ESCAPING or (key == "fl" and value.startswith("attachment")):
                plain.append(rest)  # as written, to the next ','
                break
            piece, rest = _next_piece(rest, quote="!" if "!" in token else "%21")
            plain.append(piece)
        tokens.append(",".join(plain))
    return ",".join(tokens)


def _next_piece(text: str, quote: str) -> tuple[str, str]:
    """The first ``key_value`` of ``text`` read plainly (structural characters decoded but in strings),
    and what follows the encoded comma that ends it (empty when none does). ``quote`` is how the
    component writes a string's ``!``: as it is, or (no ``!`` anywhere in it) as ``%21``."""
    parts: list[str] = []
    inside = False
    for match in _PIECES.finditer(text):
        unit = match.group(0)
        if unit.upper() == quote:
            inside = not inside
            parts.append("!")
        elif inside or unit.upper() == "%21":
            parts.append(unit)
        elif unit.upper() == "%2C":
            return "".join(parts), text[match.end() :]
        else:
            parts.append(_ENCODED.sub(_structural, unit))
    return "".join(parts), ""


def _structural(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _DECODED else match.group(0)


def is_component(segment: str) -> bool:
    """True when any ``key_value`` token of the segment has a Cloudinary key (or is a $variable)."""
    for token in plain_component(segment).split(","):
        key, underscore, _ = token.partition("_")
        if underscore and (key in PARAM_KEYS or (key.startswith("$") and len(key) > 1)):
            return True
    return False


def _split_prefix(path: str, segments: list[str]) -> tuple[str | None, bool, list[str]]:
    """The cloud name, whether the path is an SEO (``/images/``) one, and the segments after the prefix.
    A cloud's own prefix wins over ``images`` (a cloud may be named so: ``/images/image/upload/x``)."""
    first, second = segments[0], segments[1] if len(segments) > 1 else ""
    third = segments[2] if len(segments) > 2 else ""
    seo = False
    if first in SHORTCUTS:
        cloud_name, (resource_type, delivery_type), rest = None, SHORTCUTS[first], segments[1:]
    elif first in RESOURCE_TYPES and second in DELIVERY_TYPES:
        cloud_name, resource_type, delivery_type, rest = None, first, second, segments[2:]
    elif second in SHORTCUTS:
        cloud_name, (resource_type, delivery_type), rest = first, SHORTCUTS[second], segments[2:]
    elif second in RESOURCE_TYPES and third in DELIVERY_TYPES:
        cloud_name, resource_type, delivery_type, rest = first, second, third, segments[3:]
    elif first == _SEO:
        (cloud_name, (resource_type, delivery_type), rest), seo = (None, SUPPORTED, segments[1:]), True
    elif second == _SEO:
        (cloud_name, (resource_type, delivery_type), rest), seo = (first, SUPPORTED, segments[2:]), True
    else:
        raise BadRequest(f"Invalid delivery path {show(path)}: {_SHAPE} (root paths are not supported)")
    if (resource_type, delivery_type) != SUPPORTED:
        raise BadRequest(
            f"Unsupported delivery type {resource_type}/{delivery_type}: only image/upload is supported (and "
            "image/fetch where the server fetches)"
        )
    if cloud_name is not None and not _CLOUD_NAME.fullmatch(cloud_name):
        raise BadRequest(
            f"Invalid cloud name {show(cloud_name)}:"
            " expected a letter then up to 127 letters, digits, '-' or '_'"
        )
    return cloud_name, seo, rest


def _without_suffix(path: str, rest: list[str]) -> list[str]:
    """An SEO path's segments as the ``/image/upload/`` path they alias: the suffix dropped, its
    extension moved onto the public id, as the SDKs sign it (``<public_id>.<ext>``); it then means what
    it means there (a format, or else part of the id)."""
    if len(rest) < 2:
        raise BadRequest(
            f"Invalid delivery path {show(path)}: an /images/ (SEO) path ends with "
            "<public_id>/<seo_suffix>[.<extension>]"
        )
    *head, suffix = rest
    stem, dot, extension = suffix.rpartition(".")
    if dot and stem:
        head[-1] += f".{extension}"
    return head


def split_signature(rest: list[str]) -> tuple[str | None, list[str]]:
    """A leading ``s--SIG--`` segment of a path's segments (the last one, the source, never is): its
    SIG and the segments after it; a 400 for a segment shaped like one that is not."""
    first = rest[0]
    if len(rest) == 1 or not (first.startswith("s--") and first.endswith("--")):
        return None, rest
    match = _SIGNATURE.fullmatch(first)
    if match is None:
        raise BadRequest(
            f"Invalid signature component {show(first)}: expected s--<8 or 32 URL-safe base64 characters>--"
        )
    return match.group(1), rest[1:]


def _split_components(rest: list[str]) -> tuple[list[str], int | None, list[str]]:
    """The last segment is always the public id; a ``v<digits>`` segment ends the components.

    Without a version, components are the leading segments that look like transformations and the
    first one that does not starts the public id (``docs/rmv_bgd/dog``). With a version, a public id
    cannot contain a ``v<digits>`` folder, so everything before it is a component, checked by the grammar.
    """
    head = rest[:-1]
    for index, segment in enumerate(head):
        if _VERSION.fullmatch(segment):
            return head[:index], int(segment[1:]), rest[index + 1 :]
    count = 0
    while count < len(head) and is_component(head[count]):
        count += 1
    return head[:count], None, rest[count:]


def _split_source(raw_source: str) -> tuple[str, str | None]:
    raw_id, extension = raw_source, None
    stem, dot, suffix = raw_source.rpartition(".")
    if dot and stem and not stem.endswith("/") and "/" not in suffix and suffix.lower() in IMAGE_EXTENSIONS:
        raw_id, extension = stem, suffix.lower()
    public_id = _decode(raw_id, "public id")
    _check_public_id(public_id, f"public id {show(public_id)}")
    return public_id, extension


def _decode(text: str, what: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest(f"Invalid {what} {show(text)}: percent-encoding is not valid UTF-8") from None


def _check_public_id(public_id: str, label: str) -> None:
    if len(public_id) > MAX_PUBLIC_ID:
        raise BadRequest(f"public_id is too long ({len(public_id)} characters; at most {MAX_PUBLIC_ID})")
    if "\\" in public_id or any(map(is_control, public_id)):  # C1 too: ids are quoted in 404 bodies
        raise BadRequest(f"Invalid {label}: backslashes and control characters are not allowed")
    if any(part in ("", ".", "..") for part in public_id.split("/")):
        raise BadRequest(f"Invalid {label}: folder names must not be empty, '.' or '..'")

"""Code for Cloudinary's own SDKs that builds exactly the delivery URL the console shows.

Python uses the ``cloudinary`` package (``CloudinaryImage.build_url``), JavaScript ``@cloudinary/url-gen``.
Both are configured for the host the page was served from (``cname`` over http, ``secure_distribution``
over https). The Python SDK writes each component's parameters sorted by their ``key_value`` text
(``generate_transformation_string``), so a component is written as SDK options only when it is already
in that order and every key has a plain option; any other component goes in as ``raw_transformation``,
which the SDK copies as it is. ``tests/console/test_snippets.py`` runs the Python snippets with the real
SDK and compares the URLs; url-gen takes the whole string with ``addTransformation``.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from grammar import parse_transformation, plain_transformation

#: Delivery keys whose SDK option passes a plain string or integer through unchanged (checked against
#: the SDK's ``generate_transformation_string``: ``#`` colours, lists, dicts and expressions are what it
#: rewrites, and the console writes none of those).
OPTIONS = {
    "a": "angle", "ar": "aspect_ratio", "b": "background", "bo": "border", "c": "crop", "co": "color",
    "dpr": "dpr", "e": "effect", "f": "fetch_format", "fl": "flags", "g": "gravity", "h": "height",
    "l": "overlay", "o": "opacity", "q": "quality", "u": "underlay", "w": "width", "x": "x", "y": "y",
}
#: What the SDK leaves out of a URL when it escapes a public id (``cloudinary.utils.smart_escape``).
_UNSAFE = re.compile(r"[^a-zA-Z0-9_.\-/:]+")


def escape_public_id(public_id: str) -> str:
    """The public id as the SDKs write it in a URL (every other character %-escaped as UTF-8)."""
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group(0).encode()), public_id)


def default_version(public_id: str) -> int | None:
    """The version the SDKs write for an id with no version of its own (their ``force_version``, on by
    default): 1 for an id in folders, which a delivery path needs (a folder named like a component,
    ``w_100/x``, would be read as a transformation), else none. The console writes the same."""
    if "/" in public_id and not re.match(r"v[0-9]+", public_id):
        return 1
    return None


def _value(text: str) -> int | str:
    """An integer when the SDK's ``str()`` gives the same text back, so the snippet reads naturally."""
    if re.fullmatch(r"-?[1-9][0-9]*|0", text):
        return int(text)
    return text


def python_components(transformation: str) -> list[dict[str, int | str]]:
    """One dict per component: SDK options where they round-trip exactly, else ``raw_transformation``.
    ``transformation`` is as the URL writes it, read as delivery reads it (``plain_transformation``); a
    component with an encoded structural character (``%24w_300``) goes in as written."""
    result: list[dict[str, int | str]] = []
    written = transformation.split("/")
    components = parse_transformation(plain_transformation(transformation))
    for raw, component in zip(written, components, strict=True):
        if raw != component.raw:
            result.append({"raw_transformation": raw})
            continue
        texts = [f"{p.key}_{p.value}" for p in component.params]
        keys = [p.key for p in component.params]
        plain = (
            texts == sorted(texts)
            and len(set(keys)) == len(keys)
            and all(k in OPTIONS for k in keys)
            and all(p.value and "$" not in p.value and "#" not in p.value for p in component.params)
        )
        if plain:
            result.append({OPTIONS[p.key]: _value(p.value) for p in component.params})
        else:
            result.append({"raw_transformation": component.raw})
    return result


def _host_config(base_url: str) -> tuple[bool, str]:
    parts = urlsplit(base_url)
    return parts.scheme == "https", parts.netloc


def python(base_url: str, cloud: str, transformation: str, public_id: str, version: int | None) -> str:
    secure, host = _host_config(base_url)
    where = f'secure=True, secure_distribution="{host}"' if secure else f'secure=False, cname="{host}"'
    lines = [
        "import cloudinary",
        "from cloudinary import CloudinaryImage",
        "",
        f'cloudinary.config(cloud_name={json.dumps(cloud)}, {where})',
    ]
    options = []
    components = python_components(transformation) if transformation else []
    if components:
        inner = ",\n".join(f"        {_py_dict(c)}" for c in components)
        options.append(f"    transformation=[\n{inner},\n    ]")
    # Without a version the SDK adds v1 to an id in folders, as the console's URL does (default_version).
    if version:
        options.append(f"    version={version}")
    body = ",\n".join(options)
    call = f"(\n{body},\n)" if body else "()"
    lines.append(f"url = CloudinaryImage({json.dumps(public_id)}).build_url{call}")
    return "\n".join(lines) + "\n"


def _py_dict(options: dict[str, int | str]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in options.items()) + "}"


def javascript(base_url: str, cloud: str, transformation: str, public_id: str, version: int | None) -> str:
    secure, host = _host_config(base_url)
    where = f"secure: true, secureDistribution: {json.dumps(host)}" if secure else \
        f"secure: false, cname: {json.dumps(host)}"
    # analytics: false, or url-gen appends ?_a=... to every URL. Without a version it adds v1 to an id
    # in folders, as the console's URL does (default_version).
    url = [f"    {where}, analytics: false"]
    chain = f"cld.image({json.dumps(public_id)})"
    if version:
        chain += f"\n  .setVersion({version})"
    if transformation:
        # As delivery reads it: url-gen encodes the URL's '%' again (%24 would reach the server as %2524,
        # a literal "%24"), and writes '$', ',' and ':' as they are.
        chain += f"\n  .addTransformation({json.dumps(plain_transformation(transformation))})"
    return "\n".join([
        'import { Cloudinary } from "@cloudinary/url-gen";',
        "",
        "const cld = new Cloudinary({",
        f"  cloud: {{ cloudName: {json.dumps(cloud)} }},",
        "  url: {",
        *url,
        "  },",
        "});",
        f"const url = {chain}\n  .toURL();",
    ]) + "\n"

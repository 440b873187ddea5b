"""Default image ``d_<public_id>[.<ext>]``: when the requested original does not exist, the same
transformation is applied to this image instead (``d_docs:placeholders:avatar.png``).

Not a step on the image: which original a URL starts from is the resolver's business (cutout/resolve.py),
so the plan only carries the id (``Plan.default_image``), and ``d_`` is left out of what keys the
derivative's bytes (``Plan.derivative``): the placeholder is the default image's own derivative.
"""

from __future__ import annotations

from transform.ops import args
from transform.ops.registry import ParamSpec, param


def _default_id(key: str, value: str) -> str:
    # Cloudinary writes the default's extension (d_avatar.png); originals are found by public id in
    # whatever format they are stored, so it is dropped here as for l_ and u_.
    return args.public_id(key, value, "default image public id")


param(
    ParamSpec(
        "d",
        "default image",
        _default_id,
        "the image delivered, with the same transformation, when the requested original does not exist "
        "or a fetch URL's image cannot be downloaded (d_docs:placeholders:avatar.png); the answer says so "
        "in X-Cld-Error and is cached briefly",
        "default",
        lambda v: v.replace("/", ":"),
    )
)

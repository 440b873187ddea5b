"""Flags ``fl_<flag>[.<flag>...]``. Layer flags qualify ``fl_layer_apply`` (the plan compiler checks that);
output flags describe the delivered file, like ``f_`` and ``q_``."""

from __future__ import annotations

from grammar.errors import InvalidArgument
from transform.ops.registry import ParamSpec, param

LAYER_FLAGS = ("layer_apply", "no_overflow", "relative", "region_relative")
#: preserve_transparency: a JPEG choice becomes PNG when the result is transparent.
#: progressive: progressive JPEG, interlaced PNG (other formats have no such mode); :none is the default.
OUTPUT_FLAGS = ("preserve_transparency", "progressive", "progressive:none")
_WHY = {
    "progressive:semi": " (use fl_progressive: libvips writes one progressive scan script)",
    "progressive:steep": " (use fl_progressive: libvips writes one progressive scan script)",
}


def _flags(key: str, value: str) -> tuple[str, ...]:
    flags = value.split(".")
    for flag in flags:
        if flag not in LAYER_FLAGS + OUTPUT_FLAGS:
            known = ", ".join(LAYER_FLAGS + OUTPUT_FLAGS[:2])
            raise InvalidArgument(
                key,
                value,
                f"flags must be {known} (joined by '.'); {flag} is not supported{_WHY.get(flag, '')}",
            )
    if "progressive" in flags and "progressive:none" in flags:
        raise InvalidArgument(key, value, "flags must not ask for progressive and progressive:none together")
    return tuple(sorted(set(flags)))


param(
    ParamSpec(
        "fl",
        "flags",
        _flags,
        "flags: layer_apply closes a layer block (no_overflow, relative qualify it; relative also makes "
        "a layer's own w_/h_ fractions of the image it is placed on; region_relative makes them, and "
        "x_/y_, fractions of the face or subject box g_face, g_faces or g_auto:subject places it on, and "
        "a c_crop's w_/h_ fractions of the face it cuts around); "
        "preserve_transparency keeps alpha by delivering PNG instead of JPEG; "
        "progressive makes progressive JPEG or interlaced PNG",
        "flags",
        lambda v: ".".join(v),
    )
)

"""The op registry and its families. Importing this package registers every op, in this order."""

from transform.ops import (  # noqa: F401  (registration)
    conditions,
    effects,
    facefx,
    flags,
    layers,
    matte,
    named,
    outline,
    output,
    placeholder,
    resize,
    shadow,
    style,
    tone,
    trim,
)
from transform.ops.registry import (
    ACTION_ORDER,
    BUILDERS,
    CROP_MODES,
    EFFECTS,
    PARAMS,
    Action,
    Ctx,
    LoadLayer,
    Source,
    op_names,
    render_param,
    spec_for,
)

__all__ = [
    "ACTION_ORDER",
    "BUILDERS",
    "CROP_MODES",
    "EFFECTS",
    "PARAMS",
    "Action",
    "Ctx",
    "LoadLayer",
    "Source",
    "op_names",
    "render_param",
    "spec_for",
]

"""The rendering engine: transformation components -> Plan -> pyvips -> encoded bytes.

plan = compile_plan(parse_transformation("c_fill,g_auto,w_400,h_300/f_auto"))
choice = negotiate_format(plan, extension="jpg", accept=request_accept_header)
rendered = render(plan, "originals/dog.jpg", source_key=etag, choice=choice, load_layer=..., masks=...)
"""

from transform.formats import FormatChoice, negotiate_format
from transform.limits import Limits
from transform.plan import Plan, compile_plan
from transform.render import Rendered, delivers_animation, render
from transform.watch import Watch

__all__ = [
    "FormatChoice", "Limits", "Plan", "Rendered", "Watch", "compile_plan", "delivers_animation",
    "negotiate_format", "render",
]

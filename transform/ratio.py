"""The chain's device pixel ratio: which lengths of which component a ``dpr_`` alone in its component
multiplies (``c_scale,w_100/r_10/dpr_2.0`` is ``c_scale,w_200/r_20``).

The result at dpr_2.0 must look, on a screen of that ratio, as the result at dpr_1.0 does on its own:
the same picture with twice the pixels. Cloudinary's support article "How does using DPR differ from
setting multiplied dimension values?" states that principle ("in both cases the on-screen result will be
identical") and tunes each parameter to it. So a length is multiplied only where it is measured on an
image that is itself at the ratio. Until a component sizes the chain, the steps act on the original,
which is the same at every ratio, and their lengths stay (``r_60/.../c_scale,w_100/dpr_2.0`` rounds the
original's corners by 60, as dpr_1.0 does, and the scaling makes them twice as round in pixels as
dpr_1.0's). Which sizes change:

* A component with ``w_``/``h_`` that scales (every mode but ``c_crop`` and ``c_mpad``) brings the chain
  to the ratio: its sizes are multiplied, pixels and fractions alike (``w_0.5`` of the original at dpr_2.0
  is the whole width); from then on the chain is at the ratio (``Sizing.scaled``).
* On a chain at the ratio, pixel sizes are multiplied; a fraction is of an image already at the ratio,
  and stays (``c_scale,w_100/c_scale,w_0.5/dpr_2.0`` is 200 then 100 px).
* ``c_crop`` and ``c_mpad`` cut or pad without scaling: before a later component sizes the chain, they
  choose a region of the original, the same at every ratio, and take no ratio (``c_crop,w_200,h_200,
  x_100,y_100/c_scale,w_100/dpr_2.0`` shows the region dpr_1.0 shows, in twice the pixels). The last
  sizing of a chain gets the ratio whatever its mode (``c_crop,w_200,h_200/dpr_2.0`` is 400 x 400):
  dpr_ multiplies the delivered size. Each branch of an if_ block starts from where the chain stood at
  its if_ (plan.py), and a sizing in the other branch is not a later one.
* ``fl_relative`` and ``fl_region_relative`` fractions are of the image a layer is placed on (or of a
  face on it), which is as much at the ratio as the layer is to be: they are never multiplied.

A layer is a chain of its own, to end at the ratio of what it is placed on (``Sizing.target``): a text is
drawn at that ratio; an image layer starts as its original, and its own sizing (a component between its
``l_`` and ``fl_layer_apply``, or ``fl_layer_apply``'s ``w_``/``h_``) brings it there. Its placement
(``fl_layer_apply``'s ``x_``/``y_``) is measured on the image under it. A layer placed before the chain
is sized is placed on the original: nothing of it is multiplied.

A component's own ``dpr_`` multiplies all its lengths (``c_crop,dpr_2.0,h_40,w_50,x_10,y_10`` is
``c_crop,h_80,w_100,x_20,y_20``); plan.py applies it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grammar.errors import BadRequest
from transform.ops import scale_for_dpr
from transform.ops.args import Dim, fmt_float
from transform.ops.blends import is_blend
from transform.ops.text import TextLayer
from transform.templates import Template

#: Modes that cut or pad the image without scaling it.
NON_SCALING = frozenset({"crop", "mpad"})
_SIZES = ("w", "h")
_OFFSETS = frozenset({"x", "y"})


@dataclass
class Sizing:
    """Where a block (the delivered image, or a layer) stands under the chain's ratio: ``scaled``, its
    image is at the ratio already; ``target``, it is to end at the ratio (the delivered image always; a
    layer when the image it is placed on is at the ratio)."""

    scaled: bool = False
    target: bool = True

    def layer(self, source: Any) -> Sizing:
        """The Sizing of a layer opened on this block: a text is drawn at this block's ratio, an image
        starts as its original is."""
        return Sizing(scaled=is_text(source) and self.scaled, target=self.scaled)


def is_text(source: Any) -> bool:
    return isinstance(source, TextLayer) or (type(source) is Template and str(source).startswith("text:"))


def sized_later(expanded: Sequence[Mapping[str, Any]], alone: Collection[int]) -> set[int]:
    """Indices of the components with ``w_``/``h_`` that a later component of the same block (the
    delivered image, or the layer between an ``l_`` and its ``fl_layer_apply``) may size again: not one in
    the other branch of an if_ block they are both in. ``alone``: the openers that are a whole layer by
    themselves (layering.unclosed_openers)."""
    blocks: list[list[tuple[int, dict[int, str]]]] = [[]]
    later: set[int] = set()
    branches: dict[int, str] = {}  # the if_ blocks open: the index of each if_, and the branch taken

    def close(block: list[tuple[int, dict[int, str]]]) -> None:
        for n, (index, path) in enumerate(block):
            if any(_together(path, other) for _, other in block[n + 1 :]):
                later.add(index)

    for index, params in enumerate(expanded):
        word = params.get("if")
        if word is not None and len(params) == 1:
            if word not in ("else", "end"):
                branches[index] = "then"
            elif branches:  # (an if_else or if_end without its if_ is the compile's 400)
                if word == "end":
                    branches.popitem()
                else:
                    branches[next(reversed(branches))] = "else"
            continue
        sized = [(index, dict(branches))] if "w" in params or "h" in params else []
        opens = "l" in params or "u" in params
        closes = "layer_apply" in params.get("fl", ())
        if opens and (closes or index in alone):
            continue  # a layer in one component: sized once
        if opens:
            blocks.append(sized)
        elif closes and len(blocks) > 1:
            close(blocks.pop() + sized)
        else:
            blocks[-1].extend(sized)
    for block in blocks:
        close(block)
    return later


def _together(one: Mapping[int, str], other: Mapping[int, str]) -> bool:
    """Whether two components may both run: no if_ block holds them in different branches."""
    return all(other.get(start, branch) == branch for start, branch in one.items())


def component(params: Mapping[str, Any], ratio: float, sizing: Sizing, *, last: bool) -> dict[str, Any]:
    """A component of a block (a layer's opener: of the layer) at the chain's ratio: its sizes as this
    module says, its other lengths multiplied when the block is at the ratio once it is sized. ``last``:
    no later component of the block sizes it (see ``sized_later``)."""
    sized = _sized(params, ratio, sizing, last=last)
    return _lengths(sized, ratio if sizing.scaled else 1.0, lambda key: True)


def closer(params: Mapping[str, Any], ratio: float, layer: Sizing) -> dict[str, Any]:
    """``fl_layer_apply``: its ``w_``/``h_`` are the layer's last sizing, its ``x_``/``y_`` lengths on
    the image under it, its blend's lengths on the layer (``_on_the_layer``)."""
    sized = _sized(params, ratio, layer, last=True)
    placed = _lengths(sized, ratio if layer.target else 1.0, lambda key: key in _OFFSETS)
    return _on_the_layer(placed, ratio, layer)


def one_component(
    params: Mapping[str, Any], ratio: float, layer: Sizing, placement: Collection[str]
) -> dict[str, Any]:
    """A layer opened and applied in one component (``l_logo,c_scale,w_40,g_north_east,x_10,r_8``): its
    own steps (``r_8``) act on the layer before the placement's ``w_``/``h_`` size it, ``x_``/``y_``
    place it on the image under it."""
    before = ratio if layer.scaled else 1.0
    if is_blend(params.get("e")):  # it places the layer (after its sizing), as in fl_layer_apply
        placement = {*placement, "e"}
    sized = _sized(params, ratio, layer, last=True)
    own = _lengths(sized, before, lambda key: key not in placement)
    placed = _lengths(own, ratio if layer.target else 1.0, lambda key: key in _OFFSETS)
    return _on_the_layer(placed, ratio, layer) if "e" in placement else placed


def _on_the_layer(params: dict[str, Any], ratio: float, layer: Sizing) -> dict[str, Any]:
    """The blend's lengths (``e_anti_removal``'s warp, in pixels of the layer) at the ratio the layer ends
    at, once placed: the ratio where its sizing (or a text's drawing) brought it there, else none (an
    image layer with no sizing is its original at every ratio)."""
    return _lengths(params, ratio if layer.scaled else 1.0, lambda key: key == "e")


def _lengths(params: Mapping[str, Any], ratio: float, chosen: Callable[[str], bool]) -> dict[str, Any]:
    if ratio == 1.0:
        return dict(params)
    picked = scale_for_dpr({k: v for k, v in params.items() if chosen(k)}, ratio)
    return {key: picked.get(key, value) for key, value in params.items()}


def _sized(params: Mapping[str, Any], ratio: float, sizing: Sizing, *, last: bool) -> dict[str, Any]:
    """``params`` with the ``dpr_`` its ``w_``/``h_`` are drawn at (``dpr_1.0`` where the chain's ratio
    leaves them: the derivative says so), and ``sizing`` updated."""
    sizes = {key: params[key] for key in _SIZES if key in params}
    if not sizes:
        return dict(params)
    flags = params.get("fl", ())
    outside = "relative" in flags or "region_relative" in flags  # fractions of another image
    fractions = {k for k, v in sizes.items() if type(v) is Dim and v.relative}
    if not sizing.target or (not sizing.scaled and not last and params.get("c") in NON_SCALING):
        return {**params, "dpr": 1.0}
    if not sizing.scaled:
        sizing.scaled = True  # pixels and fractions of an image not at the ratio: all multiplied
        multiplied = set(sizes) - fractions if outside else set(sizes)
    else:
        multiplied = set(sizes) - fractions  # a fraction of an image at the ratio is at the ratio
    if not multiplied:
        return {**params, "dpr": 1.0}
    if outside or not fractions - multiplied:
        return {**params, "dpr": ratio}  # the resize multiplies them (never fl_relative fractions)
    # Pixels multiplied, a fraction not (c_pad,h_1.0,w_150 on a chain at the ratio): the pixels here.
    return {**params, **{key: _times(key, sizes[key], ratio) for key in multiplied}, "dpr": 1.0}


def _times(key: str, size: Any, ratio: float) -> Dim:
    if type(size) is Template:
        raise BadRequest(
            f"Invalid transformation: {key}_{size} is decided by the image, and dpr_{fmt_float(ratio)} "
            "cannot scale it beside a fraction of an image already at that ratio; write the length with "
            f"the ratio in it ({key}_..._mul_{fmt_float(ratio)}) or leave dpr_ out"
        )
    return Dim(max(1, round(size.value * ratio)), False)

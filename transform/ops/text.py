"""Text layers: ``l_text:<font>_<size>[_<style>...]:<text>`` (and ``u_text:...``), drawn with libvips'
text renderer (Pango and fontconfig).

The text is percent-decoded twice, as Cloudinary's escaping rules ask: the SDKs write a comma as ``%252C``
and a slash as ``%252F`` (one decoding leaves ``%2C``, which the URL's structure does not split on), and a
space as ``%20``. The family is looked up by fontconfig: ``Arial`` is Liberation Sans where
``fonts-liberation2`` is installed (metric-compatible), and any family it does not know falls back to
its default sans-serif (DejaVu Sans with ``fonts-dejavu-core``), as a browser would; ``.ci/run`` installs
both. Sizes are pixels (72 dpi). Styles: ``bold``, ``semibold``, ``light``, ``italic``, ``oblique``,
``normal``, ``underline``, ``strikethrough``, ``left``/``center``/``right``/``justify`` (alignment of
lines), ``letter_spacing_<n>`` and ``line_spacing_<n>`` (pixels), and ``stroke``: an outline around the
letters, whose width and colour the opening component's ``bo_<width>px_solid_<colour>`` gives (as the
reference pairs them; default 1px black), drawn outside the glyphs so the letters keep their size.
``co_`` in the opening component is the text colour (default black), ``b_`` a background behind the
text's box; ``c_fit`` with ``w_`` there wraps the text to that width instead of scaling it (Cloudinary's
text boxes).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import quote, unquote

import pyvips

from grammar.errors import InvalidArgument
from transform import pixels
from transform.limits import Limits, check_output
from transform.ops.args import Color, at_dpr, integer

MAX_SIZE = 1000
MAX_TEXT = 2000  # characters, after decoding
MAX_SPACING = 99_999  # pixels either way (see _spacing)
BLACK = Color(0, 0, 0, 255, "black")
_WEIGHTS = {"bold": "Bold", "semibold": "Semi-Bold", "light": "Light", "thin": "Thin", "black": "Heavy"}
_SLANTS = {"italic": "Italic", "oblique": "Oblique", "normal": ""}
_DECORATIONS = ("underline", "strikethrough", "stroke")
#: Characters that draw nothing, like spaces (format and control: U+200B, U+202E): Pango lays out an
#: empty line for a text of only these, and libvips fails on it ("unable to call text").
_INVISIBLE = ("Cf", "Cc")
#: The stroke of ``stroke`` without a bo_ in the component.
DEFAULT_STROKE = (1, BLACK)
_ALIGNMENTS = {
    "left": "low",
    "start": "low",
    "center": "centre",
    "right": "high",
    "end": "high",
    "justify": "low",
}
_EXPECTED = (
    "text layer must be text:<font>_<size>[_<style>...]:<text>, size 1 to 1000, styles bold, semibold, "
    "light, thin, black, italic, oblique, normal, underline, strikethrough, stroke, left, center, right, "
    "justify, letter_spacing_<n>, line_spacing_<n>"
)


@dataclass(frozen=True)
class TextLayer:
    family: str
    size: int
    styles: tuple[str, ...]
    text: str
    raw: str  # the URL's own spelling (after "text:"), for the canonical form

    def __str__(self) -> str:
        return f"text:{self.raw}"

    def at_dpr(self, key: str, ratio: float) -> TextLayer:
        """The text at a device pixel ratio: its size and spacings multiplied, so that it looks as large on
        the screen (Cloudinary: "in order for font size to look the same in DPR 1.0 and DPR 2.0, larger
        font should be used for the latter"); ``raw`` spelled anew to say so (it keys the drawn text)."""
        size = at_dpr(key, str(self), self.size, ratio, "text size", 1, MAX_SIZE)
        styles = []
        for style in self.styles:
            name, _, pixels = style.rpartition("_")
            if name in ("letter_spacing", "line_spacing"):
                spacing = at_dpr(key, str(self), int(pixels), ratio, name.replace("_", " "),
                                 -MAX_SPACING, MAX_SPACING)  # fmt: skip
                style = f"{name}_{spacing}"
            styles.append(style)
        text = self.raw.partition(":")[2]
        raw = "_".join([quote(self.family, safe=""), str(size), *styles]) + f":{text}"
        return replace(self, size=size, styles=tuple(styles), raw=raw)


def parse_text(key: str, value: str) -> TextLayer:
    """``text:Arial_40_bold:Hi%252C%20there`` -> TextLayer("Arial", 40, ("bold",), "Hi, there")."""
    _, _, rest = value.partition(":")
    style, sep, encoded = rest.partition(":")
    if not sep or not encoded:
        raise InvalidArgument(key, value, _EXPECTED)
    tokens = unquote(style).split("_")
    # The first token of digits is the size (str.isdigit() also takes '²', which int() does not).
    size_at = next((i for i, t in enumerate(tokens) if t.isascii() and t.isdigit()), None)
    size = None if size_at is None else integer(tokens[size_at])
    if size_at is None or size_at == 0 or size is None or not 1 <= size <= MAX_SIZE:
        raise InvalidArgument(key, value, _EXPECTED)
    styles: list[str] = []
    extra = tokens[size_at + 1 :]
    chosen: dict[str, str] = {}  # group -> the token that chose it: one of each (the reference's syntax)
    while extra:
        token = extra.pop(0)
        spacing = _spacing(extra[1]) if token in ("letter", "line") and len(extra) >= 2 else None
        if extra[:1] == ["spacing"] and spacing is not None:
            style = f"{token}_spacing_{spacing}"
            group: str | None = f"{token} spacing"
            del extra[:2]
        elif token in _WEIGHTS or token in _SLANTS or token in _DECORATIONS or token in _ALIGNMENTS:
            style = token
            group = _group(token)
        else:
            raise InvalidArgument(key, value, f"{_EXPECTED}; {token} is not supported")
        if group is not None and group in chosen:
            # The drawing takes one of each: the other would be dropped silently (bold_light, left_right).
            raise InvalidArgument(key, value, f"a text layer takes one {group}: {chosen[group]} and {style}")
        if group is not None:
            chosen[group] = style
        styles.append(style)
    try:
        text = unquote(unquote(encoded, errors="strict"), errors="strict")
    except UnicodeDecodeError:
        raise InvalidArgument(key, value, "the text's percent-encoding is not valid UTF-8") from None
    if "\x00" in text or "\x00" in unquote(style):
        # libvips hands the text (and the font's name) to Pango as a C string: a NUL would end it there,
        # and what follows would be dropped without a word ("a%00b" drew "a").
        raise InvalidArgument(key, value, "a text layer's text and font must not contain NUL (%00)")
    if all(char.isspace() or unicodedata.category(char) in _INVISIBLE for char in text):
        raise InvalidArgument(key, value, "the text of a text layer must have something to draw")
    if len(text) > MAX_TEXT:
        raise InvalidArgument(key, value[:40] + "...", f"text layers hold at most {MAX_TEXT} characters")
    family = "_".join(tokens[:size_at])
    return TextLayer(family, size, tuple(styles), text, rest)


def _group(token: str) -> str | None:
    """The style a token chooses one of (None for a decoration: underline and stroke go together)."""
    if token in _WEIGHTS:
        return "weight"
    if token in _SLANTS:
        return "slant"
    return "alignment" if token in _ALIGNMENTS else None


#: ``$(name)`` in a text layer's text: the value of the variable ``$name`` (transform/binding.py puts in
#: those the URL decides, the render the others).
INTERPOLATION = re.compile(r"\$\(([A-Za-z][A-Za-z0-9]*)\)")


def interpolated(layer: TextLayer) -> frozenset[str]:
    """The variables (``$name``) whose values the text shows."""
    return frozenset("$" + name for name in INTERPOLATION.findall(layer.text))


def interpolate(layer: TextLayer, values: Mapping[str, str]) -> TextLayer:
    """The layer with each ``$(name)`` whose ``$name`` is in ``values`` replaced by that text, in the text
    and in its URL spelling (what the canonical form and the cache key show)."""

    def put(text: str, encode: bool) -> str:
        def value(match: re.Match[str]) -> str:
            found = values.get("$" + match[1])
            if found is None:
                return match[0]
            return quote(found, safe="") if encode else found

        return INTERPOLATION.sub(value, text)

    if any("\x00" in value for value in values.values()):  # as parse_text refuses it in the text itself
        raise InvalidArgument("l", str(layer), "a text layer's text and font must not contain NUL (%00)")
    style, _, encoded = layer.raw.partition(":")
    return replace(layer, text=put(layer.text, False), raw=f"{style}:{put(encoded, True)}")


def _spacing(text: str) -> int | None:
    """A spacing in pixels, under 100000 either way (the renderer's canvas bounds the rest), else None."""
    number = integer(text)
    return number if number is not None and abs(number) <= MAX_SPACING else None


def _estimated_size(
    layer: TextLayer, wrap: int | None, line_spacing: int = 0, letter_spacing: int = 0
) -> tuple[int, int]:
    """A generous bound on the drawn size, known before drawing: glyphs are at most about as wide as the
    font size plus the letter spacing, lines 1.5 times as tall plus the extra spacing between them (so
    2,000 characters at 1000 px are refused, not drawn)."""
    lines = layer.text.split("\n")
    widest = max(len(line) for line in lines) * max(1, layer.size + letter_spacing)
    rows = len(lines)
    if wrap is not None and widest > wrap:
        rows += sum(len(line) for line in lines) * layer.size // max(1, wrap)
        widest = wrap
    return max(1, widest), max(1, int(rows * layer.size * 1.5) + max(0, line_spacing) * (rows - 1))


def render_text(
    layer: TextLayer,
    colour: Color | None,
    background: Color | None,
    wrap: int | None,
    limits: Limits,
    stroke: tuple[int, Color] | None = None,
) -> pyvips.Image:
    """The text as an RGBA image just large enough for it (and its stroke; plus its background, when
    given). ``stroke``: the bo_ of a ``stroke`` style (width, colour)."""
    weight = next((_WEIGHTS[s] for s in layer.styles if s in _WEIGHTS), "")
    slant = next((_SLANTS[s] for s in layer.styles if s in _SLANTS), "")
    font = " ".join(part for part in (layer.family, weight, slant, f"{layer.size}px") if part)
    # Pango markup: the client's text is escaped (it could otherwise inject markup, or fail to parse).
    # (Not html.escape: the html package loads its 2,000-entity table, start-up time every process pays.)
    markup = layer.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    letter = next((int(s.rsplit("_", 1)[1]) for s in layer.styles if s.startswith("letter_spacing_")), 0)
    if letter:
        markup = f'<span letter_spacing="{letter * 1024}">{markup}</span>'
    if "underline" in layer.styles:
        markup = f'<span underline="single">{markup}</span>'
    if "strikethrough" in layer.styles:
        markup = f'<span strikethrough="true">{markup}</span>'
    options: dict[str, object] = {"font": font, "dpi": 72}
    align = next((s for s in layer.styles if s in _ALIGNMENTS), None)
    if align:
        options["align"] = _ALIGNMENTS[align]
        options["justify"] = align == "justify"
    # Pixels added between lines (negative: fewer), as Cloudinary's line_spacing is; libvips' spacing is
    # the same (Pango's), and 0 there means its default.
    line = next((int(s.rsplit("_", 1)[1]) for s in layer.styles if s.startswith("line_spacing_")), 0)
    if line:
        options["spacing"] = line
    if wrap is not None:
        options["width"] = wrap
    # libvips draws it at once
    check_output(*_estimated_size(layer, wrap, line, letter), limits, "Text layer")
    try:
        mask = pyvips.Image.text(markup, **options)
    except pyvips.Error as exc:  # Pango refusing this text or font description: the client's input
        raise InvalidArgument("l", str(layer), f"the text cannot be drawn ({exc.message.strip()})") from exc
    check_output(mask.width, mask.height, limits, "Text layer")
    ink = colour or BLACK
    text = pixels.solid(mask.width, mask.height, [ink.r, ink.g, ink.b, 0]).extract_band(0, n=3)
    text = text.bandjoin((mask * (ink.a / 255)).cast("uchar")).copy(interpretation="srgb")
    if "stroke" in layer.styles:
        # Imported here: importing it at the top would register e_outline before the effects ahead of it
        # in the table (and every listing of effects would change order).
        from transform.ops.outline import draw_outline

        width, paint = stroke or DEFAULT_STROKE
        text = draw_outline(text, "outer", width, 0.0, paint, limits)
    if background is None:
        return text
    return pixels.solid(text.width, text.height, background.rgba).composite2(text, "over").cast("uchar")

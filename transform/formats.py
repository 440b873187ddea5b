"""Choosing the output format (f_, the URL's extension, Accept) and encoding it.

Encoder settings, chosen on purpose: metadata is always stripped (the image has been converted to sRGB,
and EXIF orientation applied); JPEG uses optimised Huffman tables (a few % smaller for nearly no time);
PNG uses zlib level 6 (9 costs several times the CPU for ~1-2 %); WebP and AVIF use effort 4 and 2
(AVIF's higher efforts are many times slower on a 2-core server for small gains).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pyvips

from grammar.errors import BadRequest, InvalidArgument
from grammar.image_formats import FORMAT_OF, WRITABLE
from transform.ops.output import Quality
from transform.plan import Plan

#: The longest side each encoder can write (libjpeg: 65500; WebP: 16383; AVIF through libheif: 16384;
#: GIF: 65535). PNG and TIFF hold anything the pixel limits allow. (Of an animation: of one frame.)
MAX_SIDE = {"jpg": 65500, "webp": 16383, "avif": 16384, "gif": 65535}
#: The formats written with every frame of an animation; the others get its first (selected) frame, as
#: Cloudinary delivers an animated GIF asked as JPEG. (libvips writes no animated AVIF or PNG.)
ANIMATED = ("gif", "webp")
_NAMES = {"jpg": "JPEG", "webp": "WebP", "avif": "AVIF", "gif": "GIF"}
#: Formats a number in q_ cannot affect, and why (Cloudinary's lossy GIF needs fl_lossy, which this server
#: refuses). q_auto stays valid with them: choosing "as good as it gets" for a lossless format is an
#: automatic choice, and f_auto/q_auto must work everywhere. (PNG takes a number: it is quantised to a
#: palette at that quality, as a URL written for Cloudinary's PNG quantisation expects a smaller file.)
_NO_QUALITY = {
    "gif": "lossless once reduced to its 256-colour palette; lossy GIF, fl_lossy, is not supported",
    "tiff": "lossless, deflate",
}
#: Formats fl_progressive cannot affect, and why. Cloudinary documents the flag for JPEG (its SDKs:
#: "Generates a JPG image using the progressive (interlaced) JPG format"; its reference adds PNG); GIF has
#: an interlaced form too, which libvips writes. A format the URL names is a 400 with the flag, as q_ is
#: above; under f_auto the flag applies where the format chosen has the mode (the URL cannot know which).
_NO_PROGRESSIVE = {
    "webp": "WebP has no progressive mode",
    "avif": "AVIF has no progressive mode here",
    "tiff": "TIFF has no progressive mode",
}
#: Formats whose encoder takes q_<n>:420|444 (libvips' subsample_mode: on is 4:2:0, off 4:4:4).
_CHROMA = ("jpg", "avif")
_SUBSAMPLE = {"420": "on", "444": "off", None: "auto"}
_QUALITY = {  # q_auto levels, and the default when q_ is absent ("good")
    "jpg": {"best": 90, "good": 80, "eco": 70, "low": 60},
    "webp": {"best": 90, "good": 80, "eco": 70, "low": 60},
    "avif": {"best": 70, "good": 55, "eco": 45, "low": 35},
}


@dataclass(frozen=True)
class FormatChoice:
    """``fmt`` None: keep the original's format. ``vary``: decided by Accept (send ``Vary: Accept``).
    ``alpha_fallback``: a JPEG choice becomes PNG when the result has transparency. ``animation``: under
    f_auto, the format an animated result is delivered in instead of ``fmt`` (WebP where the client takes
    it, else GIF, which every client takes), so that f_auto keeps an animation moving."""

    fmt: str | None
    vary: bool = False
    alpha_fallback: bool = False
    animation: str | None = None

    @property
    def key(self) -> str:
        animation = f"|animated-{self.animation}" if self.animation else ""
        return (self.fmt or "original") + ("|png-if-alpha" if self.alpha_fallback else "") + animation

    def animated_format(self, original: str) -> str | None:
        """The format an animation of an ``original``-format image is delivered in; None when the choice
        holds no animation (the first frame is delivered)."""
        if self.vary:
            return self.animation
        fmt = self.fmt or original
        return fmt if fmt in ANIMATED else None


def negotiate_format(
    plan: Plan, *, extension: str | None, accept: str | None, original: str | None = None
) -> FormatChoice:
    """f_ wins over the extension. f_auto: AVIF, else WebP (by Accept), else JPEG (PNG if transparent).
    Under fl_preserve_transparency every JPEG choice becomes PNG when the result is transparent.
    ``original``: the original's format, when known (see ``check_animated``)."""
    choice = _choose(plan, extension=extension, accept=accept)
    check_quality(plan.quality, choice.fmt)
    if not choice.vary:
        check_progressive(plan.progressive, choice.fmt)
        check_chroma(plan.quality, choice.fmt)
    check_animated(plan, choice, original)
    if plan.preserve_transparency and choice.fmt == "jpg":
        return replace(choice, alpha_fallback=True)
    return choice


def check_animated(plan: Plan, choice: FormatChoice, original: str | None) -> None:
    """A 400 for fl_animated or fl_awebp, and for dl_, vs_ and e_loop (they time an animation: with a
    format that holds none they would change nothing), when the format delivered cannot hold an
    animation: the one the URL names, else the original's own (``original``; None while it is not known,
    and the renderer checks again once it is). f_auto delivers an animation in WebP or GIF."""
    asked = ["fl_animated and fl_awebp ask for"] if plan.animated else []
    asked += [f"{name} times the frames of" for name in plan.timing.named()]
    if not asked or choice.vary:
        return
    fmt = choice.fmt or original
    if fmt is None or fmt in ANIMATED:
        return
    shown = fmt if fmt in WRITABLE else "png"  # an original libvips reads but cannot write: as PNG
    raise BadRequest(
        f"Invalid transformation: {asked[0]} an animation, and {shown.upper()} cannot hold one here: "
        "deliver it as GIF or WebP (f_gif, f_webp, f_auto)"
    )


def _choose(plan: Plan, *, extension: str | None, accept: str | None) -> FormatChoice:
    requested = plan.requested_format
    if requested == "auto":
        accepted = _accepted_types(accept or "")
        animation = "webp" if "image/webp" in accepted else "gif"
        if "image/avif" in accepted:
            return FormatChoice("avif", vary=True, animation=animation)
        if "image/webp" in accepted:
            return FormatChoice("webp", vary=True, animation=animation)
        return FormatChoice("jpg", vary=True, alpha_fallback=True, animation=animation)
    if requested is not None:
        return FormatChoice(requested)
    if extension is not None:
        fmt = FORMAT_OF.get(extension.lower(), extension.lower())
        if fmt not in WRITABLE:
            raise BadRequest(f"Invalid extension .{extension}: can deliver {', '.join(WRITABLE)}")
        return FormatChoice(fmt)
    return FormatChoice(None, alpha_fallback=True)


def check_quality(quality: Quality | None, fmt: str | None) -> None:
    """A 400 for q_<number> with a format it cannot affect (GIF, TIFF), rather than a silently ignored
    parameter: before rendering when the URL names the format, after it when the original's is kept."""
    if quality is None or quality.number is None or fmt not in _NO_QUALITY:
        return
    raise InvalidArgument(
        "q",
        quality.written or str(quality),
        f"quality has no effect on {fmt.upper()} output ({_NO_QUALITY[fmt]}); it sets JPEG, WebP and AVIF "
        "compression and PNG quantisation: leave q_ out, use q_auto, or ask for f_jpg, f_webp, f_avif "
        "or f_png",
    )


def check_chroma(quality: Quality | None, fmt: str | None) -> None:
    """A 400 for q_<n>:420|444 with a format that has no chroma subsampling to set (libwebp's lossy WebP
    is always 4:2:0; PNG, GIF and TIFF keep full colour): as fl_progressive, when the URL names the
    format or the original's is kept; under f_auto (the caller's choice.vary) it applies where it can."""
    if quality is None or quality.chroma is None or fmt is None or fmt in _CHROMA:
        return
    raise InvalidArgument(
        "q",
        quality.written or str(quality),
        f"chroma subsampling has no effect on {fmt.upper()} output; it sets JPEG and AVIF encoding: "
        f"use q_{quality.number}, or ask for f_jpg, f_avif or f_auto",
    )


def check_progressive(progressive: bool, fmt: str | None) -> None:
    """A 400 for fl_progressive with a format that has no progressive mode (WebP, AVIF, TIFF), rather
    than a silently ignored flag: before rendering when the URL names the format, after it when the
    original's is kept. Not under f_auto (the caller's choice.vary)."""
    if not progressive or fmt not in _NO_PROGRESSIVE:
        return
    raise BadRequest(
        f"Invalid transformation parameter - fl_progressive: no effect on {fmt.upper()} output "
        f"({_NO_PROGRESSIVE[fmt]}); it makes progressive JPEG and interlaced PNG or GIF: leave it out, "
        "or ask for f_jpg, f_png, f_gif or f_auto"
    )


def _accepted_types(accept: str) -> set[str]:
    """Media types the client accepts with q > 0 (``image/avif;q=0`` means "not AVIF")."""
    types: set[str] = set()
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0:
            types.add(media.lower())
    return types


def fits(fmt: str, width: int, height: int) -> bool:
    return max(width, height) <= MAX_SIDE.get(fmt, max(width, height))


def check_fits(fmt: str, width: int, height: int) -> None:
    """A 400 before encoding a result the format cannot hold (the request asked for that size)."""
    if not fits(fmt, width, height):
        raise BadRequest(
            f"Invalid transformation: the result is {width}x{height} pixels, and {_NAMES[fmt]} holds at most "
            f"{MAX_SIDE[fmt]} pixels a side; ask for a smaller size or another format (f_png)"
        )


def quality_for(fmt: str, quality: Quality | None) -> int:
    if quality is not None and quality.number is not None:
        return quality.number
    table = _QUALITY.get(fmt, _QUALITY["jpg"])
    return table[quality.level if quality is not None and quality.level else "good"]


#: libvips' GIF quantisation effort (1-10, its default 7) for an animation: 7 costs about 4x the time
#: of 4 for 7 % smaller files and a little less error (bench/RESULTS.md, session 15: ten 480x270 frames
#: of a photo 2.2 s against 0.57 s), and an animation multiplies it by its frames, past the render budget
#: for a few seconds of video-like GIF. A still keeps 7 (0.7 s for 800 px wide, once, then cached).
GIF_ANIMATION_EFFORT = 4


def _gif_effort(image: pyvips.Image) -> int:
    animated = image.get_typeof("page-height") != 0 and image.get("page-height") < image.height
    return GIF_ANIMATION_EFFORT if animated else 7


def encode(image: pyvips.Image, fmt: str, quality: Quality | None, *, progressive: bool = False) -> bytes:
    """``progressive``: progressive JPEG, interlaced (Adam7) PNG, interlaced GIF; WebP, AVIF and TIFF have
    no such mode (check_progressive refuses it with them unless f_auto chose them)."""
    q = quality_for(fmt, quality)
    subsample = _SUBSAMPLE[quality.chroma if quality is not None else None]
    if fmt == "jpg":
        data = image.jpegsave_buffer(
            Q=q, optimize_coding=True, keep="none", interlace=progressive, subsample_mode=subsample
        )
    elif fmt == "png" and quality is not None and quality.number is not None:
        data = image.pngsave_buffer(compression=6, keep="none", interlace=progressive, palette=True, Q=q)
    elif fmt == "png":
        data = image.pngsave_buffer(compression=6, keep="none", interlace=progressive)
    elif fmt == "webp":
        data = image.webpsave_buffer(Q=q, effort=4, keep="none")
    elif fmt == "avif":
        data = image.heifsave_buffer(
            Q=q, compression="av1", effort=2, keep="none", subsample_mode=subsample
        )
    elif fmt == "gif":
        data = image.gifsave_buffer(effort=_gif_effort(image), keep="none", interlace=progressive)
    elif fmt == "tiff":
        data = image.tiffsave_buffer(compression="deflate", keep="none")
    else:
        raise BadRequest(f"Invalid format {fmt}: can deliver {', '.join(WRITABLE)}")
    return bytes(data)

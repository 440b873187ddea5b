"""Choosing the output format (f_, the URL's extension, Accept) and encoding it.

Encoder settings, chosen on purpose: metadata is stripped (the image has been converted to sRGB, and EXIF
orientation applied) unless fl_keep_iptc asks for the original's; JPEG uses optimised Huffman tables (a
few % smaller for nearly no time); PNG uses zlib level 6 (9 costs several times the CPU for ~1-2 %); WebP
and AVIF use effort 4 and 2 (AVIF's higher efforts are many times slower on a 2-core server for small
gains).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import pyvips

from grammar.errors import BadRequest, InvalidArgument, NotAvailable
from grammar.image_formats import FORMAT_OF, WRITABLE
from transform.ops.output import AUTO_FORMATS, Quality
from transform.plan import Plan

#: The longest side each encoder can write (libjpeg: 65500; WebP: 16383; AVIF through libheif: 16384;
#: GIF: 65535). PNG and TIFF hold anything the pixel limits allow. (Of an animation: of one frame.)
MAX_SIDE = {"jpg": 65500, "webp": 16383, "avif": 16384, "gif": 65535}
#: The formats written with every frame of an animation; the others get its first (selected) frame, as
#: Cloudinary delivers an animated GIF asked as JPEG. (libvips writes no animated AVIF or PNG.)
ANIMATED = ("gif", "webp")
_NAMES = {"jpg": "JPEG", "webp": "WebP", "avif": "AVIF", "gif": "GIF"}
#: Formats a number in q_ cannot affect, and why (GIF takes one with fl_lossy, as Cloudinary's lossy GIF
#: does). q_auto stays valid with them: choosing "as good as it gets" for a lossless format is an
#: automatic choice, and f_auto/q_auto must work everywhere. (PNG takes a number: it is quantised to a
#: palette at that quality, as a URL written for Cloudinary's PNG quantisation expects a smaller file.)
_NO_QUALITY = {
    "gif": "lossless once reduced to its 256-colour palette, unless fl_lossy asks for fewer colours",
    "tiff": "lossless, deflate",
}
#: fl_lossy's quality when q_ gives none: Cloudinary's documented default for lossy GIF
#: (https://cloudinary.com/documentation/transformation_reference#fl_lossy).
LOSSY_QUALITY = 80
#: Formats that hold no metadata libvips writes (its GIF writer writes no XMP, Exif or IPTC), for
#: fl_keep_iptc.
_NO_METADATA = ("gif",)
#: What fl_keep_iptc carries from the original: not its ICC profile, which describes colours the output
#: no longer has (converted to sRGB).
METADATA_FIELDS = ("exif-data", "xmp-data", "iptc-data")
_EXIF, _XMP, _IPTC = (pyvips.enums.ForeignKeep.EXIF, pyvips.enums.ForeignKeep.XMP,
                      pyvips.enums.ForeignKeep.IPTC)  # fmt: skip
#: What each writer keeps of them, as libvips 8.18 writes and reads back: IPTC (IIM) only in JPEG; PNG,
#: WebP and AVIF take XMP and Exif; TIFF XMP only (no Exif; its IPTC tag libvips writes cut to a quarter of
#: the block, which would be damaged metadata: not written).
_KEEPS = {"jpg": _EXIF | _XMP | _IPTC, "png": _EXIF | _XMP, "webp": _EXIF | _XMP, "avif": _EXIF | _XMP,
          "tiff": _XMP}  # fmt: skip
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
    check_quality(plan.quality, choice.fmt, lossy=plan.lossy)
    check_lossy(plan.lossy, choice.fmt)
    if not choice.vary:
        check_progressive(plan.progressive, choice.fmt)
        check_chroma(plan.quality, choice.fmt)
        check_metadata(plan.metadata, choice.fmt)
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
    if requested in AUTO_FORMATS:
        accepted = _accepted_types(accept or "")
        animation = "webp" if "image/webp" in accepted else "gif"
        if requested == "auto:animated":  # only the formats that animate, a still as one frame
            return FormatChoice(animation, vary=True, animation=animation)
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


def check_quality(quality: Quality | None, fmt: str | None, *, lossy: bool = False) -> None:
    """A 400 for q_<number> with a format it cannot affect (GIF without fl_lossy, TIFF), rather than a
    silently ignored parameter: before rendering when the URL names the format, after it when the
    original's is kept."""
    if quality is None or quality.number is None or fmt not in _NO_QUALITY or (lossy and fmt == "gif"):
        return
    raise InvalidArgument(
        "q",
        quality.written or str(quality),
        f"quality has no effect on {fmt.upper()} output ({_NO_QUALITY[fmt]}); it sets JPEG, WebP and AVIF "
        "compression and PNG quantisation: leave q_ out, use q_auto, or ask for f_jpg, f_webp, f_avif "
        "or f_png",
    )


def check_lossy(lossy: bool, fmt: str | None) -> None:
    """A 400 for fl_lossy with TIFF output (written lossless here: deflate), rather than a flag silently
    ignored. JPEG, WebP and AVIF are lossy whatever the flag says: what it asks for is done."""
    if lossy and fmt == "tiff":
        raise BadRequest(
            "Invalid transformation parameter - fl_lossy: no effect on TIFF output (written lossless, "
            "deflate); it makes PNG and GIF lossy: leave it out, or ask for f_png, f_gif, f_jpg or f_webp"
        )


def check_metadata(kept: str | None, fmt: str | None) -> None:
    """A 400 for fl_keep_iptc or fl_keep_attribution (``kept``: the plan's ``metadata``) with a format
    that holds none of the metadata (GIF), when the URL names it or the original's is kept; under f_auto
    (which may deliver an animation as GIF) it applies where the format chosen holds it, as
    fl_progressive does."""
    if kept is not None and fmt in _NO_METADATA:
        flag = "fl_keep_iptc" if kept == "all" else "fl_keep_attribution"
        raise BadRequest(
            f"Invalid transformation parameter - {flag}: {fmt.upper()} output holds no IPTC, XMP or "
            "Exif metadata here; ask for f_jpg (IPTC, XMP and Exif), f_png, f_webp or f_avif (XMP and "
            "Exif) or f_tiff (XMP)"
        )


def original_metadata(header: pyvips.Image) -> dict[str, bytes]:
    """The original's IPTC, XMP and Exif blocks, as its header holds them, for fl_keep_iptc: read from
    the header rather than carried through the steps, which make new images (a layer, a pad, a cut-out)
    that would lose them."""
    return {name: bytes(header.get(name)) for name in METADATA_FIELDS if header.get_typeof(name) != 0}


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


def _lossy_quality(quality: Quality | None) -> int:
    """fl_lossy's quality: q_'s number, q_auto's level, else Cloudinary's default, 80."""
    if quality is None:
        return LOSSY_QUALITY
    return quality_for("jpg", quality)


def gif_lossy(q: int) -> dict[str, int]:
    """libvips' GIF writer has no lossy LZW (gifsicle's --lossy, Cloudinary's lossy GIF): what it offers
    for a smaller file at a loss is fewer palette colours (bitdepth) and, in an animation, pixels that
    changed less than ``interframe_maxerror`` left to the frame before (then transparent, which LZW
    packs well). 80 (the default) takes 128 colours: docs/road.jpg at 300 px wide, 59 KB against 73 KB."""
    bitdepth = 8 if q >= 90 else 7 if q >= 75 else 6 if q >= 55 else 5 if q >= 35 else 4
    return {"bitdepth": bitdepth, "interframe_maxerror": round((100 - q) * 0.32)}


@cache
def quantises() -> bool:
    """Whether this libvips writes palette PNG (it needs libimagequant or quantizr, and without one
    writes an ordinary PNG with a warning): a PNG's IHDR colour type, byte 25, is 3 for a palette."""
    sample = pyvips.Image.black(4, 4, bands=3).pngsave_buffer(palette=True, Q=80, keep="none")
    return bytes(sample)[25] == 3


def _palette(q: int) -> dict[str, object]:
    """pngsave's arguments for a palette at quality ``q``; a 501 where libvips cannot quantise, rather
    than a lossless PNG where the URL asked for a smaller lossy one."""
    if not quantises():
        raise NotAvailable(
            "Palette PNG (q_ or fl_lossy with PNG output) needs libvips built with libimagequant or "
            "quantizr, which this server's is not"
        )
    return {"palette": True, "Q": q}


def with_metadata(image: pyvips.Image, metadata: dict[str, bytes]) -> pyvips.Image:
    """``image`` carrying the original's metadata blocks, upright: its Exif orientation 1, as the steps
    turned the pixels upright (libvips writes the Exif's Orientation from the image's own field; left as
    stored, a viewer would turn the image a second time). Under a_ignore too: a viewer honouring the tag
    would undo what a_ignore asked for."""
    image = image.copy()
    # What the steps carried along of the original's, only ``metadata`` to be written: its blocks, and
    # the Exif fields libvips parsed from it ("exif-ifd0-Make"...), which its writer puts back into the
    # Exif it writes.
    for name in image.get_fields():
        if name in METADATA_FIELDS or name.startswith("exif-"):
            image.remove(name)
    for name, blob in metadata.items():
        image.set_type(pyvips.GValue.blob_type, name, blob)
    image.set_type(pyvips.GValue.gint_type, "orientation", 1)
    return image


def encode(
    image: pyvips.Image,
    fmt: str,
    quality: Quality | None,
    *,
    progressive: bool = False,
    lossy: bool = False,
    metadata: dict[str, bytes] | None = None,
) -> bytes:
    """``progressive``: progressive JPEG, interlaced (Adam7) PNG, interlaced GIF; WebP, AVIF and TIFF have
    no such mode (check_progressive refuses it with them unless f_auto chose them). ``lossy``: fl_lossy,
    a palette PNG and a GIF of fewer colours. ``metadata``: fl_keep_iptc's blocks of the original
    (``original_metadata``), written where the format holds them; None: none written."""
    q = quality_for(fmt, quality)
    subsample = _SUBSAMPLE[quality.chroma if quality is not None else None]
    keep: int | str = "none"
    if metadata and fmt in _KEEPS:  # (none to keep: written as without the flag)
        image, keep = with_metadata(image, metadata), _KEEPS[fmt]
    if fmt == "jpg":
        data = image.jpegsave_buffer(
            Q=q, optimize_coding=True, keep=keep, interlace=progressive, subsample_mode=subsample
        )
    elif fmt == "png" and (lossy or (quality is not None and quality.number is not None)):
        q = _lossy_quality(quality) if lossy else q
        data = image.pngsave_buffer(compression=6, keep=keep, interlace=progressive, **_palette(q))
    elif fmt == "png":
        data = image.pngsave_buffer(compression=6, keep=keep, interlace=progressive)
    elif fmt == "webp":
        data = image.webpsave_buffer(Q=q, effort=4, keep=keep)
    elif fmt == "avif":
        data = image.heifsave_buffer(Q=q, compression="av1", effort=2, keep=keep, subsample_mode=subsample)
    elif fmt == "gif":
        extra = gif_lossy(_lossy_quality(quality)) if lossy else {}
        data = image.gifsave_buffer(effort=_gif_effort(image), keep=keep, interlace=progressive, **extra)
    elif fmt == "tiff":
        data = image.tiffsave_buffer(compression="deflate", keep=keep)
    else:
        raise BadRequest(f"Invalid format {fmt}: can deliver {', '.join(WRITABLE)}")
    return bytes(data)

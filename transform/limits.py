"""Pixel limits: on originals (from the header, before decoding) and on every image the engine computes
(the result, a layer, and intermediates such as the canvas a layer grows), checked from sizes known before
any pixel is computed. libvips builds images lazily, so an operation that only *describes* a huge image
costs nothing; the checks sit where that description would be computed in full.
"""

from __future__ import annotations

from dataclasses import dataclass

from grammar.errors import TooLarge

#: libvips' own bound on an image's side (VIPS_MAX_COORD); with the default pixel limits it cannot be
#: reached, but an operator may raise them.
MAX_SIDE = 100_000_000


@dataclass(frozen=True)
class Limits:
    """``max_pixels``: the largest original (or layer image) opened; the frames of an animation count
    together. ``max_output_pixels``: the largest image made from it; None means the same as
    ``max_pixels``, so what may be opened may be delivered. ``max_frames``: the most frames of an
    animation delivered (the first ones): Cloudinary's own cap on what it transforms on the fly."""

    max_pixels: int = 50_000_000
    max_output_pixels: int | None = None
    max_frames: int = 100

    @property
    def output_pixels(self) -> int:
        return self.max_pixels if self.max_output_pixels is None else self.max_output_pixels


def check_original(width: int, height: int, limits: Limits) -> None:
    if width * height > limits.max_pixels:
        raise TooLarge(
            f"Image is too large: {width}x{height} pixels ({megapixels(width * height)} megapixels); "
            f"the limit is {megapixels(limits.max_pixels)} megapixels"
        )


def check_output(width: int, height: int, limits: Limits, what: str = "Result") -> None:
    """Refuse to compute a ``width`` x ``height`` image: the result, a layer or an intermediate image
    (``what`` names it in the message)."""
    check_sides(width, height, what)
    if width * height > limits.output_pixels:
        raise TooLarge(
            f"{what} is too large: {width}x{height} pixels ({megapixels(width * height)} megapixels); "
            f"the limit is {megapixels(limits.output_pixels)} megapixels"
        )


def check_sides(width: int, height: int, what: str = "Result") -> None:
    """For images that are only described, never computed in full (an upscale that is then cropped)."""
    if max(width, height) > MAX_SIDE:
        raise TooLarge(
            f"{what} is too large: {width}x{height} pixels; libvips holds at most {MAX_SIDE} pixels a side"
        )


def megapixels(pixels: int) -> str:
    """50000000 -> "50.0", 76800 -> "0.077": one decimal, or three below a megapixel."""
    return f"{pixels / 1e6:.{1 if pixels >= 1_000_000 else 3}f}"

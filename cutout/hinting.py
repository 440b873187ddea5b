"""Which requests read Client Hints, and the headers that say so (transform/hints.py settles the values).

Only a URL that may hold ``w_auto`` or ``dpr_auto`` reads them: any other answers the same whatever the
hints, and keying its memo and fast path by them would only split them (browsers that opted in send the
hints with every image request)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

from transform.hints import ACCEPT_CH, NO_HINTS, Hints

__all__ = [
    "ACCEPT_CH",
    "add_hint_arguments",
    "client_hints",
    "error_headers",
    "hint_headers",
    "hints_of",
    "may_use_hints",
]


#: The URLs that read hints: ``w_auto`` or ``dpr_auto``, the underscore perhaps percent-encoded (as some
#: proxies write it). nginx/*.conf keys its cache by the same test, so the two agree on which answers
#: vary. A URL that encodes a letter too (``w_%61uto``, which means w_auto) gets the fallbacks whatever
#: the hints: one answer for everyone, which any cache may share.
_HINTED = re.compile("(w|dpr)(_|%5[Ff])auto")


def may_use_hints(raw_path: str) -> bool:
    return _HINTED.search(raw_path) is not None


def client_hints(raw_path: str, header: Callable[[str], str | None]) -> Hints:
    """The request's hints when its URL may use them, else NO_HINTS. ``header``: by name, any case."""
    return Hints.read(header) if may_use_hints(raw_path) else NO_HINTS


def error_headers(raw_path: str) -> dict[str, str]:
    """Vary and Accept-CH for an error answer (400, 413, 423...) to a URL that may read hints, else none.

    Such an error may be the hints' doing (a width hint that pushes a render past CUTOUT_MAX_PIXELS is a
    413 that a narrower device never gets), and errors are cacheable for a minute: a shared cache must
    not hand one device's refusal to another. Every hint header is named, whether or not this URL's
    parameters read it (they are not parsed here, and may not parse at all): an over-wide Vary on an
    error costs only a few cache entries. Accept-CH so that a browser's first request, often a 423
    while a cut-out is made, already asks for the hints its retry should send."""
    if not may_use_hints(raw_path):
        return {}
    return {"Vary": ACCEPT_CH, "Accept-CH": ACCEPT_CH}


def add_hint_arguments(parser: argparse.ArgumentParser) -> None:
    """``--dpr``, ``--width``, ``--viewport-width``: the hints a browser would send, for the commands that
    make derivatives without one (``cutout render``, ``cutout eager``); without them w_auto and dpr_auto
    take their fallbacks, as for a browser that sends none."""
    for flag, header, help_text in (
        ("--dpr", "Sec-CH-DPR", "device pixel ratio, e.g. 2"),
        ("--width", "Sec-CH-Width", "the image's layout width in device pixels"),
        ("--viewport-width", "Sec-CH-Viewport-Width", "the window's width in CSS pixels"),
    ):
        parser.add_argument(flag, type=_positive, default=None,
                            help=f"Client Hint {header} for w_auto and dpr_auto: {help_text}")


def hint_headers(args: argparse.Namespace) -> dict[str, str]:
    """The hints the options give, as request headers."""
    given = {"Sec-CH-DPR": args.dpr, "Sec-CH-Width": args.width, "Sec-CH-Viewport-Width": args.viewport_width}
    return {name: value for name, value in given.items() if value is not None}


def hints_of(args: argparse.Namespace) -> Hints:
    headers = {name.lower(): value for name, value in hint_headers(args).items()}
    return Hints.read(lambda name: headers.get(name.lower()))


def _positive(text: str) -> str:
    """Checked here: a hint the server would ignore (not a positive number) would silently be the
    fallback."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or Hints.read(lambda _: text) == NO_HINTS:
        # (1e3 and a 14-digit width are positive numbers too, but not hints the server reads)
        raise argparse.ArgumentTypeError(f"not a positive decimal number (as 2 or 2.5, at most 12 digits "
                                         f"before the point, no exponent): {text!r}")
    return text

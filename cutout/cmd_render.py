"""`cutout render`: apply a transformation string to a local file, as the server would.

    cutout render 'e_background_removal/c_scale,w_400/u_docs:road/fl_layer_apply,y_-200' dog.jpg \\
        -o out.png --originals cutout/samples
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from cutout.hinting import add_hint_arguments, hints_of
from cutout.originals import Originals
from grammar import parse_transformation
from grammar.errors import NotFound, OriginError
from grammar.image_formats import EXTENSIONS, FORMAT_OF, WRITABLE
from transform import FormatChoice, Plan, Rendered, compile_plan, negotiate_format, render
from transform.faces.centerface import detect_faces
from transform.files import replacing
from transform.hints import resolve_hints
from transform.seam import DirectMasks, MaskSource


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("transformation", help="e.g. 'c_fill,g_auto,h_300,w_400/f_webp' ('' for none)")
    parser.add_argument("source", type=Path, help="the original image file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output file ('-': standard output)")
    parser.add_argument("--originals", type=Path, help="folder where layer ids are found as <id>.<ext>")
    parser.add_argument(
        "--format",
        choices=WRITABLE,
        help="output format (default: OUT's extension, else the original's, PNG if transparent); "
        "it, OUT's extension and an f_ in the transformation must agree",
    )
    add_hint_arguments(parser)


#: The extensions -o may have: those of the formats this server writes (none at all is fine too).
WRITABLE_EXTENSIONS = tuple(ext for ext in EXTENSIONS if FORMAT_OF[ext] in WRITABLE)


class UsageError(Exception):
    """A mistake in the command's arguments: one line, exit 2."""


def run(args: argparse.Namespace) -> int:
    problem = _check_paths(args.output, args.originals)
    if problem:
        print(f"cutout render: {problem}", file=sys.stderr)
        return 2
    try:
        rendered = _render(args)
    except UsageError as exc:
        print(f"cutout render: {exc}", file=sys.stderr)
        return 2
    except OriginError as exc:
        print(f"cutout render: {exc.status} {exc.public}", file=sys.stderr)
        return 1
    wanted = _extension_format(args.output)
    if wanted is not None and rendered.format != wanted:
        # f_auto, or fl_preserve_transparency on a transparent result, chose while rendering.
        made = f"the transformation made a {rendered.format.upper()}, not a {wanted.upper()}"
        print(f"cutout render: -o {args.output}: {made}: name the file .{rendered.format}", file=sys.stderr)
        return 2
    try:
        if _to_stdout(args.output):
            sys.stdout.buffer.write(rendered.data)
            sys.stdout.buffer.flush()
        else:
            with replacing(args.output) as temp:  # a failed write leaves no truncated image behind
                temp.write_bytes(rendered.data)
    except OSError as exc:
        print(f"cutout render: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    alpha = ", alpha" if rendered.has_alpha else ""
    size = f"{rendered.width}x{rendered.height}"
    if rendered.frames > 1:
        size += f", {rendered.frames} frames"
    # With -o - the image is standard output: what was written is said on standard error.
    print(f"{args.output}: {rendered.format} {size}{alpha}, {len(rendered.data)} bytes",
          file=sys.stderr if _to_stdout(args.output) else sys.stdout)
    return 0


def _to_stdout(output: Path) -> bool:
    """``-o -``, as `cutout eager` reads ``-`` as standard input (it wrote a file named '-')."""
    return str(output) == "-"


def _check_paths(output: Path, originals: Path | None) -> str | None:
    """Mistakes in the paths given, found before rendering (which may load the model)."""
    if _to_stdout(output):
        if sys.stdout.isatty():  # image bytes would garble the terminal, as curl refuses them there too
            return "-o -: standard output is a terminal: redirect it (> out.jpg) or name a file"
    elif output.is_dir():
        return f"-o {output} is a folder: name the output file"
    elif not output.parent.is_dir():
        missing = "no folder" if not output.parent.exists() else "not a folder:"
        return f"-o {output}: {missing} {output.parent}"
    if originals is not None and not originals.is_dir():
        return f"--originals {originals} is not a folder"
    return None


def _extension_format(output: Path) -> str | None:
    """The format -o's extension names (None: it has none); UsageError for one this cannot write, rather
    than bytes of another format under its name."""
    suffix = output.suffix.lstrip(".").lower()
    if not suffix:
        return None
    if suffix not in WRITABLE_EXTENSIONS:
        can = ", ".join("." + ext for ext in WRITABLE_EXTENSIONS)
        raise UsageError(f"-o {output}: cannot write .{suffix} files; the extensions it writes: {can}")
    return FORMAT_OF[suffix]


def _choice(plan: Plan, output: Path, option: str | None) -> FormatChoice:
    """The output format from --format, -o's extension and the transformation's f_, which must agree:
    whichever was left unsaid silently losing would write one format under another's name."""
    extension = _extension_format(output)
    named = {f"-o {output}": extension, f"--format {option}": option, f"f_{plan.requested_format}": (
        plan.requested_format)}
    given = [(label, fmt) for label, fmt in named.items() if fmt is not None]
    for (label, fmt), (other, other_fmt) in zip(given, given[1:], strict=False):
        # f_auto with an extension is left to the check of the result: without Accept it is JPEG, or PNG
        # when transparent.
        if fmt != other_fmt and not (other_fmt.startswith("auto") and label.startswith("-o")):
            raise UsageError(f"{label} and {other} disagree on the output format: give one, or the same")
    # As an extension: f_ (the same, or f_auto) still wins, and fl_preserve_transparency still applies.
    return negotiate_format(plan, extension=option or extension, accept=None)


def _render(args: argparse.Namespace) -> Rendered:
    text = args.transformation.strip("/")
    # w_auto and dpr_auto as the server settles them for a browser sending these hints (none: fallbacks).
    components = resolve_hints(parse_transformation(text) if text else (), hints_of(args)).components
    plan = compile_plan(components)
    choice = _choice(plan, args.output, args.format)
    originals = Originals(args.originals) if args.originals else None

    def load_layer(public_id: str) -> tuple[str, str]:
        if originals is None:
            raise NotFound(f"Layer {public_id}: pass --originals DIR to find layer images")
        path = originals.find(public_id, what="Unknown or invalid referenced image {} of type upload")
        return str(path), _fingerprint(path)

    if not args.source.is_file():  # said as a file's problem: this is a local path, not a public id
        problem = "is a folder, not an image file" if args.source.is_dir() else "no such file"
        raise NotFound(f"{args.source}: {problem}")
    return render(
        plan,
        str(args.source),
        source_key=_fingerprint(args.source),
        choice=choice,
        load_layer=load_layer,
        masks=_masks() if plan.needs_segmentation else None,
        faces=detect_faces,
    )


def _masks() -> MaskSource | None:
    from transform.segment import SegmenterError, load_segmenter  # onnxruntime only when needed

    try:
        return DirectMasks(load_segmenter())
    except SegmenterError as exc:
        print(f"cutout render: {exc}", file=sys.stderr)
        return None  # the renderer then answers 501 for the background-removal step


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]

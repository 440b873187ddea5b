"""The console's SDK snippets, run with Cloudinary's real SDKs: each must build exactly the URL the
console shows. Python with the ``cloudinary`` package; JavaScript with ``@cloudinary/url-gen`` under
node (installed once into CUTOUT_HOME by npm, as `cutout fetch-model` fetches the model; skipped
without node and npm unless CUTOUT_REQUIRE_INTEGRATION=1)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cutout.console import snippets
from cutout.console.check import Target, delivery_path
from tests.conftest import require

URLGEN = "@cloudinary/url-gen@1.22.0"

CASES = [
    "",
    "e_background_removal",
    "e_background_removal/b_rgb:dbe7f7",
    "e_background_removal/e_dropshadow:azimuth_220;elevation_60;spread_20",
    "c_fill,g_auto,h_300,w_300",
    "e_background_removal/c_scale,w_400/u_docs:bg_beach/c_fill,h_500,w_700/fl_layer_apply",
    "e_background_removal/c_scale,w_400/u_docs:road/fl_layer_apply,y_-200",
    "w_400,c_scale",  # not in the SDK's order: raw_transformation keeps it as written
    "c_scale,w_0.5/f_auto,q_auto:good",
    "a_hflip.45,b_white/r_max/o_50",
    "c_pad,h_300,w_300,b_auto:predominant",
    "l_text:Arial_40_bold:Hello%2C%20world/fl_layer_apply,g_north",
    "l_text:Arial_40:h%C3%A9llo%20w%C3%B6rld",  # typed "héllo wörld": checked as the browser sends it
    "t_thumb",
    "e_blur:300,w_100,x_-10",
    "%24w_300/c_scale%2Cw_%24w/ar_16%3A9,c_fill",  # encoded structural characters: delivery decodes them
]
TARGETS = [
    Target("http://127.0.0.1:8080", "demo", "docs/road", 1700000000),
    Target("http://localhost:9000", "shop", "shoes/red shoe (1)", None),
    Target("https://img.example.org", "demo", "sample", None),
    Target("http://127.0.0.1:8080", "demo", "w_100/x", None),  # a folder named like a component
]


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.public_id)
@pytest.mark.parametrize("text", CASES)
def test_the_consoles_url_names_its_public_id(target: Target, text: str) -> None:
    """Without a version, ``w_100/x`` was read as the transformation w_100 of ``x``: a folder's id gets
    v1, as the SDKs write it."""
    from grammar import parse_path

    path = parse_path(delivery_path(target, text))
    assert path.public_id == target.public_id and path.raw_transformation == text


def python_url(code: str) -> str:
    import cloudinary

    cloudinary.reset_config()
    scope: dict[str, object] = {}
    try:
        exec(compile(code, "<snippet>", "exec"), scope)
    finally:
        cloudinary.reset_config()
    url = scope["url"]
    assert isinstance(url, str)
    return url


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.base_url.split("//")[1])
@pytest.mark.parametrize("text", CASES)
def test_python_snippet_builds_the_consoles_url(target: Target, text: str) -> None:
    code = snippets.python(target.base_url, target.cloud, text, target.public_id, target.version)
    assert python_url(code) == target.base_url + delivery_path(target, text)


def test_python_snippet_uses_sdk_options_where_they_round_trip() -> None:
    assert snippets.python_components("e_background_removal/c_scale,w_400") == [
        {"effect": "background_removal"}, {"crop": "scale", "width": 400}]
    assert snippets.python_components("w_400,c_scale") == [{"raw_transformation": "w_400,c_scale"}]
    # Read as delivery reads it, written as typed: the SDK copies a raw_transformation as it is.
    assert snippets.python_components("%24w_300/c_scale%2Cw_400/c_scale,w_400") == [
        {"raw_transformation": "%24w_300"}, {"raw_transformation": "c_scale%2Cw_400"},
        {"crop": "scale", "width": 400}]


@pytest.fixture(scope="module")
def urlgen() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    require(node is not None and npm is not None, "node and npm are needed to run @cloudinary/url-gen")
    home = Path(os.environ.get("CUTOUT_HOME", "~/.cache/cutout")).expanduser() / "console-sdk"
    if not (home / "node_modules" / "@cloudinary" / "url-gen" / "package.json").is_file():
        home.mkdir(parents=True, exist_ok=True)
        (home / "package.json").write_text('{"name": "console-sdk-check", "private": true, "type": "module"}')
        done = subprocess.run([str(npm), "install", "--no-audit", "--no-fund", "--prefix", str(home), URLGEN],
                              capture_output=True, text=True, timeout=300)
        require(done.returncode == 0, f"npm install {URLGEN} failed: {done.stderr[-500:]}")
    return home


def test_javascript_snippet_builds_the_consoles_url(urlgen: Path) -> None:
    cases = [(t, text) for t in TARGETS for text in CASES]
    script = ["const urls = [];"]
    for target, text in cases:
        code = snippets.javascript(target.base_url, target.cloud, text, target.public_id, target.version)
        body = code.replace('import { Cloudinary } from "@cloudinary/url-gen";', "")
        script.append("{\n" + body + "urls.push(url);\n}")
    script.append("console.log(JSON.stringify(urls));")
    program = 'import { Cloudinary } from "@cloudinary/url-gen";\n' + "\n".join(script)
    (urlgen / "check.mjs").write_text(program)
    done = subprocess.run(["node", str(urlgen / "check.mjs")], capture_output=True, text=True, timeout=60,
                          cwd=urlgen)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    mismatches = []
    for (target, text), url in zip(cases, got, strict=True):
        expected = target.base_url + delivery_path(target, text)
        if exact_in_urlgen(target, text):
            if url != expected:
                mismatches.append((expected, url))
        elif same_image(url) != same_image(expected):
            mismatches.append((expected, url))
    assert not mismatches, mismatches[:5]


def exact_in_urlgen(target: Target, text: str) -> bool:
    """url-gen runs encodeURI over the whole URL: a '%' in the transformation becomes '%25' (a text
    layer's %2C is written %252C, which the server decodes to the same comma) and it leaves '(' and ')'
    of a public id as they are. Those URLs are spelled differently and name the same image."""
    return "%" not in text and not set(target.public_id) & set("()!'*~")


def same_image(url: str) -> tuple[str, str, int | None]:
    """What a URL names: the public id, the transformation as the server decodes it, the version."""
    from urllib.parse import unquote

    from grammar import parse_path

    path = parse_path("/" + url.split("/", 3)[3])
    return path.public_id, unquote(unquote(path.raw_transformation)), path.version

"""Whole-stack fuzz: mutated and random delivery paths through the real app, against a small original.

Whatever the path, the answer is an image, or a 4xx with ``X-Cld-Error``, or one of the documented 5xx
(501: background removal without a model, which this app has none of; 503: overloaded), and the app keeps
answering. Requests go to the ASGI app with the raw path exactly as uvicorn hands it over (httpx would
normalise ``..`` and re-quote escapes before the app could see them); the app's lifespan runs in the
TestClient.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from urllib.parse import quote, unquote

import pytest
import pyvips
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from starlette.types import Message

from cutout.app import create_app
from cutout.settings import Settings
from grammar.signature import sign
from transform import pixels
from transform.ops import CROP_MODES, EFFECTS, PARAMS

SECRET = "fuzz-secret"
GOOD = "/image/upload/c_scale,w_16/photo.jpg"
CORPUS = [
    "/image/upload/photo.jpg",
    GOOD,
    "/image/upload/c_fill,g_auto,h_20,w_20/photo.jpg",
    "/demo/image/upload/c_scale,w_24/v3/photo.png",
    "/image/upload/l_docs:logo/c_scale,w_8/fl_layer_apply,g_north_east,x_2,y_2/photo.jpg",
    "/image/upload/u_docs:logo/fl_layer_apply,fl_no_overflow,y_-4/photo.webp",
    "/image/upload/e_dropshadow:azimuth_220;elevation_60;spread_20/r_max/bo_2px_solid_red/docs/logo.png",
    "/iu/a_hflip.45/o_50/b_rgb:ff000080/photo.webp",
    "/image/upload/c_pad,b_blue,h_40,w_40/q_auto:eco/f_auto/photo",
    "/image/upload/c_crop,h_10,w_10,x_0.5,y_0.1/photo.gif",
    "/image/upload/ar_16:9,c_fill,w_30/dpr_2.0,w_0.5/e_blur:300/docs/logo.png",
    "/image/upload/e_background_removal/c_scale,w_20/photo.png",
    "/image/upload/s--abcdefgh--/w_10/photo.jpg",
    f"/image/upload/s--{sign('c_thumb,h_12,w_12/photo.jpg', SECRET)}--/c_thumb,h_12,w_12/photo.jpg",
    "/image/upload/w_10/v1700000000/photo.jpg",
    "/image/upload/if_w_gt_20_and_ar_lt_2.0/c_scale,w_10/if_else/e_grayscale/if_end/photo.jpg",
    "/image/upload/$w_iw_div_2,$t_!sale!/if_$t_in_tags,c_crop,h_ih_sub_4,w_$w_mul_1.5/photo.png",
    "/image/upload/$n_fc_add_pc/l_text:Arial_8:n%20$(n)/fl_layer_apply,g_south/photo.webp",
]
# Characters and pieces that break things: separators, escapes (also malformed or of control
# characters), dot segments, non-ASCII, digits (numbers grow), keys of unsupported parameters.
PIECES = [
    *"/_,:;.$-%!~()?#&+=*@ 0123456789abcdefgilrstuvwxyzABFS\\\x00\u00e9\u202e\U0001f600",
    "..", "/../", "./", "%2F", "%2e%2e", "%00", "%zz", "%", "%C3%A9", "%ff", "//", "v1/", "s--abcdefgh--/",
    "w_99999999999", "e_background_removal/", "l_photo/", "fl_layer_apply,", "t_nope/", "$v_1,", "z_2,",
    "if_", "if_end/", "if_else/", "_gt_", "_div_0", "_to_f", "$(v)", "!a!_in_tags", "iw_mul_",
]  # fmt: skip
ALLOWED_5XX = {501, 503}
ACCEPT = ["image/avif,image/webp,*/*", "image/webp", "*/*", "", "image/avif;q=0", "text/html;q=x,\u00e9"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("originals")
    (root / "docs").mkdir()
    xy = pyvips.Image.xyz(48, 32)
    photo = (xy[0] * 5).bandjoin([xy[1] * 8, (xy[0] + xy[1]) * 3]).cast("uchar")
    photo.write_to_file(str(root / "photo.jpg"))
    logo = photo.crop(0, 0, 16, 16).bandjoin(((xy[0] * 16) % 256).crop(0, 0, 16, 16).cast("uchar"))
    logo.write_to_file(str(root / "docs" / "logo.png"))
    config = Settings(
        originals=root,
        cache_dir=tmp_path_factory.mktemp("cache"),
        render_threads=2,
        api_secret=SECRET,
        failure_seconds=1.0,
    )
    with TestClient(create_app(config, load_model=False), raise_server_exceptions=False) as test_client:
        yield test_client


def to_target(text: str) -> tuple[bytes, bytes]:
    """What a client can put on the request line: non-ASCII, spaces and control characters
    percent-encoded (a literal '%' stays, so malformed escapes get through), no fragment."""
    text = "/" + text.lstrip("/")
    text = text.partition("#")[0]
    target = quote(text, safe="".join(chr(c) for c in range(33, 127))).encode("ascii")
    path, _, query = target.partition(b"?")
    return path, query


def get(client: TestClient, text: str, accept: str = "*/*") -> tuple[int, dict[str, str], bytes]:
    """GET through the ASGI app, with ``raw_path`` and ``path`` as uvicorn builds them."""
    raw_path, query = to_target(text)
    messages: list[Message] = []

    async def call() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": unquote(raw_path.decode("ascii")),
            "raw_path": raw_path,
            "root_path": "",
            "query_string": query,
            "headers": [(b"host", b"testserver"), (b"accept", accept.encode("utf-8"))],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": dict(client.app_state),
        }
        received = False
        answered = asyncio.Event()

        async def receive() -> Message:
            nonlocal received
            if received:
                # As a server does: the client is there until the answer is sent (a disconnect at
                # once would abandon every render, as a client that left does).
                await answered.wait()
                return {"type": "http.disconnect"}
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            messages.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered.set()

        try:
            await client.app(scope, receive, send)
        except Exception:  # the 500 was sent before the exception propagated; its status is checked
            pass

    assert client.portal is not None
    client.portal.call(call)
    start = next(m for m in messages if m["type"] == "http.response.start")
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], headers, body


def check_answer(client: TestClient, path: str, accept: str) -> None:
    status, headers, body = get(client, path, accept)
    note = f"{path!r} -> {status} {headers.get('x-cld-error')!r}"
    assert status < 500 or status in ALLOWED_5XX, note
    if status >= 400:
        assert headers.get("x-cld-error"), note
        assert body.strip(), note
    else:
        assert status == 200, note
        assert headers["content-type"].startswith("image/") and body, note
    good, _, _ = get(client, GOOD)
    assert good == 200, f"the app stopped answering after {note}"


# Sizes stay small (or absurdly large): a 48x32 original scaled by numbers in the thousands would make
# renders of hundreds of megapixels, which take this machine many seconds each.
HUGE = [2**31 - 1, 2**31, 2**32, 2**63, 10**7 + 1, 10**30]
NUMBERS = st.one_of(
    st.integers(-64, 64).map(str),
    st.sampled_from(HUGE).map(str),
    st.sampled_from(HUGE).map(lambda n: f"-{n}"),
    st.floats(0, 2, allow_nan=False).map(lambda f: f"{f:.3g}"),
    st.sampled_from(["0.0", "1.", ".5", "1e3", "NaN", "inf", "-0", "+1", "0x10", "1_000", "\u0661"]),
)
COLOURS = st.sampled_from(
    ["red", "Blue", "rgb:ff0000", "rgb:f008", "rgb:ff000080", "rgb:zz", "transparent", "none"]
)
RATIOS = st.tuples(NUMBERS, NUMBERS).map(":".join)
WORDS = st.sampled_from(["auto", "max", "face", "..", "%2e%2e", "%2F", "", "photo", "docs:logo"])
#: For each key, values that are often valid and sometimes just off; any key may also get noise.
PLAUSIBLE: dict[str, st.SearchStrategy[str]] = {
    "c": st.sampled_from([*CROP_MODES, "fill_pad", "auto"]),
    "ar": st.one_of(RATIOS, NUMBERS),
    "g": st.sampled_from([*pixels.COMPASS, "auto", "auto:dog", "face", "xy_center"]),
    "a": st.one_of(NUMBERS, st.sampled_from(["hflip", "vflip.90", "hflip.vflip", "ignore", "auto_right",
                                             "auto_left.hflip"])),  # fmt: skip
    "r": st.one_of(NUMBERS, st.sampled_from(["max"]), RATIOS),
    "bo": st.tuples(NUMBERS, COLOURS).map(lambda t: f"{t[0]}px_solid_{t[1]}"),
    "b": COLOURS,
    "co": COLOURS,
    "e": st.one_of(
        st.sampled_from(list(EFFECTS)),
        st.tuples(st.sampled_from(list(EFFECTS)), NUMBERS).map(":".join),
        st.sampled_from(["dropshadow:azimuth_90;spread_5", "trim:5:white", "background_removal:fineedges_y"]),
    ),
    "l": st.sampled_from(["photo", "docs:logo", "docs:logo.png", "missing", "text:Arial_20:Hi", "..:x"]),
    "u": st.sampled_from(["photo", "docs:logo", "missing", "fetch:aGk="]),
    "fl": st.sampled_from(["layer_apply", "no_overflow", "relative", "layer_apply.relative", "progressive",
                           "preserve_transparency", "attachment", "lossy", "keep_iptc", "keep_attribution"]),
    "t": st.sampled_from(["thumb", "a.b", "x!"]),
    "f": st.sampled_from(["png", "jpg", "jpeg", "webp", "avif", "gif", "tiff", "auto", "auto:animated",
                          "heic", "bmp"]),
    "q": st.one_of(NUMBERS, st.sampled_from(["auto", "auto:eco", "auto:x"])),
}  # fmt: skip
KEYS = st.one_of(
    st.sampled_from(list(PARAMS)), st.sampled_from(["z", "d", "if", "$v", "zz", "W", ""]), st.text(max_size=3)
)
NOISE = st.one_of(NUMBERS, WORDS, st.text(max_size=8))


@st.composite
def params(draw: st.DrawFn) -> str:
    key = draw(KEYS)
    plausible = PLAUSIBLE.get(key, NUMBERS)
    value = draw(st.one_of(plausible, plausible, plausible, NOISE))
    return f"{key}_{value}"


COMPONENT = st.lists(params(), min_size=1, max_size=3).map(",".join)
SOURCES = ["photo.jpg", "photo.png", "photo", "docs/logo.png", "docs/logo", "missing.jpg", "photo.heic"]


@st.composite
def random_paths(draw: st.DrawFn) -> str:
    components = draw(st.lists(COMPONENT, min_size=1, max_size=3))
    return "/image/upload/" + "/".join(components) + "/" + draw(st.sampled_from(SOURCES))


@st.composite
def mutated_paths(draw: st.DrawFn) -> str:
    path = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["insert", "delete", "replace", "number"]))
        numbers = list(re.finditer(r"\d+", path))
        if action == "number" and numbers:
            found = draw(st.sampled_from(numbers))
            path = path[: found.start()] + draw(NUMBERS) + path[found.end() :]
            continue
        at = draw(st.integers(0, len(path)))
        piece = draw(st.sampled_from(PIECES))
        if action == "insert":
            path = path[:at] + piece + path[at:]
        elif action == "delete":
            path = path[:at] + path[at + 1 :]
        else:
            path = path[:at] + piece + path[at + len(piece) :]
    return path


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(path=mutated_paths(), accept=st.sampled_from(ACCEPT))
def test_mutated_paths(client: TestClient, path: str, accept: str) -> None:
    check_answer(client, path, accept)


@FUZZ
@given(path=random_paths(), accept=st.sampled_from(ACCEPT))
def test_random_parameters(client: TestClient, path: str, accept: str) -> None:
    check_answer(client, path, accept)


# Minimal cases the fuzzing found (kept so they are checked on every run, not only when drawn again).
FOUND = [
    "/image/upload/c_scale,w_2147483648/photo.jpg",  # 500: pyvips OverflowError (32-bit int)
    "/image/upload/w_2147483647/photo.png",  # 500: GLib "out of range for property 'width'"
    "/image/upload/h_4294967296/photo.jpg",
    "/image/upload/c_pad,ar_1:2147483648,w_64/photo.jpg",
    "/image/upload/l_docs:logo/fl_layer_apply,x_-2147483649/photo.jpg",
    "/image/upload/l_docs:logo/fl_layer_apply,y_4294967296/photo.jpg",
    "/image/upload/e_%0A/photo.jpg",  # 404 without X-Cld-Error: starlette's {path:path} stops at a newline
    "/image/upload/w_10/a%0Ab.jpg",
]


@pytest.mark.parametrize("path", FOUND)
def test_found_by_fuzzing(client: TestClient, path: str) -> None:
    check_answer(client, path, "*/*")


@pytest.mark.parametrize("path", CORPUS)
def test_corpus_answers_as_expected(client: TestClient, path: str) -> None:
    """The seeds themselves are good URLs (so the mutations start from paths that render)."""
    status, headers, _ = get(client, path)
    expected = 501 if "background_removal" in path else 401 if "s--abcdefgh--" in path else 200
    assert status == expected, (path, headers.get("x-cld-error"))


def test_raw_paths_reach_the_app_unnormalised(client: TestClient) -> None:
    status, headers, _ = get(client, "/image/upload/w_10/docs/../photo.jpg")
    assert status == 400 and "'.' or '..'" in headers["x-cld-error"]
    status, headers, _ = get(client, "/image/upload/w_10/%zz.jpg")
    assert status == 404

"""`cutout eager` straight into the cache: the server then finds the same keys, strict mode included."""

from __future__ import annotations

from pathlib import Path

import pytest

import cutout.app
from cutout.cli import main
from tests.app.helpers import SAMPLES, ClientFactory, EllipseSegmenter, metric


def test_eager_fills_the_servers_cache(
    make_client: ClientFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    segmenter = EllipseSegmenter()
    monkeypatch.setattr(cutout.app, "_load_segmenter", lambda: segmenter)
    lines = tmp_path / "eager.txt"
    lines.write_text(
        "# comment and blank lines are skipped\n\n"
        "/demo/image/upload/c_scale,w_150/docs/road\n"
        "c_fill,h_90,w_90 docs/rmv_bgd/router_orig.webp\n"
        "e_background_removal docs/rmv_bgd/dog_couch_orig\n"
        "c_scale,w_10 docs/nope\n"
        "just-one-word\n"
    )
    cache_dir = tmp_path / "cache"
    code = main(["eager", str(lines), "--originals", str(SAMPLES), "--cache-dir", str(cache_dir),
                 "--concurrency", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert "3 generated, 2 failed" in err
    assert "FAILED c_scale,w_10 docs/nope: Resource not found - docs/nope" in err
    assert "FAILED just-one-word: expected a delivery path" in err
    assert segmenter.calls == 1

    client = make_client(segmenter=EllipseSegmenter(), cache_dir=cache_dir, strict=True)
    hits = metric(client, "cutout_cache_hits_total")
    for url in ("/demo/image/upload/c_scale,w_150/docs/road",
                "/demo/image/upload/c_fill,h_90,w_90/v1/docs/rmv_bgd/router_orig.webp",
                "/demo/image/upload/e_background_removal/docs/rmv_bgd/dog_couch_orig"):
        response = client.get(url)
        assert response.status_code == 200, (url, response.headers.get("x-cld-error"))
    assert metric(client, "cutout_cache_hits_total") == hits + 3
    # Strict mode: eager-generated derivatives render, others do not.
    assert client.get("/demo/image/upload/c_scale,w_151/docs/road").status_code == 401


def test_eager_with_nothing_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    assert main(["eager", str(empty), "--originals", str(SAMPLES), "--cache-dir", str(tmp_path)]) == 0


def test_eager_waits_for_a_server_already_generating(
    make_client: ClientFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server on the same cache is generating the cut-out (it holds the claim): eager waits for its
    result instead of running the model a second time ("exactly one generation")."""
    segmenter = EllipseSegmenter()
    monkeypatch.setattr(cutout.app, "_load_segmenter", lambda: segmenter)
    cache_dir = tmp_path / "cache"
    server = make_client(segmenter=EllipseSegmenter(delay=1.0), cache_dir=cache_dir)
    url = "/demo/image/upload/e_background_removal/docs/rmv_bgd/dog_couch_orig"
    assert server.get(url).status_code == 423  # the server claimed it and is generating
    lines = tmp_path / "eager.txt"
    lines.write_text(url + "\n")
    code = main(["eager", str(lines), "--originals", str(SAMPLES), "--cache-dir", str(cache_dir)])
    assert code == 0
    assert segmenter.calls == 0  # eager's model never ran: the server's result was waited for
    assert server.get(url).status_code == 200


def test_eager_makes_w_auto_and_dpr_auto_for_the_hints_it_is_given(
    make_client: ClientFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a browser: the fallbacks, or the hints --dpr and --width give; strict mode then allows the
    URL as written, whatever hints its requests bring."""
    lines = tmp_path / "eager.txt"
    lines.write_text("/demo/image/upload/c_scale,w_auto:100:300/dpr_auto/docs/road\n")
    cache_dir = tmp_path / "cache"
    for extra in ([], ["--dpr", "2", "--width", "500"]):
        code = main(["eager", str(lines), "--originals", str(SAMPLES), "--cache-dir", str(cache_dir), *extra])
        assert code == 0, capsys.readouterr().err
    client = make_client(cache_dir=cache_dir, strict=True)
    url = "/demo/image/upload/c_scale,w_auto:100:300/dpr_auto/docs/road"
    hits = metric(client, "cutout_cache_hits_total")
    assert client.get(url).status_code == 200  # the fallback: 300 at DPR 1
    assert client.get(url, headers={"Sec-CH-DPR": "2", "Sec-CH-Width": "500"}).status_code == 200
    assert metric(client, "cutout_cache_hits_total") == hits + 2
    other = client.get(url, headers={"Sec-CH-DPR": "3"})  # allowed as written; rendered now
    assert other.status_code == 200 and metric(client, "cutout_cache_hits_total") == hits + 2
    assert client.get("/demo/image/upload/c_scale,w_300/dpr_1.0/docs/road").status_code == 401


@pytest.mark.parametrize("value", ["abc", "0", "-1", "inf", "1e3", "99999999999999"])
def test_eager_refuses_a_hint_the_server_would_ignore(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Else the derivative made would silently be the fallback's; the message says what a hint may be
    (1e3 and a 14-digit width are positive numbers, yet no hint the server reads)."""
    with pytest.raises(SystemExit):
        main(["eager", "--originals", str(SAMPLES), "--cache-dir", str(tmp_path), "--width", value])
    said = capsys.readouterr().err
    assert "argument --width: not a positive decimal number" in said and repr(value) in said

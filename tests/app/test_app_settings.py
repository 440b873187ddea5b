"""Settings validation and originals resolution (the parts of the server that guard its inputs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cutout.originals import Originals
from cutout.settings import SettingsError, load_settings
from grammar.errors import NotFound


def test_settings_from_environment_and_overrides(tmp_path: Path) -> None:
    settings = load_settings(
        {"CUTOUT_PORT": "9000", "CUTOUT_CACHE_SIZE": "500M", "CUTOUT_STRICT": "true",
         "CUTOUT_ALLOWED_TRANSFORMATIONS": "c_scale,w_400 | c_fill,h_10,w_10",
         "CUTOUT_ORIGINALS": str(tmp_path)},
        {"port": "9001", "host": None},
    )
    assert settings.port == 9001 and settings.host == "127.0.0.1"
    assert settings.cache_size == 500 << 20 and settings.strict
    assert settings.allowed_transformations == ("c_scale,w_400", "c_fill,h_10,w_10")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CUTOUT_PORT": "eighty"}, "CUTOUT_PORT: expected an integer, got 'eighty'"),
        ({"CUTOUT_PORT": "70000"}, "CUTOUT_PORT: expected between 1 and 65535"),
        ({"CUTOUT_STRICT": "maybe"}, "CUTOUT_STRICT: expected 1/0/true/false"),
        ({"CUTOUT_CACHE_SIZE": "lots"}, "CUTOUT_CACHE_SIZE: expected a size"),
        ({"CUTOUT_ORIGINALS": "/no/such/folder"}, "CUTOUT_ORIGINALS: /no/such/folder is not a folder"),
        # A space an env file left after the name: shown, else the message names a folder that exists.
        ({"CUTOUT_ORIGINALS": "/tmp "}, "CUTOUT_ORIGINALS: '/tmp ' is not a folder"),
        ({"CUTOUT_NAMED_TRANSFORMATIONS": "/no/such.toml"}, "CUTOUT_NAMED_TRANSFORMATIONS: cannot read"),
        # 0 would forget a failure as it is written: never reported, the model rerun on every poll.
        ({"CUTOUT_FAILURE_SECONDS": "0"}, "CUTOUT_FAILURE_SECONDS: expected between 1.0 and .*, got 0$"),
        # nan passes range checks and becomes a NULL (never) expiry; inf never expires either.
        ({"CUTOUT_LEASE_SECONDS": "nan"}, "CUTOUT_LEASE_SECONDS: expected a finite number, between 0.5 and"),
        ({"CUTOUT_FAILURE_SECONDS": "inf"}, "CUTOUT_FAILURE_SECONDS: expected a finite number, between 1.0"),
        ({"CUTOUT_WAIT_SECONDS": "NaN"}, "CUTOUT_WAIT_SECONDS: expected a finite number, between 0.0 and"),
        # Sent as a header: a newline would break every response.
        ({"CUTOUT_REPLICA_NAME": "a\nb"}, "CUTOUT_REPLICA_NAME: 1 to 64 printable ASCII characters"),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        load_settings(environ)


def test_named_transformations_are_validated_at_start_up(tmp_path: Path) -> None:
    from cutout.service import check_transformations

    named = tmp_path / "named.json"
    named.write_text('{"thumb": "c_fill,h_100,w_100", "broken": "w_abc"}')
    with pytest.raises(SettingsError, match="t_broken"):
        check_transformations(load_settings({"CUTOUT_NAMED_TRANSFORMATIONS": str(named)}))
    with pytest.raises(SettingsError, match="CUTOUT_ALLOWED_TRANSFORMATIONS"):
        check_transformations(load_settings({"CUTOUT_ALLOWED_TRANSFORMATIONS": "zz_9"}))
    upper = tmp_path / "named.JSON"  # read as JSON whatever the case, and said so when it is broken
    upper.write_text('{"thumb": ')
    with pytest.raises(SettingsError, match="is not valid JSON"):
        load_settings({"CUTOUT_NAMED_TRANSFORMATIONS": str(upper)})


@pytest.mark.parametrize("suffix", ["toml", "json"])
def test_named_transformations_saved_with_a_byte_order_mark_are_read(tmp_path: Path, suffix: str) -> None:
    """A file a Windows editor saved (a UTF-8 BOM) was "not valid TOML" (or JSON) at its first character."""
    named = tmp_path / f"named.{suffix}"
    text = 'thumb = "c_fill,h_100,w_100"\n' if suffix == "toml" else '{"thumb": "c_fill,h_100,w_100"}'
    named.write_bytes(b"\xef\xbb\xbf" + text.encode())
    loaded = load_settings({"CUTOUT_NAMED_TRANSFORMATIONS": str(named)})
    assert loaded.named == {"thumb": "c_fill,h_100,w_100"}
    named.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))  # UTF-16, as Notepad once saved "Unicode"
    with pytest.raises(SettingsError, match=f"^CUTOUT_NAMED_TRANSFORMATIONS: {named} is not UTF-8 text"):
        load_settings({"CUTOUT_NAMED_TRANSFORMATIONS": str(named)})


def test_originals_never_leave_their_folder(tmp_path: Path) -> None:
    root = tmp_path / "originals"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.png").write_bytes(b"x")
    (tmp_path / "outside.jpg").write_bytes(b"x")
    os.symlink(tmp_path / "outside.jpg", root / "out.jpg")
    os.symlink(root / "docs" / "a.png", root / "inside.png")
    originals = Originals(root)
    assert originals.find("docs/a") == root.resolve() / "docs" / "a.png"
    assert originals.find("inside").name == "inside.png"
    for bad in ("out", "../outside", "docs/../../outside", "/etc/passwd", "docs//a", "a\\b", "x\x00", ""):
        with pytest.raises(NotFound):
            originals.find(bad)

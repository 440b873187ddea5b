"""The settings table is the one place a CUTOUT_* variable is declared: the README's table and
``cutout serve --help`` are generated from it, ``Settings`` mirrors its server part, and no other module
reads the environment for one (``python -m cutout.settings --write README.md`` refreshes the README)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from cutout.cli import main
from cutout.settings import (
    BEGIN,
    END,
    Settings,
    SettingsError,
    ignored_model_variables,
    load_settings,
    markdown_table,
    unknown_variables,
    with_table,
)
from transform.variables import (
    BYTES,
    NAMES,
    ORIGINALS,
    PATH,
    TEXT,
    TRANSFORMATIONS,
    VARIABLES,
    Variable,
    VariableError,
    parse,
    read,
)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PACKAGES = ("grammar", "transform", "cache", "cutout")
REFRESH = "run `python -m cutout.settings --write README.md`"


def sources() -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def test_readme_table_is_the_generated_one() -> None:
    text = README.read_text(encoding="utf-8")
    block = text[text.index(BEGIN) + len(BEGIN) + 1 : text.index(END)]
    assert block == markdown_table(), f"the README's settings table is stale: {REFRESH}"


def test_write_to_a_file_that_is_not_the_readme_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m cutout.settings --write README.md` run from another folder was a traceback."""
    from cutout.settings import main as settings_main

    assert settings_main(["--write", str(tmp_path / "README.md")]) == 1
    assert capsys.readouterr().err == (f"python -m cutout.settings: {tmp_path / 'README.md'}: "
                                       "No such file or directory\n")
    other = tmp_path / "other.md"
    other.write_text("no markers\n")
    assert settings_main(["--write", str(other)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"python -m cutout.settings: {other}: README has no ") and err.count("\n") == 1
    assert other.read_text() == "no markers\n"


def test_with_table_replaces_only_the_generated_block() -> None:
    text = f"before\n{BEGIN}\nold rows\n{END}\nafter\n"
    assert with_table(text) == f"before\n{BEGIN}\n{markdown_table()}{END}\nafter\n"
    with pytest.raises(ValueError, match="no"):
        with_table("no markers")


def test_serve_help_lists_every_variable_with_help_and_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse and textwrap break lines anywhere
    for variable in VARIABLES:
        assert f"{variable.name} {variable.help} (default: {variable.default_text})" in text, variable.name
    for option in ("--originals", "--cache-dir", "--host", "--port", "--workers"):
        assert option in text


def test_settings_has_one_attribute_per_server_variable_with_its_default() -> None:
    declared = {f.name: f for f in fields(Settings) if "env" in f.metadata}
    server = {v.attribute: v for v in VARIABLES if v.group == "server"}
    assert declared.keys() == server.keys()
    for name, variable in server.items():
        assert declared[name].metadata["env"] == variable.name
        assert declared[name].default == variable.default, name
    assert load_settings({}) == Settings()


@pytest.mark.parametrize("variable", VARIABLES, ids=[v.name for v in VARIABLES])
def test_every_variable_has_help_and_an_unset_value_is_its_default(variable: Variable) -> None:
    assert variable.name.startswith("CUTOUT_") and variable.help
    assert parse(variable, None) == parse(variable, "") == parse(variable, "  ") == variable.default
    if variable.kind not in (TEXT, PATH, ORIGINALS, TRANSFORMATIONS, NAMES):  # these take any text
        with pytest.raises(VariableError, match=f"^{variable.name}: expected "):
            parse(variable, "\x00?")


def test_every_variable_the_code_names_is_declared() -> None:
    declared = {v.name for v in VARIABLES}
    named = {name for text in sources().values() for name in re.findall(r"\bCUTOUT_[A-Z0-9_]*[A-Z0-9]", text)}
    assert named <= declared, f"not in transform/variables.py: {sorted(named - declared)}"


def test_only_the_table_reads_and_only_settings_writes_the_environment() -> None:
    """Reading: transform/variables.read. Writing: cutout.settings.export_for_workers, the one channel to
    uvicorn's worker processes. (prometheus_client's own PROMETHEUS_MULTIPROC_DIR is read where
    the metrics are.)"""
    readers, writers = set(), set()
    for name, text in sources().items():
        for line in text.splitlines():
            if re.search(r"os\.environ\s*\[[^]]*\]\s*=|os\.environ\.(setdefault|update|pop)|putenv", line):
                writers.add(name)
            elif re.search(r"os\.environ|getenv", line) and "PROMETHEUS_MULTIPROC_DIR" not in line:
                readers.add(name)
    assert writers == {"cutout/settings.py"}
    assert readers <= {"transform/variables.py", "cutout/settings.py"}  # the latter only says it writes


def test_the_scale_out_settings_take_urls_and_name_what_is_wrong(tmp_path: Path) -> None:
    settings = load_settings({"CUTOUT_ORIGINALS": "s3://photos/shop", "CUTOUT_STATE": "redis://127.0.0.1:6379/0",
                              "CUTOUT_SHARED_CACHE": "s3://derived", "CUTOUT_BACKGROUND_REMOVAL": "queue"})
    assert settings.originals == "s3://photos/shop" and settings.queued and not settings.loads_model
    assert load_settings({"CUTOUT_ORIGINALS": str(tmp_path)}).originals == tmp_path
    for name, value in (("CUTOUT_STATE", "http://x"), ("CUTOUT_SHARED_CACHE", "s3://"),
                        ("CUTOUT_S3_ENDPOINT", "localhost:8333"), ("CUTOUT_BACKGROUND_REMOVAL", "later")):
        with pytest.raises(SettingsError, match=f"^{name}: expected"):
            load_settings({name: value})
    with pytest.raises(SettingsError, match="queue needs CUTOUT_STATE"):
        load_settings({"CUTOUT_BACKGROUND_REMOVAL": "queue"})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "abc"], "CUTOUT_PORT (--port): expected an integer, got 'abc'"),
        (["--port", "-5"], "CUTOUT_PORT (--port): expected between 1 and 65535, got -5"),
        (["--workers", "0"], "CUTOUT_WORKERS (--workers): expected between 1 and 64, got 0"),
    ],
)
def test_a_bad_command_line_value_is_named_by_its_option_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """`cutout serve --port abc` said only CUTOUT_PORT, a variable the operator may never have set."""
    assert main(["serve", "--originals", str(tmp_path), "--cache-dir", str(tmp_path / "c"), *argv]) == 2
    assert capsys.readouterr().err == f"cutout serve: {message}\n"
    with pytest.raises(SettingsError, match="^CUTOUT_PORT: expected an integer"):
        load_settings({"CUTOUT_PORT": "abc"})  # from the environment: the variable alone


def test_a_redis_url_with_a_bad_port_or_database_is_named_at_start() -> None:
    """redis-py raised a traceback from the app's start for these ports, and used database 0 for 'abc'."""
    for value in ("redis://127.0.0.1:notaport/0", "redis://127.0.0.1:99999/0", "redis://127.0.0.1:6379/abc",
                  "rediss://h:0x10/1"):
        with pytest.raises(SettingsError, match="^CUTOUT_STATE: expected redis://"):
            load_settings({"CUTOUT_STATE": value})
    for value in ("redis://127.0.0.1:6379/0", "redis://:secret@redis", "rediss://h:6380/", "unix:///run/r.sock"):
        assert load_settings({"CUTOUT_STATE": value}).state == value


def test_the_signature_algorithm_is_sha1_or_sha256() -> None:
    assert load_settings({}).signature_algorithm == "sha1"  # Cloudinary's default
    assert load_settings({"CUTOUT_SIGNATURE_ALGORITHM": "SHA256"}).signature_algorithm == "sha256"
    with pytest.raises(SettingsError, match="^CUTOUT_SIGNATURE_ALGORITHM: .*sha1, sha256"):
        load_settings({"CUTOUT_SIGNATURE_ALGORITHM": "md5"})


def test_the_fetchers_and_webhooks_variables_are_checked_at_start_up(tmp_path: Path) -> None:
    """Read where they are used (the fetcher, webhooks), but checked with the rest: a bad one stops
    `cutout serve` with its name, not with a traceback from the app's start-up."""
    for name, value in (("CUTOUT_FETCH_TIMEOUT", "-3"), ("CUTOUT_FETCH_ALLOW_PRIVATE", "x"),
                        ("CUTOUT_FETCH_ALLOW_NETWORKS", "10.0.0.0/33"), ("CUTOUT_WEBHOOK_TRIES", "0")):
        with pytest.raises(SettingsError, match=f"^{name}: "):
            load_settings({"CUTOUT_ORIGINALS": str(tmp_path), name: value})
    with pytest.raises(SettingsError, match="^CUTOUT_API_WEBHOOK_SECRET: a Standard Webhooks secret"):
        load_settings({"CUTOUT_ORIGINALS": str(tmp_path), "CUTOUT_API_WEBHOOK_SECRET": "whsec_!!"})


def test_lists_hosts_and_the_cloud_name_that_can_never_work_are_refused(tmp_path: Path) -> None:
    for name, value in (("CUTOUT_API_KEYS", ", ,"), ("CUTOUT_ALLOWED_TRANSFORMATIONS", " | "),
                        ("CUTOUT_FETCH_ALLOW_NETWORKS", ","), ("CUTOUT_CLOUD_NAME", "a/b"),
                        ("CUTOUT_CLOUD_NAME", "a b"), ("CUTOUT_FETCH_ALLOW", "bad host!"),
                        ("CUTOUT_WEBHOOK_ALLOW", "hooks.example.org/x")):
        with pytest.raises(SettingsError, match=f"^{name}: expected"):
            load_settings({"CUTOUT_ORIGINALS": str(tmp_path), name: value})
    fine = load_settings({"CUTOUT_ORIGINALS": str(tmp_path), "CUTOUT_CLOUD_NAME": "my-shop_2",
                          "CUTOUT_FETCH_ALLOW": "*.example.org, ::1, 127.0.0.2"})
    assert fine.cloud_name == "my-shop_2"


@pytest.mark.parametrize("value", ["images.example.org:8080", "10.0.0.5:80", "[::1]:8080", "example.org:"])
@pytest.mark.parametrize("name", ["CUTOUT_FETCH_ALLOW", "CUTOUT_WEBHOOK_ALLOW"])
def test_a_host_with_a_port_is_refused_as_it_could_never_match(name: str, value: str) -> None:
    """Hosts are matched without their port: images.example.org:8080 was kept and every fetch from that
    server refused as not allowed, the setting silently doing nothing."""
    with pytest.raises(SettingsError, match=rf"^{name}: expected host names without a port.*got '"):
        load_settings({name: f"*.example.org, {value}"})


@pytest.mark.parametrize("value", ["https://s3.example.org:abc", "http://s3.example.org:99999", "http://:8333",
                                   "http://s3 example.org", "https://images.example.org/c dn"])
@pytest.mark.parametrize("name", ["CUTOUT_S3_ENDPOINT", "CUTOUT_PUBLIC_URL"])
def test_an_http_url_whose_port_or_host_cannot_be_used_is_refused(name: str, value: str) -> None:
    """An S3 endpoint of https://h:abc started the server, which then failed every render that needed S3."""
    with pytest.raises(SettingsError, match=rf"^{name}: expected an http:// or https:// URL"):
        load_settings({name: value})
    assert load_settings({name: "http://[::1]:8333/"}) is not None


def test_an_ipv6_literal_is_allowed_as_urls_write_it_in_brackets() -> None:
    """[::1] was a glob set of the characters ':' and '1' that no host matches."""
    from cutout.fetch.policy import host_allowed

    [allow] = [v for name, v in read("fetch", {"CUTOUT_FETCH_ALLOW": "[::1]"}).items()
               if name == "CUTOUT_FETCH_ALLOW"]
    assert allow == ("::1",) and host_allowed("::1", allow) and not host_allowed("1", allow)


NUMERIC = [v for v in VARIABLES if v.kind.expected in ("an integer", "a number") or v.kind is BYTES]


@pytest.mark.parametrize("variable", NUMERIC, ids=[v.name for v in NUMERIC])
def test_every_number_has_a_ceiling_and_a_value_past_it_is_named(variable: Variable) -> None:
    """A value no setting can use (a digit too many, a unit that slipped) stops the start with its name:
    CUTOUT_CACHE_SIZE=99999999T was a traceback from SQLite at the app's start-up, CUTOUT_LEASE_SECONDS=1e300
    a dead lease-renewal thread, CUTOUT_MAX_AGE=10**20 a Cache-Control no cache reads."""
    assert variable.high is not None and variable.default_text
    huge = "99999999T" if variable.kind is BYTES else "99999999999999999999"
    with pytest.raises(VariableError, match=f"^{variable.name}: expected between .*, got {huge}$"):
        parse(variable, huge)


def test_byte_bounds_are_said_as_an_operator_writes_them(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^CUTOUT_CACHE_SIZE: expected between 1M and 1024T, got 2000T$"):
        load_settings({"CUTOUT_ORIGINALS": str(tmp_path), "CUTOUT_CACHE_SIZE": "2000T"})
    with pytest.raises(SettingsError, match=r"^CUTOUT_MAX_HEADER_BYTES: expected between 4K and 16M, got 1k"):
        load_settings({"CUTOUT_MAX_HEADER_BYTES": "1k"})
    assert load_settings({"CUTOUT_CACHE_SIZE": "1024T"}).cache_size == 1 << 50


def test_a_huge_cache_size_stops_serve_with_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUTOUT_CACHE_SIZE", "99999999T")
    monkeypatch.setenv("CUTOUT_BACKGROUND_REMOVAL", "0")
    assert main(["serve", "--originals", str(tmp_path), "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err == "cutout serve: CUTOUT_CACHE_SIZE: expected between 1M and 1024T, got 99999999T\n"


def test_a_cutout_variable_nothing_reads_is_named_with_the_setting_it_looks_like() -> None:
    warning = unknown_variables({"CUTOUT_STRCT": "1", "CUTOUT_PORT": "80", "CUTOUT_FOO": "x", "PATH": "/bin",
                                 "CUTOUT_REQUIRE_INTEGRATION": "1"})  # fmt: skip
    assert warning == (
        "CUTOUT_FOO, CUTOUT_STRCT (did you mean CUTOUT_STRICT?): not a cutout setting, ignored "
        "(the settings: README, 'Settings')"
    )
    assert unknown_variables({"CUTOUT_STRICT": "1", "HOME": "/root"}) is None
    # Names are case-sensitive: a lower-case one is not read either, and said so.
    assert unknown_variables({"cutout_port": "9000"}) == (
        "cutout_port (did you mean CUTOUT_PORT?): not a cutout setting, ignored (the settings: README, "
        "'Settings')"
    )


@pytest.mark.parametrize(
    "argv",
    [["serve", "--cache-dir", "{tmp}/cache"], ["worker", "--cache-dir", "{tmp}/cache"],
     ["remove-bg", "{tmp}/no.jpg", "-o", "{tmp}/out"], ["render", "", "{tmp}/no.jpg", "-o", "{tmp}/a.png"],
     ["eager", "{tmp}/no.txt", "--originals", "{tmp}", "--cache-dir", "{tmp}/cache"],
     ["fetch-model", "--from-dist", "{tmp}/no-dist"]],
    ids=lambda argv: argv[0],
)
def test_every_command_names_a_cutout_variable_nothing_reads(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Said before the command runs: remove-bg, render, eager and fetch-model said nothing (a misspelt
    CUTOUT_ORT_THREADS or CUTOUT_HOME passed in silence), and serve said it only once the settings were
    good, so CUTOUT_ORIGINAL=... stopped it with 'CUTOUT_ORIGINALS is required' and no hint."""
    monkeypatch.setenv("CUTOUT_ORIGINAL", str(tmp_path))
    assert main([arg.replace("{tmp}", str(tmp_path)) for arg in argv]) != 0
    err = capsys.readouterr().err
    assert err.startswith(f"cutout {argv[0]}: warning: CUTOUT_ORIGINAL (did you mean CUTOUT_ORIGINALS?): "
                          "not a cutout setting, ignored"), err
    assert err.count("CUTOUT_ORIGINAL ") == 1  # once, not again from the command itself


def test_cutout_version() -> None:
    done = subprocess.run([sys.executable, "-m", "cutout.cli", "--version"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("cutout ")


def test_model_variables_a_server_never_reads_are_named(tmp_path: Path) -> None:
    base = {"CUTOUT_ORIGINALS": str(tmp_path), "CUTOUT_CACHE_DIR": str(tmp_path)}
    model = {"CUTOUT_QUALITY": "best", "CUTOUT_MODEL_ASPECT": "keep", "CUTOUT_ORT_THREADS": ""}
    queued = load_settings({**base, "CUTOUT_BACKGROUND_REMOVAL": "queue", "CUTOUT_STATE": "redis://r:6379/0"})
    warning = ignored_model_variables(queued, model)
    assert warning is not None and warning.startswith("CUTOUT_MODEL_ASPECT, CUTOUT_QUALITY are not used")
    assert "`cutout worker`" in warning and "THREADS" not in warning  # empty counts as unset
    off = ignored_model_variables(load_settings({**base, "CUTOUT_BACKGROUND_REMOVAL": "0"}), model)
    assert off is not None and "CUTOUT_BACKGROUND_REMOVAL=0" in off
    assert ignored_model_variables(load_settings(base), model) is None  # this process runs the model
    assert ignored_model_variables(queued, {}) is None

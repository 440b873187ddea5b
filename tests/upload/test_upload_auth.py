"""The Upload API's signature check against Cloudinary's own SDK and its documented vectors."""

from __future__ import annotations

import time

import pytest
from cloudinary.utils import api_sign_request

from cutout.upload import auth
from cutout.upload.errors import UploadError

SECRET = "abcd"


def test_documented_vector() -> None:
    # Cloudinary's documentation (../shared/reference/cloudinary.md, 4.2): eager, public_id, timestamp.
    params = {"eager": "w_400,h_300,c_pad|w_260,h_200,c_crop", "public_id": "sample_image",
              "timestamp": "1315060510"}  # fmt: skip
    assert auth.sign(params, SECRET) == "bfd09f95f331f558cbd1320e67aa8d488770583e"
    assert auth.sign({"public_id": "sample_image", "timestamp": "1315060510"}, SECRET) == (
        "b4ad47fb4e25c7bf5f92a20089f9db59bc302313"
    )


def test_captured_sdk_upload_vector() -> None:
    # The pycloudinary upload captured on the wire (reference 4.2): '&' in a value signed as %26.
    params = {"public_id": "folder/sample", "notification_url": "https://example.com/hook?a=1&b=2",
              "eager_async": "1", "overwrite": "1", "background_removal": "cloudinary_ai",
              "timestamp": "1315060510", "eager": "c_pad,h_300,w_400|c_crop,g_north,h_200,w_260/jpg",
              "tags": "a,b", "api_key": "1234", "file": "ignored"}  # fmt: skip
    assert auth.sign(params, SECRET) == "776908c23a218bd69aa950cd221294e65e170eb7"
    auth.check_signed({**params, "signature": "776908c23a218bd69aa950cd221294e65e170eb7"}, "1234", SECRET,
                      now=1315060510 + 100)  # fmt: skip


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
@pytest.mark.parametrize("version", [1, 2])
def test_matches_the_sdk(algorithm: str, version: int) -> None:
    params = {"public_id": "a/b c", "context": "k=v&w|x=y", "tags": "t1,t2", "timestamp": "1700000000",
              "notification_url": "http://h/x?a=1&b=2"}  # fmt: skip
    expected = api_sign_request(params, SECRET, algorithm, signature_version=version)
    assert auth.sign(params, SECRET, algorithm, version) == expected
    signed = {**params, "api_key": "k", "signature": expected}
    if version == 2:
        auth.check_signed(signed, "k", SECRET, now=1700000000)
        return
    with pytest.raises(UploadError, match="signature_version 1") as info:  # values with '&': ambiguous
        auth.check_signed(signed, "k", SECRET, now=1700000000)
    assert info.value.status == 401
    plain = {"public_id": "a/b c", "tags": "t1,t2", "timestamp": "1700000000"}  # no '&': v1 is v2
    one = api_sign_request(plain, SECRET, algorithm, signature_version=1)
    auth.check_signed({**plain, "api_key": "k", "signature": one}, "k", SECRET, now=1700000000)


def test_a_version_1_signature_cannot_move_a_parameter_into_another_ones_value() -> None:
    # Signed for a context and a folder; sent with the folder inside the context's value instead.
    signed_for = {"context": "alt=a", "folder": "shop", "timestamp": "1700000000"}
    signature = api_sign_request(signed_for, SECRET, "sha1", signature_version=1)
    moved = {"context": "alt=a&folder=shop", "timestamp": "1700000000"}
    with pytest.raises(UploadError, match="Invalid Signature") as info:
        auth.check_signed({**moved, "api_key": "k", "signature": signature}, "k", SECRET, now=1700000000)
    assert info.value.status == 401
    auth.check_signed({**signed_for, "api_key": "k", "signature": signature}, "k", SECRET, now=1700000000)


def test_refusals() -> None:
    now = time.time()
    params = {"public_id": "x", "timestamp": str(int(now))}
    good = {**params, "api_key": "k", "signature": auth.sign(params, SECRET)}
    auth.check_signed(good, "k", SECRET)
    cases = [
        ({**good, "api_key": ""}, "Must supply api_key"),
        ({**good, "api_key": "other"}, "Unknown API key"),
        ({**good, "signature": ""}, "signature"),
        ({**good, "signature": "0" * 40}, "Invalid Signature"),
        ({**good, "signature": "abc"}, "Invalid Signature"),
        ({**good, "public_id": "y"}, "Invalid Signature"),
    ]
    for bad, words in cases:
        with pytest.raises(UploadError, match=words) as info:
            auth.check_signed(bad, "k", SECRET)
        assert info.value.status == 401
    # A missing or malformed timestamp is a parameter's fault, not the caller's identity: 400 naming it.
    malformed = [
        ({k: v for k, v in good.items() if k != "timestamp"}, "Missing required parameter - timestamp"),
        ({**good, "timestamp": "soon"}, "Invalid parameter - timestamp: 'soon' is not Unix time"),
        # int() refuses more than 4300 digits: this was a 500, before any signature was checked.
        ({**good, "timestamp": "1" * 5000}, "Invalid parameter - timestamp"),
        ({**good, "timestamp": "0" * 5000 + str(int(now))}, "Invalid parameter - timestamp"),
        ({**good, "timestamp": "\u0661\u0662"}, "Invalid parameter - timestamp"),  # Arabic-Indic digits
        ({**good, "timestamp": "-1"}, "Invalid parameter - timestamp"),
        ({**good, "timestamp": "nan"}, "Invalid parameter - timestamp"),
        ({**good, "timestamp": "1e400"}, "Invalid parameter - timestamp"),
    ]
    for bad, words in malformed:
        with pytest.raises(UploadError, match=words) as info:
            auth.check_signed(bad, "k", SECRET)
        assert info.value.status == 400
    stale = {"public_id": "x", "timestamp": str(int(now) - 3700)}
    with pytest.raises(UploadError, match="Stale request"):
        auth.check_signed({**stale, "api_key": "k", "signature": auth.sign(stale, SECRET)}, "k", SECRET)


@pytest.mark.parametrize("written", ["{now:.1f}", "{now:.6f}", "{now:.9E}"])
def test_a_fractional_timestamp_is_unix_seconds_signed_as_sent(written: str) -> None:
    """Cloudinary reads ``timestamp`` as a number (a client that sent ``1.759930024E9`` was told its
    signature was wrong, not its time: cloudinary_npm#59); the signature covers the text as sent."""
    now = time.time()
    params = {"public_id": "x", "timestamp": written.format(now=now)}
    signed = {**params, "api_key": "k", "signature": auth.sign(params, SECRET)}
    auth.check_signed(signed, "k", SECRET, now=now)
    with pytest.raises(UploadError, match="Invalid Signature") as info:  # signed as whole seconds
        whole = {**params, "timestamp": str(int(now))}
        auth.check_signed({**params, "api_key": "k", "signature": auth.sign(whole, SECRET)}, "k", SECRET)
    assert info.value.status == 401
    stale = {"public_id": "x", "timestamp": f"{now - 3600.5:.1f}"}
    with pytest.raises(UploadError, match="Stale request") as info:
        auth.check_signed({**stale, "api_key": "k", "signature": auth.sign(stale, SECRET)}, "k", SECRET,
                          now=now)  # fmt: skip
    assert info.value.status == 401


def test_parameters_the_sdk_leaves_unsigned() -> None:
    # The SDK's tags and context calls send notification_url and batch_id outside the signature.
    from cloudinary.utils import sign_request

    params = {"tag": "a", "public_ids": "x/y", "command": "add", "timestamp": "1700000000",
              "notification_url": "http://h/x", "batch_id": "b1"}  # fmt: skip
    signed = sign_request(dict(params), {"api_key": "k", "api_secret": SECRET,
                                         "non_signable": ("notification_url", "batch_id")})  # fmt: skip
    auth.check_signed(
        signed, "k", SECRET, now=1700000000, unsigned=frozenset({"notification_url", "batch_id"})
    )
    with pytest.raises(UploadError, match="Invalid Signature"):
        auth.check_signed(signed, "k", SECRET, now=1700000000)

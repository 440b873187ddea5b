"""The Upload API's notifications against a real `cutout serve` whose CUTOUT_SIGNATURE_ALGORITHM is
sha256, checked with Cloudinary's own SDK (``verify_notification_signature(..., algorithm="sha256")``)
and a local receiver: the upload notification lists its eager transformations as the answer does,
``explicit`` with only a notification_url notifies, a duplicate eager transformation is made and listed
once, and notification URLs are capped in length."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.app.server_process import ServerProcess
from tests.upload.conftest import KEY, Receiver, start_server
from tests.upload.test_upload_sdk import ROAD


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # No model: none of these needs background removal, and the signature setting is what is tested.
    env = {"CUTOUT_SIGNATURE_ALGORITHM": "sha256", "CUTOUT_BACKGROUND_REMOVAL": "0"}
    process = start_server(tmp_path_factory.mktemp("notify"), env)
    yield process
    process.stop()


def notified(receiver: Receiver, public_id: str, kind: str) -> dict[str, Any]:
    """The first ``kind`` notification of ``public_id``, its SHA-256 signature checked by the SDK."""
    from cloudinary.utils import verify_notification_signature

    def match(post: Any) -> bool:
        body = json.loads(post.body)
        return bool(body.get("public_id") == public_id and body.get("notification_type") == kind)

    post = receiver.wait_for(match, timeout=30)
    stamp, signature = post.headers["x-cld-timestamp"], post.headers["x-cld-signature"]
    assert len(signature) == 64
    assert verify_notification_signature(post.body.decode(), stamp, signature, algorithm="sha256")
    assert not verify_notification_signature(post.body.decode(), stamp, signature, algorithm="sha1")
    assert not verify_notification_signature(post.body.decode() + " ", stamp, signature, algorithm="sha256")
    return dict(json.loads(post.body))


def kinds(receiver: Receiver, public_id: str) -> list[str]:
    with receiver.condition:
        return [json.loads(p.body)["notification_type"] for p in receiver.posts
                if json.loads(p.body).get("public_id") == public_id]  # fmt: skip


def test_the_upload_notification_lists_the_eager_transformations_as_the_answer(
    sdk: Any, receiver: Receiver
) -> None:
    eager = "c_scale,w_40|c_scale,w_40|c_scale,w_30/png|l_no_such_overlay"
    up = sdk.uploader.upload(str(ROAD), public_id="notify/eager", notification_url=receiver.url, eager=eager)
    # The answer's signature is SHA-256 too (the SDK's signature_algorithm), and not SHA-1.
    assert sdk.utils.verify_api_response_signature(up["public_id"], up["version"], up["signature"], "sha256")
    assert not sdk.utils.verify_api_response_signature(up["public_id"], up["version"], up["signature"])
    # The same transformation twice is made and listed once, in its first place; one asked for in a format
    # is written with it, as Cloudinary's answers write it (the Admin API lists the format apart).
    made = ["c_scale,w_40", "c_scale,w_30/png", "l_no_such_overlay"]
    assert [e["transformation"] for e in up["eager"]] == made
    assert (up["eager"][0]["width"], up["eager"][1]["format"]) == (40, "png")
    assert up["eager"][2]["status"] == "failed"
    note = notified(receiver, "notify/eager", "upload")
    assert note["eager"] == up["eager"]  # width, height, bytes, format, url, secure_url: the answer's
    assert note["version"] == up["version"] and note["signature_key"] == KEY
    assert note["timestamp"] == up["created_at"]
    derived = dict(sdk.api.resource("notify/eager"))["derived"]
    assert [d["transformation"] for d in derived] == ["c_scale,w_40", "c_scale,w_30"]
    assert sdk.uploader.destroy("notify/eager") == {"result": "ok"}


def test_an_eager_async_upload_notifies_the_upload_then_the_batch(sdk: Any, receiver: Receiver) -> None:
    up = sdk.uploader.upload(str(ROAD), public_id="notify/later", notification_url=receiver.url,
                             eager="c_scale,w_20|c_scale,w_20", eager_async=True)  # fmt: skip
    assert [e["status"] for e in up["eager"]] == ["processing"]
    note = notified(receiver, "notify/later", "upload")
    assert note["eager"] == up["eager"] and note["eager"][0]["batch_id"] == up["eager"][0]["batch_id"]
    batch = notified(receiver, "notify/later", "eager")
    assert [e["width"] for e in batch["eager"]] == [20]
    assert kinds(receiver, "notify/later") == ["upload", "eager"]
    assert sdk.uploader.destroy("notify/later") == {"result": "ok"}


def test_explicit_with_only_a_notification_url_notifies_its_answer(sdk: Any, receiver: Receiver) -> None:
    sdk.uploader.upload(str(ROAD), public_id="notify/explicit")
    answer = sdk.uploader.explicit("notify/explicit", type="upload", tags=["told"],
                                   notification_url=receiver.url)  # fmt: skip
    note = notified(receiver, "notify/explicit", "upload")
    assert note["tags"] == ["told"] and note["version"] == answer["version"]
    # The answer's fields but its api_key, as an upload's notification (it names the key as signature_key).
    assert {k: v for k, v in note.items() if k not in ("notification_type", "timestamp", "signature_key")} \
        == {k: v for k, v in answer.items() if k != "api_key"}
    assert "eager" not in note
    # With eager transformations, the same notification lists them, as the answer does.
    again = sdk.uploader.explicit("notify/explicit", type="upload", eager=[{"width": 25, "crop": "scale"}],
                                  notification_url=receiver.url)  # fmt: skip
    post = receiver.wait_for(lambda post: json.loads(post.body).get("public_id") == "notify/explicit"
                             and "eager" in json.loads(post.body), timeout=30)  # fmt: skip
    note = json.loads(post.body)
    assert note["notification_type"] == "upload" and note["eager"] == again["eager"]
    assert again["eager"][0]["width"] == 25
    assert kinds(receiver, "notify/explicit") == ["upload", "upload"]
    # The Admin API's update has nothing to tell without a background removal: refused, not ignored.
    with pytest.raises(sdk.exceptions.BadRequest, match="notification_url: an update notifies only of "):
        sdk.api.update("notify/explicit", tags=["quiet"], notification_url=receiver.url)
    assert dict(sdk.api.resource("notify/explicit"))["tags"] == ["told"]
    assert sdk.uploader.destroy("notify/explicit") == {"result": "ok"}


@pytest.mark.parametrize("name", ["notification_url", "eager_notification_url"])
def test_a_notification_url_past_2048_characters_is_refused_naming_it(
    sdk: Any, receiver: Receiver, name: str
) -> None:
    import cloudinary.exceptions

    url = receiver.url + "?" + "a" * (2049 - len(receiver.url) - 1)
    public_id = f"notify/long_{name}"
    with pytest.raises(cloudinary.exceptions.BadRequest, match=f"^{name}: The URL is 2049 characters long; "
                       "at most 2048 are taken$"):  # fmt: skip
        sdk.uploader.upload(str(ROAD), public_id=public_id, eager="c_scale,w_10", **{name: url})
    with pytest.raises(cloudinary.exceptions.NotFound):  # refused before anything was stored
        sdk.api.resource(public_id)
    # At the limit it is taken.
    up = sdk.uploader.upload(str(ROAD), public_id=public_id, notification_url=url[:2048])
    assert notified(receiver, public_id, "upload")["version"] == up["version"]
    assert sdk.uploader.destroy(public_id) == {"result": "ok"}

"""CUTOUT_PUBLIC_URL: the url and secure_url of Upload API answers, notifications and the Admin API are
made from the configured public base URL (secure_url as given, url in http), not from where the request
came in. No model is needed: the server runs without background removal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cutout.upload.assets import Base
from tests.app.server_process import ServerProcess
from tests.upload.conftest import CLOUD, KEY, SECRET, Receiver, start_server
from tests.upload.test_upload_sdk import ROAD

PUBLIC = "https://images.example.org/media"


@pytest.fixture(scope="module")
def public_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root: Path = tmp_path_factory.mktemp("public-url")
    process = start_server(root, {"CUTOUT_PUBLIC_URL": PUBLIC + "/", "CUTOUT_BACKGROUND_REMOVAL": "0"})
    yield process
    process.stop()


def test_urls_come_from_the_public_url(public_server: ServerProcess, receiver: Receiver) -> None:
    import cloudinary
    import cloudinary.api
    import cloudinary.uploader

    cloudinary.config(cloud_name=CLOUD, api_key=KEY, api_secret=SECRET, upload_prefix=public_server.url,
                      secure=False)  # fmt: skip
    try:
        up = cloudinary.uploader.upload(str(ROAD), public_id="pub/road", notification_url=receiver.url,
                                        eager="c_scale,w_40")  # fmt: skip
        tail = f"/{CLOUD}/image/upload/v{up['version']}/pub/road.jpg"
        assert up["secure_url"] == PUBLIC + tail  # the trailing '/' of the setting is dropped
        assert up["url"] == "http://images.example.org/media" + tail
        eager = f"{PUBLIC}/{CLOUD}/image/upload/c_scale,w_40/v{up['version']}/pub/road.jpg"
        assert up["eager"][0]["secure_url"] == eager

        def uploaded(post: Any) -> bool:
            body = json.loads(post.body)
            return bool(body.get("public_id") == "pub/road" and body.get("notification_type") == "upload")

        notified = json.loads(receiver.wait_for(uploaded).body)
        assert (notified["url"], notified["secure_url"]) == (up["url"], up["secure_url"])
        resource = cloudinary.api.resource("pub/road")
        assert (resource["url"], resource["secure_url"]) == (up["url"], up["secure_url"])
        listed = cloudinary.api.resources(prefix="pub/")["resources"]
        assert [r["secure_url"] for r in listed] == [up["secure_url"]]
    finally:
        cloudinary.reset_config()


def test_base_from_pending_work_written_before_the_setting() -> None:
    """Pending jobs stored the request's scheme and host; a restarted server still reads them."""
    old = Base.from_json({"host": "127.0.0.1:8080", "scheme": "https", "cloud": "demo"})
    assert old.urls("v1/a.jpg") == ("http://127.0.0.1:8080/demo/image/upload/v1/a.jpg",
                                    "https://127.0.0.1:8080/demo/image/upload/v1/a.jpg")  # fmt: skip
    assert Base.from_json(Base(PUBLIC, "demo").to_json()).public == PUBLIC


@pytest.mark.parametrize("value", ["images.example.org", "ftp://images.example.org", "https://x.org/?a=1"])
def test_a_public_url_that_cannot_be_a_base_is_refused_at_start(value: str) -> None:
    from cutout.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="CUTOUT_PUBLIC_URL"):
        load_settings({"CUTOUT_PUBLIC_URL": value})
    assert load_settings({"CUTOUT_PUBLIC_URL": "http://127.0.0.1:8080/img/"}).public_url == (
        "http://127.0.0.1:8080/img"
    )

"""Runware (seed 002): POST /v1 with arrays of tasks (every inputImage form, outputType, outputFormat,
rgba, returnOnlyMask, alphaMatting and its thresholds, includeCost, the UUID of an earlier image),
async delivery with getResponse and webhookURL, the {"errors": [...]} envelope, the key as Bearer or an
authentication task; Runware's own Python SDK over the WebSocket; one real-model run checking pixels."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips
from starlette.testclient import TestClient

from tests.adapters.conftest import KEY, OTHER_KEY, Live, check_composite, check_mask, image, photo, road
from tests.fetch.servers import LocalServer, send, serving

BEARER = {"Authorization": f"Bearer {KEY}"}
OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}
ROAD_B64 = base64.b64encode(road()).decode()


def removal(**fields: Any) -> dict[str, Any]:
    return {"taskType": "imageBackgroundRemoval", "taskUUID": str(uuid.uuid4()), "inputImage": ROAD_B64,
            "outputType": "base64Data", **fields}  # fmt: skip


def decoded(item: dict[str, Any]) -> pyvips.Image:
    if "imageBase64Data" in item:
        return image(base64.b64decode(item["imageBase64Data"]))
    head, _, text = item["imageDataURI"].partition(",")
    assert head.startswith("data:image/")
    return image(base64.b64decode(text))


#: (case, task fields, bands of the result or the error code, the parameter it names)
CASES: list[tuple[str, dict[str, Any], Any, str | None]] = [
    ("base64 in, base64 out", {}, 4, None),
    (
        "data URI in and out",
        {"inputImage": "data:image/jpeg;base64," + ROAD_B64, "outputType": "dataURI"},
        4,
        None,
    ),
    ("URL in", {"inputImage": "ORIGIN/road.jpg"}, 4, None),
    ("URL in, scheme in capitals", {"inputImage": "ORIGIN/road.jpg", "scheme": "HTTP"}, 4, None),
    ("JPG with an opaque rgba", {"outputFormat": "JPG", "rgba": [255, 0, 0, 255]}, 3, None),
    ("WEBP", {"outputFormat": "WEBP"}, 4, None),
    ("only the mask", {"returnOnlyMask": True}, 1, None),
    ("alpha matting, defaults", {"alphaMatting": True, "alphaMattingForegroundThreshold": 240}, 4, None),
    ("settings object", {"settings": {"returnOnlyMask": True, "postProcessMask": True}}, 1, None),
    ("bad outputType", {"outputType": "file"}, "invalidOutputType", "outputType"),
    # A list is not hashable: ``in`` the dict of output types raised, a 500 for the whole request.
    ("outputType a list", {"outputType": ["URL"]}, "invalidOutputType", "outputType"),
    ("settings a list", {"settings": [{"returnOnlyMask": True}]}, "invalidSettings", "settings"),
    ("settings a string", {"settings": "returnOnlyMask"}, "invalidSettings", "settings"),
    # settings holds the removal's options: a taskUUID there answered the task under another UUID.
    ("taskUUID in settings", {"settings": {"taskUUID": str(uuid.uuid4())}}, "unsupportedParameter",
     "settings.taskUUID"),  # fmt: skip
    ("outputType in settings", {"settings": {"outputType": "URL"}}, "unsupportedParameter",
     "settings.outputType"),  # fmt: skip
    ("rgba twice, two values", {"rgba": [0, 0, 0, 0], "settings": {"rgba": [255, 0, 0, 255]}}, "invalidRgba",
     "rgba"),  # fmt: skip
    ("rgba twice, one value", {"rgba": [255, 0, 0, 255], "settings": {"rgba": [255, 0, 0, 255]}}, 3, None),
    # Hints, but typed as Runware's SDK types them: a quality of 500 or "high" was listed, not refused.
    ("outputQuality text", {"outputQuality": "high"}, "invalidOutputQuality", "outputQuality"),
    ("outputQuality 500", {"outputQuality": 500}, "invalidOutputQuality", "outputQuality"),
    ("model an object", {"model": {"air": "runware:109@1"}}, "invalidModel", "model"),
    ("bad outputFormat", {"outputFormat": "GIF"}, "invalidOutputFormat", "outputFormat"),
    (
        "bad threshold",
        {"alphaMattingBackgroundThreshold": 0},
        "invalidAlphaMattingBackgroundThreshold",
        "alphaMattingBackgroundThreshold",
    ),
    ("bad rgba", {"rgba": [255, 0, 0]}, "invalidRgba", "rgba"),
    ("mask as JPG", {"returnOnlyMask": True, "outputFormat": "JPG"}, "invalidParameter", "outputFormat"),
    ("no inputImage", {"inputImage": None}, "invalidInputImage", "inputImage"),
    ("not an image", {"inputImage": base64.b64encode(b"hello there").decode()}, "invalidFileType",
     "inputImage"),  # fmt: skip
    ("unknown image UUID", {"inputImage": str(uuid.uuid4())}, "invalidImageUUID", "inputImage"),
    ("bad taskUUID", {"taskUUID": "1"}, "invalidTaskUUID", "taskUUID"),
    ("unknown field", {"strength": 1}, "unsupportedParameter", "strength"),
    ("bad delivery", {"deliveryMethod": "later"}, "invalidDeliveryMethod", "deliveryMethod"),
    ("webhook without a secret", {"webhookURL": "http://127.0.0.2/hook"}, "invalidWebhookURL", "webhookURL"),
]


@pytest.mark.parametrize(("case", "fields", "expected", "parameter"), CASES, ids=[c[0] for c in CASES])
def test_removal(
    client: TestClient,
    origin: LocalServer,
    case: str,
    fields: dict[str, Any],
    expected: Any,
    parameter: str | None,
) -> None:
    task = removal(**fields)
    if task["inputImage"] is None:
        del task["inputImage"]
    elif task["inputImage"].startswith("ORIGIN"):
        task["inputImage"] = task["inputImage"].replace("ORIGIN", origin.origin)
        if "scheme" in task:  # a URL's scheme is case-insensitive: HTTP://... was read as base64
            task["inputImage"] = task.pop("scheme") + task["inputImage"][len("http") :]
    response = client.post("/v1", headers=BEARER, json=[task])
    body = response.json()
    if isinstance(expected, int):
        assert response.status_code == 200, body
        [item] = body["data"]
        assert (item["taskType"], item["taskUUID"]) == ("imageBackgroundRemoval", task["taskUUID"])
        uuid.UUID(item["imageUUID"])
        assert decoded(item).bands == expected
        return
    assert response.status_code >= 400 and "data" not in body
    [error] = body["errors"]
    assert (error["code"], error.get("parameter"), error["taskUUID"]) == (
        expected,
        parameter,
        task["taskUUID"],
    )
    assert error["taskType"] == "imageBackgroundRemoval" and error["message"]


@pytest.mark.parametrize(
    ("model", "hint"),
    [
        ("日本", "model=%E6%97%A5%E6%9C%AC"),
        ("a\r\nX-Injected: 1", "model=a%0D%0AX-Injected: 1"),
        ("5%", "model=5%25"),
    ],
    ids=["non-latin-1", "crlf", "percent"],
)
def test_hints_quoting_the_client_are_header_safe(client: TestClient, model: str, hint: str) -> None:
    """The model is any text the client sends: '日' was a 500 (latin-1), CR LF an injected header."""
    answer = client.post("/v1", headers=BEARER, json=[removal(model=model)])
    assert answer.status_code == 200, answer.text[:200]
    assert answer.headers["x-cutout-ignored-hints"] == hint and "x-injected" not in answer.headers


def test_url_output_cost_hints_and_chaining(client: TestClient, stub: Any) -> None:
    first = removal(outputType="URL", includeCost=True, model="runware:109@1", alphaMattingErodeSize=5)
    answer = client.post("/v1", headers=BEARER, json=[first])
    [item] = answer.json()["data"]
    assert (
        item["cost"] == 0
        and answer.headers["x-cutout-ignored-hints"] == "alphaMattingErodeSize=5, model=runware:109@1"
    )
    delivered = client.get(item["imageURL"].removeprefix("http://testserver"))
    assert delivered.status_code == 200 and image(delivered.content).bands == 4
    # The result's UUID as the next task's input, with an upload's UUID beside it: one array, two answers.
    upload = {
        "taskType": "imageUpload",
        "taskUUID": str(uuid.uuid4()),
        "image": "data:image/jpeg;base64," + ROAD_B64,
    }
    uploaded = client.post("/v1", headers=BEARER, json=[upload]).json()["data"][0]
    original = client.get(uploaded["imageURL"].removeprefix("http://testserver"))
    assert original.status_code == 200 and image(original.content).width == 640
    calls = stub.calls
    chained = client.post("/v1", headers=BEARER, json=[
        removal(inputImage=item["imageUUID"], returnOnlyMask=True),
        removal(inputImage=uploaded["imageUUID"]),
    ]).json()["data"]  # fmt: skip
    assert [decoded(one).bands for one in chained] == [1, 4]
    assert stub.calls == calls + 1  # the result is a new image (segmented once); the upload is the road's


def test_an_image_uuid_is_its_keys(two_keys: TestClient, answered: list[bool]) -> None:
    """An imageUUID (an upload's, a result's, one answered by the ASGI front) names an image for the key
    that made it: another key naming it, over HTTP or the WebSocket, is answered as for an unknown UUID
    (the same invalidImageUUID error but for the UUIDs); the same image sent by the other key has a UUID
    of its own, which that key uses and the first may not; the key that made one still uses it."""
    upload = {"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()), "image": ROAD_B64}
    [uploaded] = two_keys.post("/v1", headers=BEARER, json=[upload]).json()["data"]
    same = [removal(outputType="URL")]  # byte for byte again: its repeats are the ASGI front's answers
    [made], [again] = (two_keys.post("/v1", headers=BEARER, json=same).json()["data"] for _ in range(2))
    assert made["imageUUID"] == again["imageUUID"] != uploaded["imageUUID"]
    [theirs_uploaded] = two_keys.post("/v1", headers=OTHER, json=[upload]).json()["data"]
    [theirs_made] = two_keys.post("/v1", headers=OTHER, json=same).json()["data"]
    assert theirs_uploaded["imageUUID"] != uploaded["imageUUID"]
    assert theirs_made["imageUUID"] != made["imageUUID"]
    assert answered == [False, False, True, False, False]  # the front: only the first key's own repeat

    def asked(headers: dict[str, str], image_uuid: str) -> tuple[int, dict[str, Any]]:
        task = removal(inputImage=image_uuid, taskUUID=str(uuid.uuid4()))
        answer = two_keys.post("/v1", headers=headers, json=[task])
        return answer.status_code, json.loads(answer.text.replace(image_uuid, "IMAGE").replace(
            task["taskUUID"], "TASK"))  # fmt: skip

    unknown = asked(OTHER, str(uuid.uuid4()))
    assert unknown[0] == 400 and unknown[1]["errors"][0]["code"] == "invalidImageUUID"
    for image_uuid in (uploaded["imageUUID"], made["imageUUID"]):
        assert asked(OTHER, image_uuid) == unknown
        status, answer = asked(BEARER, image_uuid)
        assert status == 200 and decoded(answer["data"][0]).bands == 4
    # The result's first (naming the upload makes the same result again, which notes its UUID anyway).
    for image_uuid in (theirs_made["imageUUID"], theirs_uploaded["imageUUID"]):
        assert asked(BEARER, image_uuid) == asked(BEARER, str(uuid.uuid4()))
        assert asked(OTHER, image_uuid)[0] == 200
    with two_keys.websocket_connect("/v1") as socket:
        socket.send_json([{"taskType": "authentication", "apiKey": OTHER_KEY}])
        assert socket.receive_json()["data"][0]["connectionSessionUUID"]
        task = removal(inputImage=uploaded["imageUUID"])
        socket.send_json([task])
        [error] = socket.receive_json()["errors"]
        assert (error["code"], error["parameter"], error["taskUUID"]) == (
            "invalidImageUUID", "inputImage", task["taskUUID"])  # fmt: skip


def test_an_image_note_from_before_owners_is_the_open_apis_only(two_keys: TestClient) -> None:
    """An image UUID noted before notes kept their owner is as unknown to every key (where the API is
    open without keys, '' is everyone's owner and it is still found)."""
    from cutout.adapters import runware

    api = two_keys.app.app.state.api  # type: ignore[attr-defined]
    upload = {"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()), "image": ROAD_B64}
    [uploaded] = two_keys.post("/v1", headers=BEARER, json=[upload]).json()["data"]
    legacy = str(uuid.uuid4())
    noted = api.tasks.noted(f"runware-image:{uploaded['imageUUID']}")
    api.tasks.note(f"runware-image:{legacy}", {"public_id": noted["public_id"]})  # no owner
    for headers in (BEARER, OTHER):
        [error] = two_keys.post("/v1", headers=headers, json=[removal(inputImage=legacy)]).json()["errors"]
        assert error["code"] == "invalidImageUUID"
    session = runware.Session(api, "http://testserver", "")
    assert asyncio.run(session._stored(legacy, "inputImage")) == noted["public_id"]


# Under pytest an asyncio transport of the SDK's event loops is left to the collector (as below).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_runware_sdk_keeps_a_keys_uuids(live_two_keys: Live, tmp_path: Path) -> None:
    """Runware's Python SDK with two keys: the image one key uploads (``uploadImage``) is refused to the
    other by its UUID, as an unknown UUID is, and still made by the key that uploaded it."""
    from runware import IImageBackgroundRemoval, Runware

    path = tmp_path / "road.jpg"
    path.write_bytes(road())
    url = live_two_keys.url.replace("http", "ws") + "/v1"

    async def run() -> tuple[Any, BaseException, BaseException]:
        mine, other = Runware(api_key=KEY, url=url), Runware(api_key=OTHER_KEY, url=url, max_retries=0)
        await mine.connect()
        await other.connect()
        try:
            upload = await mine.uploadImage(str(path))
            assert upload is not None and upload.imageUUID
            refusals = []
            for image_uuid in (upload.imageUUID, str(uuid.uuid4())):
                try:
                    await other.imageBackgroundRemoval(IImageBackgroundRemoval(inputImage=image_uuid))
                except Exception as exc:  # noqa: BLE001 - the SDK raises the task's error as it comes
                    refusals.append(exc)
            [cutout] = await mine.imageBackgroundRemoval(
                IImageBackgroundRemoval(inputImage=upload.imageUUID, outputType="base64Data")
            )
        finally:
            await mine.disconnect()
            await other.disconnect()
        return cutout, *refusals

    cutout, refused, unknown = asyncio.run(asyncio.wait_for(run(), 120))
    assert image(base64.b64decode(cutout.imageBase64Data)).bands == 4
    assert "invalidImageUUID" in str(refused) and "invalidImageUUID" in str(unknown)
    gc.collect()


def test_mixed_array_and_auth(client: TestClient) -> None:
    good, bad = removal(), removal(outputType="nope")
    mixed = client.post("/v1", headers=BEARER, json=[good, bad]).json()
    assert [d["taskUUID"] for d in mixed["data"]] == [good["taskUUID"]]
    assert [e["taskUUID"] for e in mixed["errors"]] == [bad["taskUUID"]]
    in_body = client.post("/v1", json=[{"taskType": "authentication", "apiKey": KEY}, removal()])
    assert in_body.status_code == 200 and len(in_body.json()["data"]) == 1
    wrong_in_body = [{"taskType": "authentication", "apiKey": "wrong"}, removal()]
    refusals = [({}, [removal()], "missingApiKey"),
                ({"Authorization": "Bearer wrong"}, [removal()], "invalidApiKey"),
                ({}, wrong_in_body, "invalidApiKey")]  # fmt: skip
    for headers, body, code in refusals:
        refused = client.post("/v1", headers=headers, json=body)
        assert refused.status_code == 401
        error = refused.json()["errors"][0]
        assert (error["code"], error["parameter"], error["taskType"]) == (code, "apiKey", "authentication")
    malformed = client.post("/v1", headers={**BEARER, "Content-Type": "application/json"}, content=b"[{")
    assert malformed.status_code == 400 and malformed.json()["errors"][0]["code"] == "invalidJSON"
    other = client.post(
        "/v1", headers=BEARER, json=[{"taskType": "imageInference", "taskUUID": str(uuid.uuid4())}]
    )
    assert other.json()["errors"][0]["code"] == "unsupportedTaskType"


def test_an_api_key_that_is_not_a_string(client: TestClient) -> None:
    """A number or a list as the authentication task's apiKey was a 500 over HTTP, and closed the socket."""
    for key in (5, [KEY], {"key": KEY}):
        refused = client.post("/v1", json=[{"taskType": "authentication", "apiKey": key}, removal()])
        assert refused.status_code == 401
        [error] = refused.json()["errors"]
        expected = ("invalidApiKey", "apiKey", "authentication")
        assert (error["code"], error["parameter"], error["taskType"]) == expected
    with client.websocket_connect("/v1") as socket:
        socket.send_json([{"taskType": "authentication", "apiKey": [KEY]}])
        assert socket.receive_json()["errors"][0]["code"] == "invalidApiKey"
        socket.send_json([{"taskType": "authentication", "apiKey": KEY, "connectionSessionUUID": {"a": 1}}])
        assert socket.receive_json()["errors"][0]["code"] == "invalidConnectionSessionUUID"  # was echoed
        socket.send_json([{"taskType": "authentication", "apiKey": KEY}])  # the socket is still open
        assert socket.receive_json()["data"][0]["connectionSessionUUID"]


@pytest.mark.parametrize(("sent", "said"), [
    (None, "inputImage is required"), ("", "inputImage is required"), (123, "must be a string, not a number"),
    (["a"], "must be a string, not an array"), (True, "must be a string, not a boolean"),
])  # fmt: skip
def test_an_input_image_that_is_not_a_string_is_told_so(client: TestClient, sent: Any, said: str) -> None:
    """A number or a list as inputImage was told "inputImage is required", as if it had not been sent."""
    response = client.post("/v1", headers=BEARER, json=[removal(inputImage=sent)])
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["code"], error["parameter"]) == ("invalidInputImage", "inputImage")
    assert said in error["message"]


def test_a_carried_image_that_is_not_one_is_named_as_its_field(client: TestClient) -> None:
    """base64 of no image was "the body is not a JPEG, PNG..." with no parameter: the body is the JSON of
    the tasks; it is inputImage (or imageUpload's image) that is not an image."""
    text = base64.b64encode(b"hello, not an image").decode()
    for task, field in ((removal(inputImage=text), "inputImage"),
                        ({"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()), "image": text}, "image")):
        response = client.post("/v1", headers=BEARER, json=[task])
        assert response.status_code == 415
        [error] = response.json()["errors"]
        assert (error["code"], error["parameter"]) == ("invalidFileType", field)
        assert error["message"].startswith(f"{field} is not a JPEG")  # fmt: skip


def test_upload_and_polling_refuse_fields_they_do_not_read(client: TestClient) -> None:
    """imageUpload and getResponse ignored any other field unseen (imageBackgroundRemoval refused it)."""
    upload = {"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()), "image": ROAD_B64, "width": 100}
    poll = {"taskType": "getResponse", "taskUUID": str(uuid.uuid4()), "outputType": "URL"}
    for task, name in ((upload, "width"), (poll, "outputType")):
        refused = client.post("/v1", headers=BEARER, json=[task])
        assert refused.status_code == 400
        [error] = refused.json()["errors"]
        assert (error["code"], error["parameter"], error["taskUUID"]) == (
            "unsupportedParameter", name, task["taskUUID"],
        )  # fmt: skip
    del upload["width"]
    assert client.post("/v1", headers=BEARER, json=[upload]).json()["data"][0]["imageUUID"]


def test_async_get_response(client: TestClient) -> None:
    task = removal(deliveryMethod="async", outputType="dataURI")
    ack = client.post("/v1", headers=BEARER, json=[task]).json()["data"][0]
    assert ack == {"taskType": "imageBackgroundRemoval", "taskUUID": task["taskUUID"], "status": "processing"}
    poll = [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}]
    deadline = time.monotonic() + 30
    while (item := client.post("/v1", headers=BEARER, json=poll).json()["data"][0])["status"] == "processing":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert item["status"] == "success" and decoded(item).bands == 4
    again = client.post("/v1", headers=BEARER, json=[task]).json()["errors"][0]
    assert again["code"] == "duplicateTaskUUID"
    unknown = client.post(
        "/v1", headers=BEARER, json=[{"taskType": "getResponse", "taskUUID": str(uuid.uuid4())}]
    )
    assert unknown.json()["errors"][0]["code"] == "invalidTaskUUID"


def test_webhook(
    tmp_path_factory: pytest.TempPathFactory, stub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """webhookURL: the complete task response POSTed to the receiver (with cutout's signature headers
    too: webhooks need CUTOUT_API_WEBHOOK_SECRET, as the native API's do)."""
    from cutout.app import create_app
    from tests.adapters.conftest import settings_in

    monkeypatch.setenv("CUTOUT_FETCH_ALLOW_NETWORKS", "127.0.0.3/32")
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    settings = settings_in(tmp_path_factory.mktemp("hook"), api_webhook_secret=secret)
    app = create_app(settings, segmenter=stub, load_model=False)
    with serving("127.0.0.3") as receiver, TestClient(app) as client:
        receiver.routes["/hook"] = lambda handler: send(handler, 204, b"", None)
        task = removal(webhookURL=receiver.url("/hook"), deliveryMethod="async")
        assert client.post("/v1", headers=BEARER, json=[task]).status_code == 200
        deadline = time.monotonic() + 30
        while not receiver.seen:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    [item] = json.loads(receiver.seen[0].body)["data"]
    assert (item["taskUUID"], item["status"]) == (task["taskUUID"], "success") and decoded(item).bands == 4


# Under pytest an asyncio transport of the SDK's event loops is left to the collector (not reproduced in a
# plain script); it is collected and its warning dropped here, not in a later test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_runware_sdk(live: Live, tmp_path: Path) -> None:
    """Runware's Python SDK, pointed at cutout's WebSocket: a local file (uploaded first, then named by
    its UUID), a mask, and a refused key."""
    from runware import IBackgroundRemovalSettings, IImageBackgroundRemoval, Runware

    path = tmp_path / "road.jpg"
    path.write_bytes(road())
    url = live.url.replace("http", "ws") + "/v1"

    async def run() -> tuple[Any, Any]:
        client = Runware(api_key=KEY, url=url)
        await client.connect()
        try:
            [cutout] = await client.imageBackgroundRemoval(
                IImageBackgroundRemoval(
                    inputImage=str(path), outputType="base64Data", outputFormat="PNG", includeCost=True
                )
            )
            [mask] = await client.imageBackgroundRemoval(IImageBackgroundRemoval(
                inputImage=ROAD_B64, outputType="URL",
                settings=IBackgroundRemovalSettings(returnOnlyMask=True)))  # fmt: skip
        finally:
            await client.disconnect()
        return cutout, mask

    cutout, mask = asyncio.run(asyncio.wait_for(run(), 120))
    assert image(base64.b64decode(cutout.imageBase64Data)).bands == 4 and cutout.cost == 0
    assert image(httpx.get(mask.imageURL, timeout=30).content).bands == 1

    async def refused() -> None:
        client = Runware(api_key="wrong", url=url, max_retries=0)
        await client.connect()
        try:
            await client.imageBackgroundRemoval(IImageBackgroundRemoval(inputImage=ROAD_B64))
        finally:
            await client.disconnect()

    with pytest.raises(Exception, match="(?i)key|auth"):
        asyncio.run(asyncio.wait_for(refused(), 60))
    gc.collect()


@pytest.mark.slow
def test_real_model(real: Live) -> None:
    source = image(photo())
    data = base64.b64encode(photo()).decode()
    tasks = [removal(inputImage=data, returnOnlyMask=True, outputFormat="PNG"),
             removal(inputImage=data, rgba=[255, 255, 0, 255], outputFormat="PNG")]  # fmt: skip
    answer = httpx.post(real.url + "/v1", headers=BEARER, json=tasks, timeout=300).json()
    mask, composite = (base64.b64decode(item["imageBase64Data"]) for item in answer["data"])
    check_mask(mask, source.width, source.height)
    check_composite(composite, (255, 255, 0))


def test_url_output_is_signed_for_strict_mode(tmp_path_factory: pytest.TempPathFactory, stub: Any) -> None:
    """Under CUTOUT_STRICT an unsigned transformation is refused: the URL output is signed with
    CUTOUT_API_SECRET, so it is served."""
    from cutout.app import create_app
    from tests.adapters.conftest import settings_in

    settings = settings_in(tmp_path_factory.mktemp("strict"), strict=True, api_secret="s3cret")
    with TestClient(create_app(settings, segmenter=stub, load_model=False)) as client:
        [item] = client.post("/v1", headers=BEARER, json=[removal(outputType="URL")]).json()["data"]
        assert "/s--" in item["imageURL"]
        signed = client.get(item["imageURL"].removeprefix("http://testserver"))
        assert signed.status_code == 200 and image(signed.content).bands == 4
        unsigned = client.get("/image/upload/" + item["imageURL"].split("--/", 1)[1])
        assert unsigned.status_code in (401, 403)


def test_rate_limited(limited: TestClient) -> None:
    assert limited.post("/v1", headers=BEARER, json=[removal()]).status_code == 200
    again = limited.post("/v1", headers=BEARER, json=[removal()])
    assert (again.status_code, again.json()["errors"][0]["code"]) == (429, "rateLimitExceeded")
    assert int(again.headers["retry-after"]) > 0


def test_socket_protocol(client: TestClient) -> None:
    """The WebSocket as the SDKs speak it: tasks before authentication, a wrong key, ping, a task, a
    bad task, all answered by taskUUID on one socket."""
    with client.websocket_connect("/v1") as socket:
        first = removal()
        socket.send_json([first])
        assert socket.receive_json()["errors"][0]["code"] == "missingApiKey"
        socket.send_json([{"taskType": "authentication", "apiKey": "wrong"}])
        assert socket.receive_json()["errors"][0]["code"] == "invalidApiKey"
        socket.send_json([{"taskType": "authentication", "apiKey": KEY}])
        assert socket.receive_json()["data"][0]["connectionSessionUUID"]
        socket.send_json([{"taskType": "ping", "ping": True}])
        assert socket.receive_json() == {"data": [{"taskType": "ping", "pong": True}]}
        bad = removal(outputFormat="GIF")
        socket.send_json([first, bad])
        answers = [socket.receive_json(), socket.receive_json()]
        by_uuid = {(a.get("data") or a.get("errors"))[0]["taskUUID"]: a for a in answers}
        assert decoded(by_uuid[first["taskUUID"]]["data"][0]).bands == 4
        assert by_uuid[bad["taskUUID"]]["errors"][0]["code"] == "invalidOutputFormat"
        socket.send_text("not json")
        assert socket.receive_json()["errors"][0]["code"] == "invalidJSON"


def test_a_task_that_is_not_an_object_keeps_the_socket(client: TestClient) -> None:
    """[5] over the WebSocket closed it with 1011, before authentication and after: reading the task's
    type and UUID off a number raised in the socket's task group."""
    with client.websocket_connect("/v1") as socket:
        socket.send_json([5])
        assert socket.receive_json()["errors"][0] == {
            "code": "missingApiKey", "message": "Authenticate first", "taskType": None, "taskUUID": None,
        }  # fmt: skip
        socket.send_json([{"taskType": "authentication", "apiKey": KEY}])
        assert socket.receive_json()["data"][0]["connectionSessionUUID"]
        for task in (5, None, "imageBackgroundRemoval", [removal()]):
            socket.send_json([task])
            [error] = socket.receive_json()["errors"]
            assert (error["code"], error["taskType"], error["taskUUID"]) == ("invalidTask", None, None)
        socket.send_json([{"taskType": "ping", "ping": True}])
        assert socket.receive_json() == {"data": [{"taskType": "ping", "pong": True}]}


def test_no_model(modelless: TestClient) -> None:
    [error] = modelless.post("/v1", headers=BEARER, json=[removal()]).json()["errors"]
    assert error["code"] == "modelUnavailable" and error["taskType"] == "imageBackgroundRemoval"


def test_an_array_with_no_task_is_a_400_on_both_transports(client: TestClient) -> None:
    """[] was answered 200 {} over HTTP and not at all over the WebSocket: a client waiting on its
    taskUUIDs could not tell it from a lost answer."""
    for headers, body, said in (
        (BEARER, [], "an empty array"),
        ({}, [], "an empty array"),  # malformed before anything else, as invalidJSON is
        ({}, [{"taskType": "authentication", "apiKey": KEY}], "only an authentication task"),
    ):
        response = client.post("/v1", headers=headers, json=body)
        assert response.status_code == 400
        [error] = response.json()["errors"]
        assert error["code"] == "invalidTasks" and said in error["message"]
        assert (error["taskType"], error["taskUUID"]) == (None, None)
    wrong = client.post("/v1", json=[{"taskType": "authentication", "apiKey": "wrong"}])
    assert wrong.status_code == 401  # the key is checked before the array is found empty
    with client.websocket_connect("/v1") as socket:
        socket.send_json([])  # before authentication too
        assert socket.receive_json()["errors"][0]["code"] == "invalidTasks"
        socket.send_json([{"taskType": "authentication", "apiKey": KEY}])
        assert socket.receive_json()["data"][0]["connectionSessionUUID"]
        socket.send_json([])
        [error] = socket.receive_json()["errors"]
        assert error["code"] == "invalidTasks" and "an empty array" in error["message"]
        socket.send_json([{"taskType": "ping", "ping": True}])  # the socket goes on
        assert socket.receive_json() == {"data": [{"taskType": "ping", "pong": True}]}


def test_a_null_field_is_its_default(client: TestClient) -> None:
    """null for an optional field (an SDK's unset one) was a 400 ("outputFormat must be PNG, JPG or WEBP"
    for outputFormat: null); it is the field's default, in the task and in settings. A required one
    null is refused as missing, by name."""
    nulls = {name: None for name in ("outputFormat", "outputQuality", "includeCost", "rgba", "model",
                                     "returnOnlyMask", "alphaMatting", "deliveryMethod", "webhookURL")}
    task = removal(**nulls, settings={"postProcessMask": None, "alphaMattingErodeSize": None})
    response = client.post("/v1", headers=BEARER, json=[task])
    assert response.status_code == 200, response.text
    [item] = response.json()["data"]
    assert decoded(item).bands == 4 and "cost" not in item
    assert "x-cutout-ignored-hints" not in response.headers  # a null model or quality is no hint
    for field, said in (("inputImage", "inputImage is required"), ("taskUUID", "taskUUID is required"),
                        ("taskType", "taskType is required")):  # fmt: skip
        refused = client.post("/v1", headers=BEARER, json=[{**removal(), field: None}])
        assert refused.status_code == 400
        [error] = refused.json()["errors"]
        assert error["parameter"] == field and said in error["message"]
    misspelt = [(removal(colour=None), "colour"), (removal(settings={"colour": None}), "settings.colour"),
                ({"taskType": "getResponse", "taskUUID": str(uuid.uuid4()), "id": None}, "id")]
    for task, name in misspelt:
        refused = client.post("/v1", headers=BEARER, json=[task])  # a misspelt name, null or not
        assert refused.json()["errors"][0]["parameter"] == name
    with client.websocket_connect("/v1") as socket:
        socket.send_json([{"taskType": "authentication", "apiKey": KEY, "connectionSessionUUID": None}])
        assert socket.receive_json()["data"][0]["connectionSessionUUID"]
        socket.send_json([removal(outputFormat=None)])
        assert decoded(socket.receive_json()["data"][0]).bands == 4

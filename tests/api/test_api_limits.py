"""Who may call, how often, how much: keys, the per-key rate, the body limit while it streams, a full
queue, and the error shape of each."""

from __future__ import annotations

from collections.abc import Iterator

from starlette.testclient import TestClient

from tests.api.conftest import KEY, road
from tests.app.helpers import ClientFactory, EllipseSegmenter

URL = "/v1/remove-background"
JPEG = {"Content-Type": "image/jpeg"}


def error_of(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    (error,) = body["errors"]
    assert set(error) == {"code", "title", "detail", "parameter"}
    return error  # type: ignore[no-any-return]


def test_missing_or_wrong_key_is_401(api: TestClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        response = api.post(URL, content=road(), headers={**JPEG, **headers})
        assert response.status_code == 401
        assert error_of(response)["code"] == "auth_failed"
        assert response.headers["www-authenticate"] == "Bearer"
    assert api.get("/v1/tasks/tsk_x", headers={"Authorization": ""}).status_code == 401


def test_x_api_key_works_too(api: TestClient) -> None:
    response = api.post(URL, content=road(), headers={**JPEG, "Authorization": "", "X-Api-Key": KEY})
    assert response.status_code == 200


def test_two_different_keys_are_a_400_naming_both(api: TestClient) -> None:
    """Bearer won silently over a different X-Api-Key: the request ran as a caller it may not have meant
    (or was refused 401 with the other key right). The same key in both is one key."""
    for other in ("nope", "test-key-2"):  # a wrong one, and one that would be let in where it is a key
        # Bearer: the fixture's
        response = api.post(URL, content=road(), headers={**JPEG, "X-Api-Key": other})
        assert response.status_code == 400
        error = error_of(response)
        assert (error["code"], error["parameter"]) == ("invalid_parameter", "X-Api-Key")
        assert "Authorization: Bearer and X-Api-Key carry different keys" in error["detail"]
    assert api.get("/v1/tasks/tsk_x", headers={"X-Api-Key": "nope"}).status_code == 400  # every route
    same = api.post(URL, content=road(), headers={**JPEG, "X-Api-Key": KEY})
    assert same.status_code == 200


def test_async_false_with_prefer_respond_async_is_a_400_naming_both(api: TestClient) -> None:
    """Prefer: respond-async won silently over async=false (202 for a client that asked for the image)."""
    for value in ("false", "0"):
        response = api.post(URL, content=road(), headers={**JPEG, "Prefer": "respond-async"},
                            params={"async": value})  # fmt: skip
        assert response.status_code == 400
        error = error_of(response)
        assert error["parameter"] == "async"
        assert f"async={value} and Prefer: respond-async disagree" in error["detail"]
    agreed = api.post(URL, content=road(), headers={**JPEG, "Prefer": "respond-async"}, params={"async": "1"})
    assert agreed.status_code == 202


def test_rate_limit_per_key(make_api: ClientFactory) -> None:
    client = make_api(api_rate=0.1)  # a bucket of one request
    assert client.get("/v1/tasks/tsk_x").status_code == 404
    limited = client.get("/v1/tasks/tsk_x")
    assert limited.status_code == 429
    assert error_of(limited)["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1


def test_a_body_over_the_limit_is_413(make_api: ClientFactory) -> None:
    client = make_api(max_upload_bytes=10_000)
    declared = client.post(URL, content=road(), headers=JPEG)
    assert declared.status_code == 413 and error_of(declared)["code"] == "file_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        data = road()
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    streamed = client.post(URL, content=chunks(), headers=JPEG)
    assert streamed.status_code == 413 and error_of(streamed)["code"] == "file_too_large"
    form = client.post(URL, files={"image_file": ("road.jpg", road(), "image/jpeg")})
    assert form.status_code == 413


def test_a_full_queue_is_503_with_retry_after(make_api: ClientFactory) -> None:
    client = make_api(segmenter=EllipseSegmenter(delay=1.0), queue_size=1, api_wait_seconds=0.05)
    first = client.post(URL, json={"public_id": "docs/road"})
    assert first.status_code == 202
    second = client.post(URL, json={"public_id": "docs/bg_beach"})
    assert second.status_code == 503
    assert error_of(second)["code"] == "queue_full"
    assert second.headers["retry-after"]


def test_unknown_routes_under_v1(api: TestClient) -> None:
    assert api.get("/v1/remove-background").status_code == 405
    assert api.get("/v1/tasks/tsk_nothing").status_code == 404


def test_a_plain_options_is_told_the_methods_the_route_takes(api: TestClient) -> None:
    """Not the delivery URLs' ``Allow: GET, HEAD, OPTIONS`` (schemathesis' ST205 on the live server)."""
    for path, allowed in (("/v1/remove-background", "POST"), ("/v1/tasks/tsk_x", "GET, HEAD, DELETE"),
                          ("/v1/tasks/tsk_x/result", "GET, HEAD")):  # fmt: skip
        answer = api.options(path)
        assert answer.status_code == 405, path
        assert answer.headers["allow"] == allowed
        assert error_of(answer)["code"] == "method_not_allowed"
        assert "OPTIONS" in error_of(answer)["detail"]
    assert error_of(api.options("/v1/nothing"))["code"] == "not_found"
    # A browser's CORS preflight is still answered as one.
    preflight = api.options("/v1/remove-background", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and "POST" in preflight.headers["access-control-allow-methods"]



def test_an_error_quotes_a_huge_name_or_value_in_part(api: TestClient) -> None:
    """A 1 MB field name was sent back whole, twice (in ``detail`` and ``parameter``); a 1 MB value once."""
    big = "z" * (1 << 20)
    cases = (
        ({"public_id": "docs/road", big: 1}, "unknown parameter 'zzz", "zzz"),
        ({"public_id": "docs/road", "format": big}, "format must be one of auto, png, jpg, webp, got 'zzz",
         "format"),
    )
    for body, detail, parameter in cases:
        answer = api.post(URL, json=body)
        assert answer.status_code == 400
        assert len(answer.content) < 2000
        error = error_of(answer)
        assert error["code"] == "invalid_parameter"
        assert str(error["detail"]).startswith(detail) and "characters left out" in str(error["detail"])
        assert str(error["parameter"]).startswith(parameter) and len(str(error["parameter"])) <= 100

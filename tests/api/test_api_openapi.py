"""/openapi.json and /docs describe the implementation: every route and method, every error code and
every field the API accepts (a new one that is not documented fails here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cutout.api.errors import CODES
from cutout.api.options import CONTROL, OPTION_DOCS, SOURCE_DOCS, SOURCES, parse_options
from cutout.api.routes import ROUTES
from tests.app.helpers import ClientFactory


def test_every_route_and_method_is_documented(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, methods in spec["paths"].items() for method in methods}
    for route in ROUTES:
        if route.path == "/v1/{rest:path}":  # the JSON 404/405 for everything else under /v1/
            continue
        for method in route.methods or ():
            if method != "HEAD":
                assert (route.path, method) in documented, f"{method} {route.path} is not in /openapi.json"


def test_every_error_code_is_documented(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    error = spec["components"]["schemas"]["Errors"]["properties"]["errors"]["items"]
    assert set(error["properties"]["code"]["enum"]) == set(CODES)
    described = " ".join(
        response.get("description", "")
        for methods in spec["paths"].values()
        for operation in methods.values()
        for response in operation["responses"].values()
    )
    missing = [code for code in CODES if f"{code}:" not in described]
    assert not missing, f"codes no response of /openapi.json names: {missing}"


def test_the_documented_fields_are_the_accepted_ones() -> None:
    assert set(SOURCE_DOCS) == set(SOURCES)
    assert set(CONTROL) <= set(OPTION_DOCS)
    samples = {"channels": "alpha", "bg_color": "red", "size": "preview", "max_megapixels": "1",
               "format": "png", "output": "json", "encoding": "base64", "crop": "1", "crop_margin": "1",
               "fine_edges": "1", "async": "1", "webhook_url": "https://example.org/",
               "bg_image_file": "aGVsbG8=", "bg_image_url": "https://example.org/bg.jpg",
               "bg_public_id": "docs/road", "shadow": "true", "roi": "0 0 50% 100%"}  # fmt: skip
    assert set(samples) == set(OPTION_DOCS)
    for name, value in samples.items():
        fields = {name: value, **({"output": "json"} if name == "encoding" else {})}
        fields.update({"crop": "1"} if name == "crop_margin" else {})
        parse_options(fields)  # accepted: no invalid_parameter for a documented field


def test_docs_page(api: TestClient) -> None:
    page = api.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for needle in ("/v1/remove-background", "queue_full", "crop_margin", "/openapi.json"):
        assert needle in page.text


@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
def test_off_with_the_api(make_api: ClientFactory, path: str) -> None:
    assert make_api(api_keys=()).get(path).status_code == 404


def test_the_readme_error_table_lists_every_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("<!-- api errors -->") : readme.index("<!-- end of api errors -->")]
    rows = {line.split("|")[1].strip(" `"): int(line.split("|")[2]) for line in table.splitlines()[3:]}
    assert rows == {code: status for code, (status, _) in CODES.items()}


def test_the_json_body_schema_takes_what_the_api_takes(api: TestClient) -> None:
    """The README's JSON examples (``{"crop": true, ...}``) are valid bodies by /openapi.json, and so are
    JSON's own true, false and numbers, which the API takes: the document's flags were strings only. A
    text ``image_file``, which the API refuses, is no longer in the JSON and url-encoded bodies."""
    import json
    import re

    import jsonschema_rs  # schemathesis' own validator (schemathesis is a test dependency)

    operation = api.get("/openapi.json").json()["paths"]["/v1/remove-background"]["post"]
    content = operation["requestBody"]["content"]
    valid = jsonschema_rs.validator_for(content["application/json"]["schema"]).is_valid
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The HTTP API") : readme.index("## Drop-in for the hosted")]
    examples = [json.loads(body) for body in re.findall(r"-d '(\{.*?\})'", section)]
    assert len(examples) >= 3 and any(example.get("crop") is True for example in examples)
    for example in examples:
        assert valid(example), example
    body = {"public_id": "docs/road", "crop": True, "fine_edges": False, "max_megapixels": 0.5,
            "async": False}  # fmt: skip
    assert valid(body)
    assert api.post("/v1/remove-background", json=body).status_code == 200
    for wrong in ({"crop": "maybe"}, {"max_megapixels": 0}, {"max_megapixels": 5000}, {"image_file": "aGk="}):
        assert not valid({"public_id": "docs/road", **wrong}), wrong
        assert api.post("/v1/remove-background", json={"public_id": "docs/road", **wrong}).status_code == 400
    assert "image_file" not in content["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert content["multipart/form-data"]["schema"]["properties"]["image_file"]["format"] == "binary"

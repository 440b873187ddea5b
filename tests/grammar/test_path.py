"""Delivery path -> DeliveryPath, and the 400s for paths a client got wrong."""

from __future__ import annotations

from typing import Any

import pytest

from grammar import is_component, layer_public_id, parse_path
from grammar.errors import BadRequest, TransformationSyntaxError
from grammar.path import plain_component

ONLY = "only image/upload is supported (and image/fetch where the server fetches)"

BR = "e_background_removal/c_scale,w_400/u_docs:road/fl_layer_apply,y_-200"

# path -> expected fields (only those listed are checked; "comps" is the list of component raws)
CASES: list[tuple[str, dict[str, Any]]] = [
    (
        f"/demo/image/upload/{BR}/docs/rmv_bgd/dog_couch_orig",
        dict(
            cloud_name="demo",
            comps=BR.split("/"),
            version=None,
            public_id="docs/rmv_bgd/dog_couch_orig",
            extension=None,
            raw_transformation=BR,
            raw_source="docs/rmv_bgd/dog_couch_orig",
        ),
    ),
    (
        "/demo/image/upload/ar_1.0,c_fill,h_250/bo_5px_solid_lightblue/leather_bag_gray.jpg",
        dict(
            comps=["ar_1.0,c_fill,h_250", "bo_5px_solid_lightblue"],
            public_id="leather_bag_gray",
            extension="jpg",
            raw_source="leather_bag_gray.jpg",
        ),
    ),
    (
        "/test123/image/upload/s--Ai4Znfl3--/c_crop,h_20,w_10/v1234/image.jpg",
        dict(
            cloud_name="test123",
            signature="Ai4Znfl3",
            comps=["c_crop,h_20,w_10"],
            version=1234,
            public_id="image",
            extension="jpg",
            raw_transformation="c_crop,h_20,w_10",
            raw_source="image.jpg",
        ),
    ),
    (
        "/test123/image/upload/s----SjmNDA--/image.jpg",
        dict(signature="--SjmNDA", comps=[], public_id="image"),
    ),
    (
        "/demo/image/upload/s--2hbrSMPOjj5BJ4xV7SgFbRDevFaQNUFf--/sample.jpg",
        dict(signature="2hbrSMPOjj5BJ4xV7SgFbRDevFaQNUFf"),
    ),
    ("/image/upload/sample.png", dict(cloud_name=None, public_id="sample", extension="png")),
    ("/image/upload/w_100/sample", dict(cloud_name=None, comps=["w_100"], public_id="sample")),
    ("/iu/c_fit,w_10/sample", dict(cloud_name=None, comps=["c_fit,w_10"], public_id="sample")),
    ("/demo/iu/sample", dict(cloud_name="demo", public_id="sample")),
    ("/demo/image/upload/v1/folder/test", dict(version=1, comps=[], public_id="folder/test")),
    ("/demo/image/upload/folder/test", dict(version=None, comps=[], public_id="folder/test")),
    ("/demo/image/upload/v1/c_scale,w_4/x", dict(comps=[], public_id="c_scale,w_4/x")),
    ("/demo/image/upload/w_400,foo_3/x", dict(comps=["w_400,foo_3"], public_id="x")),
    ("/demo/image/upload/$w_150/t_passport/x", dict(comps=["$w_150", "t_passport"], public_id="x")),
    ("/demo/image/upload/w_1/f_auto/q_auto/x", dict(comps=["w_1", "f_auto", "q_auto"], public_id="x")),
    ("/demo/image/upload/SAMPLE.JPG", dict(public_id="SAMPLE", extension="jpg", raw_source="SAMPLE.JPG")),
    ("/demo/image/upload/dog.couch", dict(public_id="dog.couch", extension=None)),
    ("/demo/image/upload/a.b.webp", dict(public_id="a.b", extension="webp")),
    # Formats cutout cannot deliver are still the extension (the renderer's 400 names them).
    ("/demo/image/upload/docs/poster.psd", dict(public_id="docs/poster", extension="psd")),
    ("/demo/image/upload/brochure.PDF", dict(public_id="brochure", extension="pdf")),
    ("/demo/image/upload/v2/docs.jpg/x", dict(public_id="docs.jpg/x", extension=None)),
    ("/demo/image/upload/a%20b%2Bc.jpg", dict(public_id="a b+c", raw_source="a%20b%2Bc.jpg")),
    ("/demo/image/upload/%C3%9F", dict(public_id="\u00df", raw_source="%C3%9F")),
    ("/demo/image/upload/a:b", dict(public_id="a:b")),
    ("/image/image/upload/x", dict(cloud_name="image", public_id="x")),
    ("/demo/image/upload/s--foo/x", dict(signature=None, public_id="s--foo/x")),
    ("/demo/image/upload/rmv_bgd", dict(comps=[], public_id="rmv_bgd")),
    # Dynamic SEO suffixes (url_suffix): /images/ is /image/upload/; the suffix is dropped and its extension
    # goes onto the public id, as the SDKs sign it; the version and the signature stay where they were.
    ("/demo/images/test/hello", dict(cloud_name="demo", public_id="test", extension=None, raw_source="test")),
    (
        "/images/s--h7JaWt6b--/c_scale,w_40/v1/docs/road/nice-road.JPG",
        dict(cloud_name=None, signature="h7JaWt6b", comps=["c_scale,w_40"], version=1, public_id="docs/road",
             extension="jpg", raw_transformation="c_scale,w_40", raw_source="docs/road.JPG"),
    ),
    ("/demo/images/w_1/caf%C3%A9/x%20y.png", dict(public_id="caf\u00e9", raw_source="caf%C3%A9.png")),
    ("/demo/images/a/b.c.webp", dict(public_id="a", extension="webp")),
    ("/demo/images/a/b.foo", dict(public_id="a.foo", extension=None)),  # as /image/upload/a.foo
    # A cloud's own prefix wins over the SEO shortcut: a cloud may be named "images".
    ("/images/image/upload/x", dict(cloud_name="images", public_id="x")),
    ("/images/iu/x", dict(cloud_name="images", public_id="x")),
]


@pytest.mark.parametrize(("path", "expected"), CASES, ids=[case[0] for case in CASES])
def test_parses(path: str, expected: dict[str, Any]) -> None:
    parsed = parse_path(path)
    assert parsed.resource_type == "image" and parsed.delivery_type == "upload"
    actual = {name: getattr(parsed, name) for name in expected if name != "comps"}
    if "comps" in expected:
        actual["comps"] = [component.raw for component in parsed.components]
    assert actual == expected


def test_components_are_parsed() -> None:
    parsed = parse_path(f"/demo/image/upload/{BR}/docs/rmv_bgd/dog_couch_orig")
    assert [(p.key, p.value) for p in parsed.components[3].params] == [("fl", "layer_apply"), ("y", "-200")]


SHAPE = (
    "expected /<cloud_name>/image/upload/[s--<signature>--/][<transformation>/][v<version>/]"
    "<public_id>[.<extension>], or the same without /<cloud_name>, or /images/ in place of /image/upload/"
    " with /<public_id>/<seo_suffix>[.<extension>] (root paths are not supported)"
)
SEO_SHAPE = "an /images/ (SEO) path ends with <public_id>/<seo_suffix>[.<extension>]"

ERRORS = [
    ("/demo/image/upload/", 'Invalid delivery path "/demo/image/upload/": no public id'),
    ("/demo/image/upload", 'Invalid delivery path "/demo/image/upload": no public id'),
    (
        "/image/upload/w_4/",
        "Invalid delivery path \"/image/upload/w_4/\": no public id (the path ends with '/')",
    ),
    (
        "/demo/image/upload/w_4//x",
        "Invalid delivery path \"/demo/image/upload/w_4//x\": empty component ('//')",
    ),
    ("/demo/image/upload//x", "Invalid delivery path \"/demo/image/upload//x\": empty component ('//')"),
    ("/demo/video/upload/x", "Unsupported delivery type video/upload: " + ONLY),
    ("/demo/image/fetch/x", "Unsupported delivery type image/fetch: " + ONLY),
    ("/image/private/x", "Unsupported delivery type image/private: " + ONLY),
    ("/demo/test", f'Invalid delivery path "/demo/test": {SHAPE}'),
    ("/demo/images/hello", f'Invalid delivery path "/demo/images/hello": {SEO_SHAPE}'),
    ("/images/hello.jpg", f'Invalid delivery path "/images/hello.jpg": {SEO_SHAPE}'),
    ("/images/s--abcdefgh--/x", f'Invalid delivery path "/images/s--abcdefgh--/x": {SEO_SHAPE}'),
    ("/demo/images/x/", "Invalid delivery path \"/demo/images/x/\": no public id (the path ends with '/')"),
    ("/demo/files/test/hello", f'Invalid delivery path "/demo/files/test/hello": {SHAPE}'),
    ("/", f'Invalid delivery path "/": {SHAPE}'),
    ("demo/image/upload/x", "Invalid delivery path \"demo/image/upload/x\": must start with '/'"),
    (
        "/de.mo/image/upload/x",
        "Invalid cloud name \"de.mo\": expected a letter then up to 127 letters, digits, '-' or '_'",
    ),
    (
        "/demo/image/upload/s--abc--/x",
        'Invalid signature component "s--abc--": expected s--<8 or 32 URL-safe base64 characters>--',
    ),
    (
        "/demo/image/upload/../etc/passwd",
        "Invalid public id \"../etc/passwd\": folder names must not be empty, '.' or '..'",
    ),
    (
        "/demo/image/upload/a/%2E%2E/b",
        "Invalid public id \"a/../b\": folder names must not be empty, '.' or '..'",
    ),
    ("/demo/image/upload/%2Fetc", "Invalid public id \"/etc\": folder names must not be empty, '.' or '..'"),
    ("/demo/image/upload/./x", "Invalid public id \"./x\": folder names must not be empty, '.' or '..'"),
    (
        "/demo/image/upload/a%5Cb",
        'Invalid public id "a\\\\b": backslashes and control characters are not allowed',
    ),
    (
        "/demo/image/upload/a%00b",
        'Invalid public id "a\\x00b": backslashes and control characters are not allowed',
    ),
    (  # a C1 control (CSI) too: the id is quoted in the 404's body
        "/demo/image/upload/a%C2%9Bb",
        'Invalid public id "a\\x9bb": backslashes and control characters are not allowed',
    ),
    ("/demo/image/upload/%FF", 'Invalid public id "%FF": percent-encoding is not valid UTF-8'),
    ("/demo/image/upload/" + "a" * 256, "public_id is too long (256 characters; at most 255)"),
    ("/demo/image/upload/" + "a" * 8200, "Delivery path is too long (8219 characters; at most 8192)"),
]


@pytest.mark.parametrize(("path", "message"), ERRORS, ids=[case[0][:60] for case in ERRORS])
def test_rejects(path: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_path(path)
    assert caught.value.public == message
    assert caught.value.status == 400


def test_public_id_of_255_characters_is_fine() -> None:
    assert parse_path("/demo/image/upload/" + "a" * 255 + ".jpg").public_id == "a" * 255


def test_segments_before_version_must_be_transformations() -> None:
    with pytest.raises(TransformationSyntaxError) as caught:
        parse_path("/demo/image/upload/docs/v1/x")
    assert caught.value.public == (
        'Invalid transformation syntax at column 5 of "docs": expected \'_\' after parameter key "docs", '
        "found end of text"
    )


def test_transformation_errors_name_the_column_of_the_transformation() -> None:
    with pytest.raises(TransformationSyntaxError) as caught:
        parse_path("/demo/image/upload/c_fit,w_,h_3/x.jpg")
    assert (
        caught.value.public
        == 'Invalid transformation syntax at column 9 of "c_fit,w_,h_3": missing value after "w_"'
    )


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("w_400", True),
        ("w_400,foo_3", True),
        ("foo_3,w_400", True),
        ("$w_3", True),
        ("rmv_bgd", False),
        ("docs", False),
        ("w", False),
        ("$_3", False),
        ("dog_couch_orig", False),
        ("if_end", True),
    ],
)
def test_is_component(segment: str, expected: bool) -> None:
    assert is_component(segment) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("docs:road", "docs/road"), ("road", "road"), ("a%20b:c", "a b/c"), ("docs:a%3Ab", "docs/a:b")],
)
def test_layer_public_id(value: str, expected: str) -> None:
    assert layer_public_id(value) == expected


@pytest.mark.parametrize("value", ["docs::road", "..:etc", ":road", "a%5Cb", "%FF"])
def test_layer_public_id_rejects(value: str) -> None:
    with pytest.raises(BadRequest, match="layer public id"):
        layer_public_id(value)


def test_a_default_image_is_checked_as_a_layer_is_and_named_in_the_400() -> None:
    found = layer_public_id("docs:placeholders:avatar", "default image public id")
    assert found == "docs/placeholders/avatar"
    with pytest.raises(BadRequest, match='^Invalid default image public id "%2E%2E:etc": folder names'):
        layer_public_id("%2E%2E:etc", "default image public id")


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("%24w_300", "$w_300"),
        ("c_scale,w_%24w", "c_scale,w_$w"),
        ("ar_16%3A9,c_fill,w_100", "ar_16:9,c_fill,w_100"),
        ("ar_16%3a9", "ar_16:9"),  # lower-case hex is the same
        ("if_%21sale%21_in_tags", "if_!sale!_in_tags"),
        ("c_scale%2Cw_300", "c_scale,w_300"),  # an encoded comma between parameters separates them
        ("e_dropshadow:azimuth_220%3Belevation_60", "e_dropshadow:azimuth_220;elevation_60"),
        ("w_%31%30%30", "w_100"),  # unreserved characters are the same encoded (RFC 3986)
        # Never decoded: %25 and %2F, and whatever is in a token with its own escaping rules.
        ("w_%2525", "w_%2525"),
        ("w_1%2F2", "w_1%2F2"),
        ("l_text:Arial_40:a%2Cb%252Cc%24%21", "l_text:Arial_40:a%2Cb%252Cc%24%21"),
        ("co_red%2Cl_text:Arial_40:a%2Cb", "co_red,l_text:Arial_40:a%2Cb"),  # the text's comma stays
        ("l_docs:a%3Ab,w_100", "l_docs:a%3Ab,w_100"),  # a colon in an id, not a folder
        ("u_a%24b", "u_a%24b"),
        ("d_a%3Ab", "d_a%3Ab"),
        ("fl_attachment:a%2Cb%3Ac", "fl_attachment:a%2Cb%3Ac"),
        ("if_%21a%2Cb%21_in_tags", "if_!a%2Cb!_in_tags"),  # a comma inside a !string! is the tag's
        ("if_%21a%21_in_tags%2Cw_100", "if_!a!_in_tags,w_100"),  # after a closed one it separates
        # A string's text keeps its own encoding (%21 a literal '!', %3A a colon in a tag, not two tags);
        # with no '!' as it is in the component, its %21 are the quotes.
        ("if_!a%21b%3Ac!_in_tags%2Cw_1", "if_!a%21b%3Ac!_in_tags,w_1"),
        ("if_%21a%3Ab%21_in_tags%2Cw_%31", "if_!a%3Ab!_in_tags,w_1"),
        ("%24t_%21x%2Cy%21", "$t_!x%2Cy!"),
        ("c_scale,w_300", "c_scale,w_300"),
    ],
)
def test_plain_component(segment: str, expected: str) -> None:
    assert plain_component(segment) == expected


@pytest.mark.parametrize(
    ("encoded", "plain"),
    [
        ("%24w_300/c_scale,w_%24w/docs/road.jpg", "$w_300/c_scale,w_$w/docs/road.jpg"),
        ("ar_16%3A9,c_fill,w_100/v1/docs/road", "ar_16:9,c_fill,w_100/v1/docs/road"),
        ("if_%21sale%21_in_tags,w_1/docs/road", "if_!sale!_in_tags,w_1/docs/road"),
        ("c_scale%2Cw_300/docs/road", "c_scale,w_300/docs/road"),
    ],
)
def test_encoded_structural_characters_read_as_decoded(encoded: str, plain: str) -> None:
    """An encoded component is the decoded one (a component, not the public id's first folder); its
    text as written stays in raw_transformation, which signatures hash."""
    got, want = parse_path(f"/d/image/upload/{encoded}"), parse_path(f"/d/image/upload/{plain}")
    assert got.components == want.components and got.public_id == want.public_id
    assert got.transformation == want.raw_transformation
    written = encoded.rsplit("/docs/", 1)[0]
    assert got.raw_transformation == written.removesuffix("/v1")


def test_a_public_ids_encoding_is_unchanged_by_component_decoding() -> None:
    """The public id is decoded as before (%2F a '/' inside the id's folders, %25 a '%'); a folder
    encoded like a component is read as one, as the same folder written plainly is."""
    path = parse_path("/image/upload/w_%31/v1/a%2Fb%25%24.jpg")
    assert path.public_id == "a/b%$" and path.raw_source == "a%2Fb%25%24.jpg"
    assert [c.raw for c in path.components] == ["w_1"]
    assert parse_path("/image/upload/docs%24/road").public_id == "docs$/road"

"""Layers placed on faces and on the subject over HTTP: a face layer is rendered at once from the same cached
detection as the face crops of that original; a layer on the subject waits for the background-removal
mask (423, like e_background_removal)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyvips

from tests.app.helpers import ClientFactory, EllipseSegmenter, wait_for_200
from tests.app.test_app_faces import WOMAN, Counting
from tests.conftest import require_face_model

#: The road photo (the rocket) as the layer, as wide as each face, on each face.
DOG = "docs/rmv_bgd/dog_couch_orig.jpg"
FACE_LAYER = "l_docs:road/c_scale,fl_region_relative,w_1.0/fl_layer_apply,g_faces"


def test_a_face_layer_shares_the_detection_of_the_face_crops(make_client: ClientFactory) -> None:
    require_face_model()
    client = make_client()
    counting = Counting()
    client.app.state.service.models.faces.detector = lambda: counting  # type: ignore[attr-defined]
    plain = client.get(f"/demo/image/upload/{WOMAN.replace('.jpg', '.png')}")
    layered = client.get(f"/demo/image/upload/{FACE_LAYER}/{WOMAN.replace('.jpg', '.png')}")
    assert layered.status_code == 200, layered.headers.get("x-cld-error")
    thumb = client.get(f"/demo/image/upload/c_thumb,g_face,w_150,h_150/{WOMAN}")
    assert thumb.status_code == 200
    assert counting.calls == 1
    before = np.asarray(pyvips.Image.new_from_buffer(plain.content, "").numpy(), dtype=np.int16)
    after = np.asarray(pyvips.Image.new_from_buffer(layered.content, "").numpy(), dtype=np.int16)
    changed = np.nonzero(np.abs(after - before).max(axis=2) > 30)
    # Only around the face (about x 160-290, y 50-190 of 512): the layer is the face's width, on it.
    assert 160 < changed[1].min() and changed[1].max() < 290, (changed[1].min(), changed[1].max())
    assert 50 < changed[0].min() and changed[0].max() < 190, (changed[0].min(), changed[0].max())


def test_a_photo_without_a_face_gets_no_layer(client: Any) -> None:
    require_face_model()
    plain = client.get("/demo/image/upload/docs/road.png")
    layered = client.get(f"/demo/image/upload/{FACE_LAYER}/docs/road.png")
    assert layered.status_code == 200
    assert layered.content == plain.content


def test_a_layer_on_the_subject_waits_for_the_mask(client: Any, stub: EllipseSegmenter) -> None:
    url = "/demo/image/upload/l_docs:road/c_scale,w_40/fl_layer_apply,g_auto:subject/" + DOG
    first = client.get(url)
    assert first.status_code == 423 and first.headers["cache-control"] == "no-store"
    done = wait_for_200(client, url)
    assert done.status_code == 200
    assert stub.calls == 1


def test_refusals_are_400s_naming_the_parameter(client: Any) -> None:
    for transformation, named in [
        ("l_docs:road/fl_layer_apply,g_face:center", "g_face:center"),
        ("l_docs:road/c_scale,fl_region_relative,w_1.0/fl_layer_apply,g_north", "fl_region_relative"),
    ]:
        response = client.get(f"/demo/image/upload/{transformation}/{WOMAN}")
        assert response.status_code == 400
        assert named in response.headers["x-cld-error"]

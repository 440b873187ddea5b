"""Face and subject gravities over HTTP: a face URL is rendered at once from one cached detection per
original (the real detector); a subject crop waits for the background-removal mask (423, like
e_background_removal) and shares it."""

from __future__ import annotations

from typing import Any

import pyvips

from tests.app.helpers import ClientFactory, EllipseSegmenter, wait_for_200
from tests.conftest import require_face_model
from transform.faces import Face
from transform.faces.centerface import default_detector

WOMAN = "docs/rmv_bgd/woman_orig.jpg"


class Counting:
    """The real detector, counting its runs."""

    def __init__(self) -> None:
        self.detector = default_detector()
        self.detector_id = self.detector.detector_id
        self.calls = 0

    def detect(self, image: pyvips.Image) -> tuple[Face, ...]:
        self.calls += 1
        return self.detector.detect(image)


def test_face_urls_share_one_detection(make_client: ClientFactory) -> None:
    require_face_model()
    client = make_client()
    counting = Counting()
    client.app.state.service.models.faces.detector = lambda: counting  # type: ignore[attr-defined]
    sizes = {
        "c_thumb,g_face,w_150,h_150": (150, 150),
        "c_fill,g_faces,w_80,h_200": (80, 200),
        "c_crop,g_face,w_120,h_120": (120, 120),
        "c_thumb,g_face,w_150,h_150,z_0.5": (150, 150),
    }
    for transformation, size in sizes.items():
        response = client.get(f"/demo/image/upload/{transformation}/{WOMAN}")
        assert response.status_code == 200, response.headers.get("x-cld-error")  # no 423: detection is quick
        image = pyvips.Image.new_from_buffer(response.content, "")
        assert (image.width, image.height) == size
    assert counting.calls == 1


def test_a_photo_without_a_face_is_served_not_refused(client: Any) -> None:
    require_face_model()
    response = client.get("/demo/image/upload/c_thumb,g_face,w_100,h_100/docs/road.jpg")
    assert response.status_code == 200
    assert pyvips.Image.new_from_buffer(response.content, "").width == 100


def test_subject_crops_wait_for_the_mask_and_share_it(client: Any, stub: EllipseSegmenter) -> None:
    urls = [
        "/demo/image/upload/c_auto,w_120,h_120/docs/rmv_bgd/dog_couch_orig.jpg",
        "/demo/image/upload/c_fill,g_auto:subject,w_100,h_250/docs/rmv_bgd/dog_couch_orig.jpg",
        "/demo/image/upload/e_background_removal/docs/rmv_bgd/dog_couch_orig.png",
    ]
    first = client.get(urls[0])
    assert first.status_code == 423 and first.headers["cache-control"] == "no-store"
    done = wait_for_200(client, urls[0])
    assert pyvips.Image.new_from_buffer(done.content, "").width == 120
    for url in urls[1:]:
        assert wait_for_200(client, url).status_code == 200
    assert stub.calls == 1  # one mask of the original serves the crops and the cut-out

"""Cache keys. Everything that can change a derivative's bytes is in its key; how the inputs are stored
(files, objects) is the stores' business, so only their version tokens come in here."""

from __future__ import annotations

import hashlib

#: Bump when the rendering pipeline changes output for the same URL; old entries then simply miss.
#: (Changes to background removal need no bump here: the segmenter's id is in the keys that use it.)
PIPELINE_VERSION = "6"  # 6: animations kept (were their first frame); 5: CMYK, borders, q_ on PNG
#: Bump when derivatives' keys must change but masks and faces (whose keys carry PIPELINE_VERSION) are
#: still good. 1: a zero value is in the key (o_0 was left out: an o_0 URL's image could be stored under
#: the key of the same URL without it, and served for that URL).
DERIVATIVE_EPOCH = "1"
#: The canonical text standing for "no transformation" in a derivative's key.
AS_STORED = "(as stored)"

_SEP = "\x1f"  # unit separator: cannot occur in URL text, so the joined fields stay unambiguous


def _digest(*fields: str) -> str:
    return hashlib.sha256(_SEP.join(fields).encode("utf-8")).hexdigest()


def derivative_key(
    canonical: str,
    public_id: str,
    fingerprint: str,
    format_key: str,
    *,
    layers: str = "",
    model: str = "",
    asset: str = "",
    pipeline_version: str = PIPELINE_VERSION,
) -> str:
    """The cache key of one rendered derivative.

    ``fingerprint`` is the original's version token (``OriginalsStore.version``). ``layers`` carries
    the tokens of layer originals, so replacing an overlay file invalidates the derivatives that use it.
    ``model`` is the segmenter's id (model file, its pre- and post-processing version, recipe) for
    derivatives that remove a background, so a new model or a new mask pipeline makes new cut-outs.
    ``asset`` is what the asset's record says that the derivative depends on (the tags and context a
    condition reads), so retagging an asset makes new derivatives of such URLs; empty for all others.
    """
    # No transformation: the original as stored (``transform.render``), no longer a re-encoding of it,
    # under a key of its own so that re-encodings cached before are not served for it.
    version = f"{pipeline_version}.{DERIVATIVE_EPOCH}"
    fields = (canonical or AS_STORED, public_id, fingerprint, format_key, layers, model, version)
    # Only when there is one, so that every other derivative keeps the key it had.
    return "d:" + _digest("derivative", *fields, *([asset] if asset else []))


def mask_key(source_key: str, model_id: str, fine_edges: bool) -> str:
    return "m:" + _digest("mask", source_key, model_id, "fine" if fine_edges else "coarse", PIPELINE_VERSION)


def face_key(source_key: str, detector_id: str) -> str:
    """The faces found in one source image (an original, or the image at a step of a plan)."""
    return "f:" + _digest("faces", source_key, detector_id, PIPELINE_VERSION)

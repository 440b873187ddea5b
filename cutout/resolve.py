"""The resolver: a request (path, Accept, Client Hints) becomes a prepared plan and its cache key.

It checks the cloud name, the signature and strict mode, expands named transformations, settles w_auto
and dpr_auto from the Client Hints (transform/hints.py), negotiates the format, finds the original (or,
when it is missing, the default image ``d_`` names) and its layers and reads their versions. Finding and
hashing touch the originals store, so ``resolve`` is blocking (the server runs it in its thread pool);
``memoised`` answers repeated URLs without blocking.
"""

from __future__ import annotations

import json
import time
import unicodedata
from dataclasses import dataclass, replace
from typing import Any

import transform
from cache import Coordinator, Located, OriginalsStore, derivative_key
from cutout.masks import Segmentation
from cutout.memory import BoundedDict
from cutout.settings import Settings, SettingsError
from cutout.versions import Versions, asset_record_name
from grammar import DeliveryPath, Param, parse_path, parse_transformation, verify_delivery
from grammar.errors import NotFound, OriginError, Unauthorized
from grammar.image_formats import FORMAT_OF
from grammar.path import escape_public_id
from transform.expressions import AssetFacts
from transform.hints import NO_HINTS, Hints, compile_unhinted, resolve_hints, written_name

#: URL plus Accept header longer than this are not memoised (a client could fill the table with huge ones).
MAX_MEMO_TEXT = 2048
#: How long a memoised preparation is trusted. Its stamps catch changed files at once; the short life
#: catches a new original that would now resolve first (a .jpg added next to a .png put there by hand).
MEMO_SECONDS = 2.0
LAYER_MISSING = "Unknown or invalid referenced image {} of type upload"


def locate_either_form(
    originals: OriginalsStore, public_id: str, *, what: str = "Resource not found - {}"
) -> Located:
    """The original ``public_id`` names, else the one its other Unicode normal form names: ``café`` is
    written composed (NFC, what keyboards and most web pages write) or decomposed (NFD: ``e`` then a
    combining accent, what macOS file names and pastes from them often are), two strings that look alike
    and mean the same (Unicode's canonical equivalence). The id as written wins when both are stored.
    Safe: NFC and NFD map no character to ``/`` or ``.`` (only the compatibility forms, NFKC, turn
    ``／`` into ``/``), and the store checks the other form as it checks any id. A 404 for a decomposed
    id says so, with its code points, as the two look identical on screen."""
    try:
        return originals.locate(public_id, what=what)
    except NotFound as missing:
        # The other form is looked up in here, not after the block with the error kept in a local: this
        # frame is in the error's traceback, and a local naming it made a cycle that kept a render's
        # images (a layer that is missing) until the garbage collector's next full pass.
        for form in ("NFC", "NFD"):
            other = unicodedata.normalize(form, public_id)
            if other != public_id:
                try:
                    return originals.locate(other, what=what)
                except NotFound:
                    continue
        if unicodedata.is_normalized("NFC", public_id):
            raise
        written = public_id.encode("ascii", "backslashreplace").decode("ascii")
        raise NotFound(f"{missing.public} (written in decomposed Unicode, NFD: {written}; no original has "
                       "this id in either form)") from None  # fmt: skip


@dataclass(frozen=True)
class Prepared:
    """Everything needed to find or make one derivative."""

    key: str
    plan: transform.Plan
    source: Located
    source_key: str
    choice: transform.FormatChoice
    public_id: str
    versioned: bool
    #: The original and its layers as located, before their versions were read: while they are current
    #: (``OriginalsStore.current``), the files are the ones the key names, and a result may be stored.
    files: tuple[Located, ...]
    #: The delivery path without cloud name or signature, and the Accept header: what a ``cutout
    #: worker`` prepares again to make it (CUTOUT_BACKGROUND_REMOVAL=queue).
    request: tuple[str, str | None] = ("", None)
    #: The default image (d_) delivered in place of ``public_id``, which does not exist; then ``source``
    #: and ``key`` are the default's own, and the answer says so (cutout/responses.py).
    substitute: str | None = None
    #: fl_attachment: the download's file name without extension; None when not an attachment.
    attachment: str | None = None
    #: The X-Cld-Error of a success that is not quite what was asked: why ``substitute`` stands in.
    warning: str | None = None
    #: The asset's tags, context and custom coordinates, when the plan reads them (``Plan.needs_asset``).
    asset: AssetFacts | None = None
    #: The render runs the segmentation model: made by a claimed, queued job (423 until done), as
    #: ``Scheduler.make`` does. The plan needs the model and the original is not delivered animated
    #: (where g_auto is the centre of every frame and a model step is a 400: rendered at once).
    segmenting: bool = False
    #: The Client Hints headers w_auto and dpr_auto were settled from (the response's Vary names them).
    hinted: tuple[str, ...] = ()
    #: The transformation strict mode compares when it is not ``plan.canonical``: a URL with w_auto or
    #: dpr_auto, whose plan names the size the hints chose (transform/hints.py ``written_name``).
    written: str | None = None

    @property
    def allow_name(self) -> str:
        """What ``cutout eager`` allows in strict mode: the whole transformation (d_ and fl_attachment
        included, as Cloudinary matches an eager transformation's whole string) for this public id."""
        return f"{self.written or self.plan.canonical}|{self.public_id}"


@dataclass(frozen=True)
class Parsed:
    """A delivery path parsed and its transformation compiled ahead of ``Resolver.prepare``: a fetch URL's,
    checked before its image is fetched (``Resolver.check_fetch``), then delivered without parsing again.
    ``missing``: why the original is known not to exist (its download failed); the default image (d_)
    stands in at once, or this error is the answer."""

    path: DeliveryPath
    plan: transform.Plan  # without Client Hints (transform/hints.py compile_unhinted)
    missing: OriginError | None = None
    #: The file name (without extension) of a download (fl_attachment) that gives none, when it is not
    #: the public id's: a fetched image's, from its URL (cutout/remote.py ``download_name``).
    name: str | None = None

    def of(self, public_id: str, missing: OriginError | None = None, *, name: str | None = None) -> Parsed:
        """The same request for the original ``public_id`` (the fetched image's, once it is known)."""
        path = replace(self.path, public_id=public_id, raw_source=escape_public_id(public_id))
        return replace(self, path=path, missing=missing, name=name)

    def named(self, prepared: Prepared) -> Prepared:
        """``prepared`` (this request's, perhaps memoised for another URL of the same original) with the
        download's name this request gives it."""
        if self.name is None or prepared.plan.attachment != "":
            return prepared
        return replace(prepared, attachment=self.name)


def check_transformations(settings: Settings) -> tuple[str, ...]:
    """Compile named and allowed transformations at start-up; returns the allowed canonical forms."""
    for name, text in settings.named.items():
        try:
            # Its variables may be set by the URLs that use it ($width_150/t_passport).
            transform.compile_plan(parse_transformation(text), named=settings.named, unbound=True)
        except OriginError as exc:
            raise SettingsError(f"CUTOUT_NAMED_TRANSFORMATIONS: t_{name} = {text!r}: {exc.public}") from None
    allowed = []
    for text in settings.allowed_transformations:
        try:
            allowed.append(compile_unhinted(parse_transformation(text), named=settings.named)[1])
        except OriginError as exc:
            raise SettingsError(f"CUTOUT_ALLOWED_TRANSFORMATIONS: {text!r}: {exc.public}") from None
    return tuple(allowed)


class Resolver:
    def __init__(
        self, settings: Settings, originals: OriginalsStore, coordinator: Coordinator, models: Segmentation
    ) -> None:
        self.settings = settings
        self.originals = originals
        self.coordinator = coordinator
        self.models = models
        self.allowed = frozenset(check_transformations(settings))
        self.versions = Versions(originals)
        self.limits = transform.Limits(max_pixels=settings.max_pixels)  # the renders' (cutout/schedule.py)
        # (prepared, expiry); cachetools' TTLCache would do, at 4x the cost of a look-up on the hot path.
        self._memo: BoundedDict[tuple[str, str | None, Hints], tuple[Prepared, float]] = BoundedDict(4096)

    def memoised(self, raw_path: str, accept: str | None, hints: Hints = NO_HINTS) -> Prepared | None:
        """The preparation of a URL resolved in the last ``MEMO_SECONDS`` whose files are unchanged, else
        None. Never blocks for long: a dict lookup and one ``stat`` per file (of inodes the kernel
        holds; that check is what lets a replaced original be served at once)."""
        known = self._memo.get((raw_path, accept, hints))
        if known is None or known[1] <= time.monotonic() or not self.originals.current(known[0].files):
            return None
        return known[0]

    def resolve(
        self,
        raw_path: str,
        accept: str | None,
        *,
        signed_ok: bool = False,
        parsed: Parsed | None = None,
        hints: Hints = NO_HINTS,
    ) -> Prepared:
        """``prepare`` for a raw URL path, memoised (blocking: see the module docstring). ``parsed``: the
        path already parsed and compiled (it must be ``raw_path``'s). ``hints``: the request's Client
        Hints; the caller passes NO_HINTS for a URL that cannot use them (cutout/hinting.py), so that the
        memo is not split by hints nothing reads.

        Only successful preparations are remembered, and checks depend only on the URL and the settings,
        so reuse is safe (``signed_ok`` comes with a path that keeps its own ``s--SIG--``, so a memo made
        with it is reached only by the same signature).
        """
        known = self.memoised(raw_path, accept, hints)
        if known is not None:
            return known
        if parsed is None:
            prepared = self.prepare(parse_path(raw_path), accept=accept, signed_ok=signed_ok, hints=hints)
        else:
            prepared = self.prepare(parsed.path, accept=accept, signed_ok=signed_ok, plan=parsed.plan,
                                    missing=parsed.missing, hints=hints)  # fmt: skip
        # A default delivered for a missing original is not remembered: the memo's check is that its files
        # are unchanged, and an upload of the missing original changes none of them. Looked up every time,
        # the real original is served from the first request after it arrives.
        # Nor one that read the asset's record (tags, context, custom coordinates): an Admin API update
        # changes it, not the files the memo checks, and the next request must see the update.
        if (prepared.substitute is None and prepared.asset is None
                and len(raw_path) + len(accept or "") <= MAX_MEMO_TEXT):  # fmt: skip
            self._memo[(raw_path, accept, hints)] = (prepared, time.monotonic() + MEMO_SECONDS)
        return prepared

    def prepare(
        self,
        path: DeliveryPath,
        *,
        accept: str | None,
        signed_ok: bool = False,
        plan: transform.Plan | None = None,
        missing: OriginError | None = None,
        hints: Hints = NO_HINTS,
    ) -> Prepared:
        """Blocking. ``signed_ok``: the caller vouches for the URL (``cutout eager`` into the cache);
        ``plan``: ``path``'s, already compiled (without hints); ``missing``: see ``Parsed``; ``hints``: the
        request's Client Hints, which settle w_auto and dpr_auto (none: their fallbacks)."""
        self._check_cloud(path)
        signed = signed_ok or self._check_signature(path)
        # Settled before compiling, as f_auto is before rendering: the plan, and so the key, name the size
        # these hints chose. The signature above and strict mode below judge the URL as written.
        auto = resolve_hints(path.components, hints)
        written = None
        if auto.written:
            unhinted, written = self._unhinted(path)
            plan = unhinted if hints == NO_HINTS else transform.compile_plan(auto.components,
                                                                             named=self.settings.named)
        elif plan is None:
            plan = transform.compile_plan(path.components, named=self.settings.named)
        source, substitute, warning = self._locate(path.public_id, plan.default_image, missing)
        if path.version is not None and substitute is None and self.versions.behind(source, path.version):
            # The URL names the version another replica uploaded a moment ago, this one's lookup the bytes
            # before it: look again, so the new version's URL never shows (nor lets a CDN keep) the old.
            self.originals.forget(source.public_id)
            source, substitute, warning = self._locate(path.public_id, plan.default_image, missing)
        layer_ids = sorted(plan.layer_ids)
        layers = [locate_either_form(self.originals, lid, what=LAYER_MISSING) for lid in layer_ids]
        fingerprint = self.originals.version(source)  # after locating: see Prepared.files
        if self.settings.strict and not signed and path.components:
            self._check_strict(path, written or plan.canonical)
        prints = ",".join(f"{i}={self.originals.version(f)}" for i, f in zip(layer_ids, layers, strict=True))
        # The original's format by its extension (it names the delivered format when the URL does not):
        # fl_animated with one that cannot animate is a 400 before the cache is asked, whose entry is
        # shared with the URL without the flag.
        original = FORMAT_OF.get(source.path.suffix.lower().removeprefix("."))
        choice = transform.negotiate_format(plan, extension=path.extension, accept=accept, original=original)
        segmenting = plan.needs_segmentation and not self._animated(plan, source, choice)
        asset = self._asset(substitute or source.public_id) if plan.needs_asset else None
        # Keyed by the source used: a default delivered for a missing original is the default's own
        # derivative (one entry for every missing id), and the original uploaded later has a key of its own.
        key = derivative_key(plan.derivative, substitute or source.public_id, fingerprint, choice.key,
                             layers=prints, model=self.models.model_for(plan, segmenting=segmenting),
                             asset=asset.token if asset is not None else "")  # fmt: skip
        # A worker prepares the job again without the request's headers: it gets the transformation with
        # the hints' values written in (w_400,dpr_2.0), which compiles to this plan and key.
        text = auto.transformation if auto.written else path.raw_transformation
        request = "/image/upload/" + (f"{text}/" if text else "")
        if path.version is not None:  # kept: without it a folder named like a component (w_100/x) is one
            request += f"v{path.version}/"
        # Immutable only when the URL names the version the original has now (cutout/versions.py); never a
        # default standing in for it: the URL's image is still to come.
        # Nor when a condition reads the asset's tags or context: they change without a new version.
        versioned = (path.version is not None and substitute is None and asset is None
                     and self.versions.is_current(source, path.version))  # fmt: skip
        attachment = plan.attachment
        if attachment == "":  # no name given: the public id's last part (a fetch URL's: Parsed.named)
            attachment = path.public_id.rpartition("/")[2]
        return Prepared(key, plan, source, fingerprint, choice, path.public_id, versioned,
                        (source, *layers), (request + path.raw_source, accept), substitute, attachment,
                        warning, asset, segmenting, auto.vary, written)  # fmt: skip

    def _animated(self, plan: transform.Plan, source: Located, choice: transform.FormatChoice) -> bool:
        """Whether the render delivers ``source`` animated (blocking: a header read; only GIF and WebP
        originals, by their extension, are read). An original whose header cannot tell (damaged, too
        large, a page it lacks) is not: its render says what is wrong, as for any URL."""
        if source.path.suffix.lower() not in (".gif", ".webp"):
            return False
        try:
            return transform.delivers_animation(plan, self.originals.local(source), choice, self.limits)
        except OriginError:
            return False

    def _asset(self, public_id: str) -> AssetFacts:
        """The tags, context and custom coordinates the Upload API keeps in the asset's record; none for
        an original put in the folder by hand (no record), as the Admin API describes it."""
        try:
            data = self.originals.get_record(asset_record_name(public_id))
        except ValueError:  # not a name records take: no record
            data = None
        record = json.loads(data) if data is not None else {}
        if not isinstance(record, dict) or record.get("deleted"):
            record = {}
        tags = tuple(str(tag) for tag in record.get("tags") or ())
        context = tuple(sorted((str(k), str(v)) for k, v in dict(record.get("context") or {}).items()))
        return AssetFacts(tags, context, _custom(record))

    def _locate(
        self, public_id: str, default: str | None, missing: OriginError | None
    ) -> tuple[Located, str | None, str | None]:
        """The original, else the default image d_ names (its id as the substitute, and the warning that
        says so); a default that is missing too leaves the original's error (404, or the failed download
        of a fetch URL: ``missing``). Only "not found" falls back: a storage that does not answer (503) or
        an original cutout cannot read (400) is not replaced by a placeholder."""
        gone = missing
        try:
            if gone is None:
                try:
                    return locate_either_form(self.originals, public_id), None, None
                except NotFound as not_found:
                    gone = not_found
            if default is None or default == public_id:
                raise gone
            try:
                located = locate_either_form(self.originals, default)
            except NotFound:
                raise gone from None
            return located, default, f"{gone.public} (default image {default} delivered)"
        finally:
            # Raised, the error's traceback holds this frame: locals naming it would make a cycle.
            del gone, missing

    def check_fetch(self, prefix: str, components: str, *, signed: bool) -> Parsed:
        """What can be told of a fetch URL before its image is fetched, so that a URL refused anyway
        fetches and stores nothing: its cloud name, its transformation (400s), and in strict mode an
        unsigned one's right to render (401), by the rule its upload URL meets after (``_check_strict``;
        the allow-list of ``cutout eager`` names originals, which a fetched image is not yet). Returns the
        upload path the fetched image will be delivered by, compiled (``Parsed.of`` names the image)."""
        slash = "/" if components else ""
        path = parse_path(f"{prefix}/image/upload/{components}{slash}v1/fetched/image")
        self._check_cloud(path)
        plan, written = self._unhinted(path)
        if self.settings.strict and not signed and path.components and not self._unsigned_ok(path, written):
            raise Unauthorized(f"Transformation {path.raw_transformation} is not allowed on an unsigned "
                               "fetch URL in strict mode: sign it")  # fmt: skip
        return Parsed(path, plan)

    def _unhinted(self, path: DeliveryPath) -> tuple[transform.Plan, str]:
        """``path``'s plan without Client Hints and the name strict mode compares (as
        transform/hints.py ``compile_unhinted``, through ``transform.compile_plan``)."""
        resolved = resolve_hints(path.components, NO_HINTS)
        plan = transform.compile_plan(resolved.components, named=self.settings.named)
        return plan, written_name(plan.canonical, resolved)

    def _check_cloud(self, path: DeliveryPath) -> None:
        wanted = self.settings.cloud_name
        if wanted and path.cloud_name is not None and path.cloud_name != wanted:
            raise NotFound(f"Resource not found - unknown cloud name {path.cloud_name}")

    def _check_signature(self, path: DeliveryPath) -> bool:
        if path.signature is None:
            return False
        if self.settings.api_secret is None:
            raise Unauthorized(f"Signature s--{path.signature}-- cannot be checked: no API secret configured")
        if not verify_delivery(path, self.settings.api_secret):
            raise Unauthorized(f"Invalid signature s--{path.signature}-- for {path.raw_transformation}")
        return True

    def _unsigned_ok(self, path: DeliveryPath, canonical: str) -> bool:
        # Named transformations, with the delivery choices Cloudinary's rollout guide chains after them
        # (t_<name>/f_auto/q_auto): a format or an automatic quality changes what the image shows no more
        # than the extension does, which needs no signature either. Anything else is compared whole, as
        # Cloudinary compares an allowed or eager transformation's string: d_ and fl_attachment too.
        named_only = all(_free(p) for c in path.components for p in c.params)
        return named_only or canonical in self.allowed

    def _check_strict(self, path: DeliveryPath, canonical: str) -> None:
        """``canonical``: the transformation as written (``Prepared.allow_name``'s first part)."""
        if self._unsigned_ok(path, canonical):
            return
        if self.coordinator.allowed(f"{canonical}|{path.public_id}"):
            return
        raise Unauthorized(f"Transformation {path.raw_transformation} is not allowed")


def _free(param: Param) -> bool:
    """A parameter strict mode lets through unsigned: a named transformation, or a delivery choice that
    renders nothing new (the format, an automatic quality). Not d_ nor fl_attachment, though they change
    no byte either: Cloudinary's strict mode lets through only transformations it was told of (eager,
    allowed, named) or signed, whole, and a default image delivers another original than the URL names."""
    return param.key in ("t", "f") or (param.key == "q" and param.value.startswith("auto"))


def _custom(record: dict[str, Any]) -> tuple[tuple[float, float, float, float], ...]:
    """The record's custom coordinates (pixels of the original it describes) as fractions of it: what
    g_custom crops on, whatever the steps before it made of the image's size."""
    width, height = record.get("width"), record.get("height")
    regions = record.get("custom_coordinates") or ()
    if not isinstance(width, int) or not isinstance(height, int) or width < 1 or height < 1:
        return ()
    return tuple((x / width, y / height, w / width, h / height) for x, y, w, h in regions)

"""The typed result of parsing: plain frozen dataclasses, raw text kept for keys and signatures."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """One ``key_value`` pair. ``value`` is the raw text after the first ``_``, not percent-decoded.

    ``e_dropshadow:azimuth_220;elevation_60`` -> ``Param("e", "dropshadow:azimuth_220;elevation_60", 1)``;
    ``column`` is 1-based within the whole transformation text.
    """

    key: str
    value: str
    column: int


@dataclass(frozen=True)
class Component:
    """One slash-separated step of a chain; ``raw`` is its text exactly as written."""

    params: tuple[Param, ...]
    raw: str


@dataclass(frozen=True)
class DeliveryPath:
    """A parsed delivery path ``[/<cloud>]/image/upload[/s--SIG--][/component]*[/v<n>]/<public_id>[.<ext>]``.

    ``public_id`` is percent-decoded with ``/`` folders; ``extension`` is lower-case and set only for a
    known image format. ``raw_transformation`` and ``raw_source`` are the URL's own text (still
    percent-encoded), which is what delivery signatures hash.
    """

    cloud_name: str | None
    resource_type: str
    delivery_type: str
    signature: str | None
    components: tuple[Component, ...]
    version: int | None
    public_id: str
    extension: str | None
    raw_transformation: str
    raw_source: str

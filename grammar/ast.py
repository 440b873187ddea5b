"""The typed result of parsing: plain frozen dataclasses, raw text kept for keys and signatures."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote


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
    percent-encoded), which is what delivery signatures hash. ``transformation`` is the text the
    ``components`` were parsed from: ``raw_transformation`` with its percent-encoded structural characters
    decoded (``%24w_300`` is ``$w_300``; grammar/path.py ``plain_component`` says which), which a signature
    may cover too.
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
    transformation: str


# ---- expressions: the values of if_ and $name_, and numbers written as arithmetic ---------------------
# Rendered back (str) as the URL writes them; there are no parentheses, so a tree parsed from text renders
# to a text that parses to the same tree.


@dataclass(frozen=True)
class Number:
    """``400``, ``-0.5`` or a ratio ``3:4``; ``text`` is its form as written (``1.0`` is not ``1``)."""

    value: float
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Text:
    """``!sale!``: ``raw`` is what is between the ``!``, as written (percent-encoded)."""

    raw: str

    @property
    def value(self) -> str:
        return unquote(self.raw)

    def __str__(self) -> str:
        return f"!{self.raw}!"


@dataclass(frozen=True)
class Name:
    """A predefined value (``w``, ``iw``, ``fc``, ``tags``...); which exist is transform's business."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Variable:
    """A user variable, ``$name`` (the name keeps its ``$``)."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Lookup:
    """``ctx:!key!`` (a context value of the asset) or ``md:!key!`` (structured metadata)."""

    source: str
    key: Text

    def __str__(self) -> str:
        return f"{self.source}:{self.key}"


@dataclass(frozen=True)
class Operation:
    """``iw_div_2`` -> ``Operation(Name("iw"), "div", Number(2.0, "2"))``."""

    left: Expression
    operator: str  # add sub mul div mod pow
    right: Expression

    def __str__(self) -> str:
        return f"{self.left}_{self.operator}_{self.right}"


@dataclass(frozen=True)
class Conversion:
    """``ctx:!x!_to_f``: text to a number (``f``) or a number to an integer (``i``)."""

    operand: Expression
    to: str

    def __str__(self) -> str:
        return f"{self.operand}_to_{self.to}"


Expression = Number | Text | Name | Variable | Lookup | Operation | Conversion


@dataclass(frozen=True)
class Comparison:
    left: Expression
    operator: str  # eq ne lt gt lte gte in nin
    right: Expression

    def __str__(self) -> str:
        return f"{self.left}_{self.operator}_{self.right}"


@dataclass(frozen=True)
class Condition:
    """``w_gt_5_and_h_gt_5_or_fc_gt_0``: alternatives joined by ``or``, each comparisons joined by ``and``
    (``and`` binds tighter)."""

    alternatives: tuple[tuple[Comparison, ...], ...]

    def comparisons(self) -> tuple[Comparison, ...]:
        return tuple(c for group in self.alternatives for c in group)

    def __str__(self) -> str:
        return "_or_".join("_and_".join(map(str, group)) for group in self.alternatives)

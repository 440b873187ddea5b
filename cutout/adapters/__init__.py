"""Drop-in faces for the hosted background-removal APIs (issue 13): one module per vendor, each renaming
the vendor's request onto cutout's HTTP API (``cutout.api``) and its answer back into the vendor's shape,
so a client moves to cutout by changing its base URL. ``base`` holds what they share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from cutout.adapters import api4ai, azure, base, perfectcorp, rembg, removebg, runware
from cutout.api import Api
from cutout.api.errors import ApiError
from cutout.api.front import Face

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _wrong_methods(routes: Sequence[BaseRoute], error: base.ErrorShape) -> list[BaseRoute]:
    """A vendor path asked with a method it does not take: the vendor's error shape naming the ones it
    does (without these the request would fall through to the delivery URLs' catch-all)."""
    allowed: dict[str, set[str]] = {}
    for route in routes:
        if isinstance(route, Route) and route.methods:
            allowed.setdefault(route.path, set()).update(route.methods)

    def refusal(takes: str) -> base.Handler:
        async def refuse(request: Request, api: Api) -> Any:
            raise ApiError("method_not_allowed", f"{request.url.path} takes {takes}, not {request.method}",
                           headers={"Allow": takes})  # fmt: skip

        return refuse

    return [
        Route(path, base.endpoint(refusal(", ".join(sorted(takes))), None, error),
              methods=[m for m in _METHODS if m not in takes])  # fmt: skip
        for path, takes in allowed.items()
    ]


_VENDORS = (removebg, rembg, api4ai, runware, azure, perfectcorp)
#: Mounted before the native API's routes: its catch-all ``/v1/{rest}`` would take API4AI's paths.
ROUTES: tuple[BaseRoute, ...] = (
    *(route for vendor in _VENDORS for route in vendor.ROUTES),
    *(route for vendor in _VENDORS for route in _wrong_methods(vendor.ROUTES, vendor.error)),
)

#: The POST routes whose repeats the ASGI front answers (``cutout.api.front``; ``create_app`` gives them
#: to ``FastHits``): each built from its route's own functions, so the answer is the route's.
FACES: tuple[Face, ...] = (azure.FACE, rembg.FACE, removebg.FACE, api4ai.FACE, runware.FACE)

__all__ = ["FACES", "ROUTES"]

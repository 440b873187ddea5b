"""Drop-in faces for the hosted background-removal APIs (issue 13): one module per vendor, each renaming
the vendor's request onto cutout's HTTP API (``cutout.api``) and its answer back into the vendor's shape,
so a client moves to cutout by changing its base URL. ``base`` holds what they share."""

from __future__ import annotations

from starlette.routing import BaseRoute

from cutout.adapters import api4ai, azure, perfectcorp, rembg, removebg, runware
from cutout.api.front import Face

#: Mounted before the native API's routes: its catch-all ``/v1/{rest}`` would take API4AI's paths.
ROUTES: tuple[BaseRoute, ...] = (
    *removebg.ROUTES,
    *rembg.ROUTES,
    *api4ai.ROUTES,
    *runware.ROUTES,
    *azure.ROUTES,
    *perfectcorp.ROUTES,
)

#: The POST routes whose repeats the ASGI front answers (``cutout.api.front``; ``create_app`` gives them
#: to ``FastHits``): each built from its route's own functions, so the answer is the route's.
FACES: tuple[Face, ...] = (azure.FACE, rembg.FACE, removebg.FACE, api4ai.FACE, runware.FACE)

__all__ = ["FACES", "ROUTES"]

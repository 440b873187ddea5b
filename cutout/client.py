"""Whether a request's client is still there, watched only while work is done for it.

The ASGI server reports a closed connection as an ``http.disconnect`` message from ``receive``; nothing
else tells the app (Starlette does not cancel a handler whose client left). Delivery URLs are GET or HEAD
with no body, so listening for that message reads nothing the handler needs. Listening starts only when
a render does (``watching``): a cache hit costs no task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.types import Receive

log = logging.getLogger("cutout.client")


class Client:
    def __init__(self, receive: Receive) -> None:
        self.receive = receive

    async def left(self) -> None:
        """Returns once the client has closed the connection."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                return


@asynccontextmanager
async def watching(client: Client | None, on_leaving: Callable[[], object]) -> AsyncIterator[None]:
    """Calls ``on_leaving`` if ``client`` leaves before the block ends (never when ``client`` is None:
    work done for no one in particular, or outside HTTP)."""
    if client is None:
        yield
        return

    async def listen() -> None:
        try:
            await client.left()
        except Exception:  # a server that cannot tell: the work goes on as if the client stayed
            log.debug("listening for the client's leaving failed", exc_info=True)
            return
        on_leaving()

    # A bare task, not a task group: a group would wrap the block's own errors (an OriginError the app
    # answers) in an ExceptionGroup.
    listener = asyncio.get_running_loop().create_task(listen())
    try:
        yield
    finally:
        listener.cancel()

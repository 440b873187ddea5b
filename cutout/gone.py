"""A client that hung up before its request was read (starlette's ``ClientDisconnect``, from reading the
body): not a server bug, so no traceback and no 500. Every face's catch-all answers it here, before its
"unexpected error" branch."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger("cutout.gone")

#: nginx's "client closed request". Nobody receives it (the server drops what is sent to a closed
#: connection); the API's request counter shows it, apart from the server's own failures.
CLIENT_CLOSED = 499


def client_gone(request: Request) -> Response:
    log.info("client went away during %s %s", request.method, request.url.path)
    return Response(status_code=CLIENT_CLOSED)

"""Who may open the console: HTTP Basic with ``CUTOUT_API_KEY`` and ``CUTOUT_API_SECRET`` (the same pair
the Upload and Admin API take), or anyone on loopback when no secret is set (a laptop running
``make run``). The secret never travels to the page: uploads are signed by ``/console/sign`` for the
user who passed this check."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress

from starlette.requests import Request

from cutout.settings import Settings

REALM = 'Basic realm="cutout console", charset="UTF-8"'


class Refused(Exception):
    """Why a request may not see the console: ``status`` 401 (ask for credentials) or 403."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


#: Headers a reverse proxy adds: behind one on the same machine every client comes from loopback, so a
#: request carrying them is not taken for a local one (set a secret to use the console through a proxy).
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def loopback(request: Request) -> bool:
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # no address (a Unix socket behind a proxy): not known to be local
        return False


def basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def check(request: Request, settings: Settings) -> None:
    """Return when the request may use the console, else raise ``Refused``."""
    secret = settings.api_secret
    if secret is None:
        if loopback(request):
            return
        raise Refused(403, "The console is open only on loopback while no CUTOUT_API_SECRET is set; "
                           "set CUTOUT_API_KEY and CUTOUT_API_SECRET to sign in from elsewhere")
    if settings.api_key is None:
        raise Refused(403, "CUTOUT_API_SECRET is set but CUTOUT_API_KEY is not: the console signs in "
                           "with both")
    given = basic_credentials(request)
    if given is None:
        raise Refused(401, "Sign in with the API key as user name and the API secret as password")
    # Both compared, each in constant time, so neither the time nor which one failed leaks.
    key_ok = hmac.compare_digest(given[0].encode(), settings.api_key.encode())
    secret_ok = hmac.compare_digest(given[1].encode(), secret.encode())
    if not (key_ok and secret_ok):
        raise Refused(401, "Wrong API key or secret")

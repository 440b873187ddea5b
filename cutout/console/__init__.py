"""The console (issue 14): one page served by cutout itself to browse and upload originals, build a
transformation with live validation, compare before and after, and copy the URL and SDK code.

A thin face like ``cutout/api``: the page uses the Upload/Admin API and the delivery URLs, and the server
adds only what a browser cannot do alone (``routes``): validation through the real parser and resolver
(``check``), upload signatures without handing out the secret (the Upload API's own ``sign``), SDK
snippets (``snippets``) and the sign-in (``access``). The page is plain HTML, CSS and JavaScript modules
in ``static/``.
"""

from cutout.console.routes import ROUTES

__all__ = ["ROUTES"]

"""Form bodies read with starlette's parsers, except that a multipart body must reach its closing
boundary (``--<boundary>--``).

python-multipart's ``finalize()`` does not check the state the parser ended in (a TODO in its source),
so a body cut short parsed as complete: one that stopped right after a file's bytes kept the file, one
that stopped inside a later part dropped that part (an upload stored without its ``tags``). A client
that died, or a proxy that cut the body, must get a 400 and store nothing.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

MISSING_END = "the body ends before the closing boundary (--<boundary>--)"


class _CompleteMultiPartParser(MultiPartParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ended = False

    def on_end(self) -> None:  # python-multipart calls it at the closing boundary, and only there
        self.ended = True

    async def parse(self) -> FormData:
        form = await super().parse()
        if not self.ended:
            # Every file part's spool, the unfinished one's too (it is not in the form): what starlette's
            # parser closes when the body itself fails.
            for file in self._files_to_close_on_error:
                file.close()
            raise MultiPartException(MISSING_END)
        return form


async def read_form(request: Request, *, max_files: int, max_fields: int, max_part_size: int) -> FormData:
    """``request.form(...)``, refusing a multipart body without its end with MultiPartException (the
    exception starlette's parser raises for other malformed bodies, which callers already catch)."""
    media, _ = parse_options_header(request.headers.get("content-type"))
    if media != b"multipart/form-data":
        return await request.form(max_files=max_files, max_fields=max_fields, max_part_size=max_part_size)
    async with aclosing(request.stream()) as stream:
        parser = _CompleteMultiPartParser(request.headers, stream, max_files=max_files, max_fields=max_fields,
                                          max_part_size=max_part_size)  # fmt: skip
        return await parser.parse()

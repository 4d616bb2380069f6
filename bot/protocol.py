"""Requests that are not HTTP changebot can read, answered in JSON like every other refusal.

aiohttp answers a request it cannot parse (a header or URL longer than it reads, a
Content-Length that is not a number or comes twice, a method that is not one) before any
handler or middleware sees it: in plain text, with a traceback in the log at ERROR. A body
whose Content-Encoding lies (says gzip, is not) fails while it is read, and when no handler
read it (a request refused before its body was looked at), aiohttp logs that as an
"Unhandled exception" too. Neither is changebot's failure, and a pipeline's log should show
a sentence, not a page of Python: `Runner` serves the app with connections that answer such
requests with a JSON error, as the API answers everything else (bot/api/errors.py), and log
one line. The connection closes after the answer: what follows a request that could not be
parsed cannot be told apart from it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestPayloadError

from bot.api.errors import ApiError
from bot.api.requests import payload_problem

log = logging.getLogger(__name__)

#: aiohttp's limits on a request line and on a header (its defaults, which changebot keeps).
LINE_LIMIT = 8190


class Runner(web.AppRunner):
    """aiohttp's AppRunner, its connections answering unreadable requests in JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server  # the same server; its connections are ours
        return server


class _Server(web.Server):
    __slots__ = ()

    def __call__(self) -> web.RequestHandler:
        connection = super().__call__()
        connection.__class__ = ReadableErrors
        return connection


class ReadableErrors(web.RequestHandler):
    """A connection that refuses a request it cannot parse with a JSON error (4xx)."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        refusal = unreadable(exc)
        log.info("refused a request: %s", refusal.message)
        if request.writer.output_size > 0:  # an answer has begun: the connection is broken
            raise ConnectionError("an answer was under way when the request broke")
        response = refusal.response()
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        error = kwargs.get("exc_info")
        if isinstance(error, RequestPayloadError):
            # A body nobody read could not be decoded while aiohttp drained it: the request
            # was answered already (it was refused before its body mattered).
            problem = payload_problem(error)
            log.info("closed a connection whose request body could not be read (%s)", problem)
            return
        super().log_exception(*args, **kwargs)


def unreadable(error: HttpProcessingError) -> ApiError:
    """What to answer a request aiohttp could not parse: 400, saying what was wrong."""
    if isinstance(error, LineTooLong):
        return ApiError(
            400,
            "too_large",
            f"The request's URL or one of its headers is longer than {LINE_LIMIT:,} bytes.",
        )
    return ApiError(400, "malformed", f"The request is not HTTP changebot can read: {_why(error)}.")


def _why(error: HttpProcessingError) -> str:
    """aiohttp's reason in a few words, without the bytes it quotes (which may hold a
    credential the client sent)."""
    first = (error.message or "").strip().splitlines()[0] if error.message else ""
    reason = re.split(r":\s*(?:b'|b\"|bytearray\(|$)", first, maxsplit=1)[0].strip(" :.")
    return reason[:120] or "it could not be parsed"

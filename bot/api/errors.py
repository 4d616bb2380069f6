"""The JSON API's errors: every refusal is a 4xx (or a 503) with a JSON body that says what
was wrong in a sentence a pipeline log can show, and changes nothing."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from workflows.errors import (
    ChangeError,
    Conflict,
    NotAllowed,
    NotFound,
    StaleChange,
    TransitionNotAllowed,
    ValidationFailed,
)


class ApiError(Exception):
    """A request the API refuses: its status, a short code and a sentence."""

    def __init__(self, http_status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = http_status
        self.error = error
        self.message = message
        self.extra = extra

    def response(self) -> web.Response:
        headers = {"WWW-Authenticate": 'Bearer realm="changebot"'} if self.status == 401 else {}
        body = {"error": self.error, "message": self.message, **self.extra}
        return web.json_response(body, status=self.status, headers=headers, dumps=_dumps)


def _dumps(value: Any) -> str:
    """Readable JSON; escaped if it holds what UTF-8 cannot (a lone surrogate someone sent,
    quoted back): an error must always be answerable."""
    text = json.dumps(value, ensure_ascii=False)
    return text if encodable(text) else json.dumps(value)


def encodable(text: str) -> bool:
    """Whether UTF-8 can hold `text`: JSON may escape a lone surrogate, no text holds one."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def from_change_error(error: ChangeError) -> ApiError:
    """The process's refusals, as HTTP says them."""
    if isinstance(error, ValidationFailed):
        return ApiError(400, "invalid", error.message, field=error.field)
    if isinstance(error, NotFound):
        return ApiError(404, "not_found", error.message)
    if isinstance(error, NotAllowed):
        return ApiError(403, "forbidden", error.message)
    if isinstance(error, Conflict | StaleChange | TransitionNotAllowed):
        return ApiError(409, "conflict", error.message)
    return ApiError(422, "refused", error.message)


UNAVAILABLE = ApiError(
    503,
    "unavailable",
    "changebot cannot read its database just now, so it answers nothing: a deployment that "
    "depends on it must wait. Try again shortly.",
    status="error",
)

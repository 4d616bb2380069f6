"""Reading what a pipeline sends: its bearer token, and a small JSON object whose fields are
checked by name and type before anything else looks at them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from bot.api.errors import ApiError, encodable
from workflows.model import parse_ref
from workflows.tokens import hash_secret

#: A pipeline's request is a few fields; anything larger is refused before it is read.
MAX_BODY = 16 * 1024
#: Longest bearer token accepted (ours are 47 characters).
MAX_TOKEN = 200


def credential(request: web.Request) -> str:
    """The hash of the bearer token the request carries, or 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise ApiError(
            401,
            "unauthorized",
            "Send an API token as `Authorization: Bearer <token>`; create one with "
            "`changebot token create`.",
        )
    if len(secret) > MAX_TOKEN or not secret.isascii() or not secret.isprintable():
        raise ApiError(401, "unauthorized", "That is not an API token of changebot's.")
    return hash_secret(secret)


@dataclass(frozen=True)
class Fields:
    """A request's JSON object, its fields checked: `text(name)` is a string or ""."""

    values: dict[str, Any]

    def text(self, name: str) -> str:
        value = self.values.get(name, "")
        return value if isinstance(value, str) else ""


async def json_body(
    request: web.Request, allowed: tuple[str, ...], required: tuple[str, ...]
) -> Fields:
    """The body as a JSON object of string fields named in `allowed`, or 4xx saying why."""
    values = json_object(await read_body(request, MAX_BODY))
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ApiError(
            400,
            "invalid",
            f"Unknown field {unknown[0]!r}: the fields are {', '.join(allowed)}.",
            field=unknown[0],
        )
    for name, value in values.items():
        if not isinstance(value, str):
            raise ApiError(400, "invalid", f"{name} must be a string.", field=name)
    for name in required:
        if not values.get(name, "").strip():
            raise ApiError(400, "invalid", f"{name} is required.", field=name)
    return Fields(values)


def printable(text: str) -> str:
    """`text` as it can be written back in an answer or a log line: its lone surrogates, if
    any, as the escapes that brought them."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or 400 saying why not: not JSON, not UTF-8, nested too
    deeply for the parser, a number too long to read, or not an object."""
    try:
        values = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ApiError(400, "malformed", f"The body is not JSON ({error}).") from error
    except ValueError as error:  # a number of more digits than Python converts
        raise ApiError(400, "malformed", "The body holds a number too long to read.") from error
    except RecursionError as error:
        raise ApiError(400, "malformed", "The body is nested too deeply to read.") from error
    if not isinstance(values, dict):
        raise ApiError(400, "malformed", "The body must be a JSON object.")
    if _SURROGATE_ESCAPE.search(raw):  # JSON may escape half a character; no text holds one
        _check_text(values)
    return values


#: A JSON escape of half of a UTF-16 surrogate pair: fine in a pair, not alone.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _check_text(values: dict[str, Any]) -> None:
    """400 if any string in the body is not text (a lone surrogate), naming the field."""
    for name, value in values.items():
        if not encodable(json.dumps([name, value], ensure_ascii=False)):
            shown = printable(name)
            raise ApiError(
                400,
                "invalid",
                f"{shown} holds something that is not text (a lone surrogate such as \\ud800).",
                field=shown,
            )


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or 413 if it is longer than `limit` bytes (refused before it is read
    when it says so)."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    try:
        body = await request.read()  # never more than the server's client_max_size
    except RequestPayloadError as error:  # a Content-Encoding the body does not have, say
        raise ApiError(
            400, "malformed", f"The body could not be read: {payload_problem(error)}."
        ) from error
    if len(body) > limit:
        raise _too_large(limit)
    return body


def payload_problem(error: RequestPayloadError) -> str:
    """aiohttp's words for a body it could not read ("Can not decode content-encoding:
    gzip"), without its status prefix."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else "it is not what its headers say"


def change_number(text: str, field: str = "change") -> int:
    number = parse_ref(text)
    if number is None:
        raise ApiError(
            400, "invalid", f"{text!r} is not a change reference such as CHG-0042.", field=field
        )
    return number


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"The body is larger than {limit} bytes.")

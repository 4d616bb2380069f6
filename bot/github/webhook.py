"""`POST /github/webhook`: GitHub asks whether a deployment to a protected environment may go.

The body is trusted only once its `X-Hub-Signature-256` (HMAC-SHA256 of the raw body, keyed
with the webhook secret) matches, compared in constant time; anything else is 401. A
`deployment_protection_rule` request is stored, de-duplicated by `X-GitHub-Delivery`, and
answered at once (GitHub waits 10 seconds, and never delivers again): the decision and the
answer come later, from the worker (bot/github/worker.py). Nothing else GitHub sends is
written anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy import Engine
from sqlmodel import Session

from bot.api.errors import ApiError
from bot.api.requests import json_object, read_body
from bot.rounds import Rounds
from storage import github
from storage.db import is_sqlite
from storage.github import Requested
from workflows.model import pull_request_key
from workflows.ports import Clock

log = logging.getLogger(__name__)

PATH = "/github/webhook"
#: A deployment_protection_rule delivery is a few kilobytes.
MAX_BODY = 512 * 1024
_RUN_IN_CALLBACK = re.compile(r"/actions/runs/([0-9]+)/deployment_protection_rule$")
_DELIVERY = re.compile(r"^[A-Za-z0-9-]{1,100}$")


def signature_of(body: bytes, secret: str) -> str:
    """What GitHub sends as X-Hub-Signature-256 for `body`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def is_signed(body: bytes, header: str, secret: str) -> bool:
    """Whether `header` is the body's signature. aiohttp gives a header's bytes that are not
    UTF-8 as surrogate escapes: they are compared as the bytes they were (and never match)."""
    given = header.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(signature_of(body, secret).encode(), given)


class Webhook:
    def __init__(
        self, engine: Engine, clock: Clock, secret: str, *, kick: Callable[[], None]
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.secret = secret
        self.kick = kick
        self._stores: Rounds[Requested, bool] = Rounds(
            self._store, in_thread=not is_sqlite(engine), name="github-webhook"
        )

    async def handle(self, request: web.Request) -> web.Response:
        body = await read_body(request, MAX_BODY)
        if not is_signed(body, request.headers.get("X-Hub-Signature-256", ""), self.secret):
            raise ApiError(
                401,
                "unauthorized",
                "X-Hub-Signature-256 is missing or does not match the body: check that the "
                "GitHub App's webhook secret is GITHUB_WEBHOOK_SECRET.",
            )
        event = request.headers.get("X-GitHub-Event", "")
        delivery = request.headers.get("X-GitHub-Delivery", "")
        if not _DELIVERY.match(delivery):
            raise ApiError(400, "malformed", "X-GitHub-Delivery is missing or malformed.")
        payload = json_object(body)
        if event == "ping":
            return web.json_response({"ok": True, "message": "changebot is listening."})
        if event != "deployment_protection_rule" or payload.get("action") != "requested":
            return web.json_response(
                {"ok": True, "ignored": f"{event} {payload.get('action', '')}".strip()},
                status=202,
            )
        requested = parse(delivery, payload)
        first = await self._stores.submit(requested)
        if not first:
            raise ApiError(
                409,
                "duplicate",
                f"Delivery {delivery} was received already; nothing was changed.",
            )
        log.info(
            "GitHub holds %s's deployment to %s (run %s) for changebot's answer",
            requested.repository,
            requested.environment,
            requested.run_id,
        )
        self.kick()
        return web.json_response({"ok": True, "delivery": delivery}, status=202)

    def _store(self, requests: list[Requested]) -> list[bool]:
        """Store a round of deliveries in one transaction: whether each was new."""
        with Session(self.engine) as session:
            return github.received(session, requests, self.clock.now())


def parse(delivery: str, payload: dict[str, Any]) -> Requested:
    """The deployment GitHub holds, from a `deployment_protection_rule` delivery; 400 naming
    the field when one it needs is missing or malformed."""
    repository = _text(_object(payload, "repository"), "full_name", "repository.full_name")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
        raise _missing("repository.full_name", "is not owner/name")
    environment = _text(payload, "environment", "environment")
    installation = _number(_object(payload, "installation"), "id", "installation.id")
    run = payload.get("workflow_run")
    run_id = _number(run, "id", "workflow_run.id") if isinstance(run, dict) else None
    if run_id is None:
        callback = _text(payload, "deployment_callback_url", "deployment_callback_url")
        found = _RUN_IN_CALLBACK.search(callback)
        if not found:
            raise _missing("deployment_callback_url", "names no workflow run")
        run_id = _in_range(int(found.group(1)), "deployment_callback_url")
    sender = payload.get("sender")
    return Requested(
        delivery_id=delivery,
        repository=repository,
        environment=environment[:255],
        run_id=run_id,
        installation_id=installation,
        sha=_optional(payload, "sha", 64),
        ref=_optional(payload, "ref", 255),
        sender=_optional(sender, "login", 100) if isinstance(sender, dict) else "",
        pull_requests=_pull_requests(payload.get("pull_requests"), repository),
    )


def _pull_requests(value: object, repository: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    found = []
    for pr in value[:20]:
        if not isinstance(pr, dict):
            continue
        key = pull_request_key(str(pr.get("html_url") or ""))
        if not key and isinstance(pr.get("number"), int):
            key = f"{repository}#{pr['number']}".lower()
        if key:
            found.append(key)
    return tuple(found)


def _object(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key)
    if not isinstance(value, dict):
        raise _missing(key, "is missing")
    return value


def _text(payload: dict[str, Any], key: str, name: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _missing(name, "is missing")
    return value.strip()


def _number(payload: dict[str, Any], key: str, name: str) -> int:
    value = payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise _missing(name, "is not a positive number")
    return _in_range(value, name)


#: GitHub's ids are 64-bit; the database's integers are too.
_LARGEST_ID = 2**63 - 1


def _in_range(value: int, name: str) -> int:
    if value > _LARGEST_ID:
        raise _missing(name, "is larger than any GitHub id")
    return value


def _optional(payload: dict[str, Any], key: str, limit: int) -> str:
    value = payload.get(key)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _missing(name: str, problem: str) -> ApiError:
    return ApiError(
        400, "malformed", f"{name} {problem}: not a deployment_protection_rule request.", field=name
    )

"""The JSON API pipelines call, under `/api/v1/`, on the server that already serves Slack.

- `POST /api/v1/gate`: may this deployment go ahead? (scope `gate`)
- `PUT /api/v1/changes/{ref}/deployments/{id}`: a deployment started (scope `deployments`)
- `PUT /api/v1/changes/{ref}/deployments/{id}/outcome`: it ended (scope `deployments`)

Reports are PUTs: sent twice with the same id they are recorded once. Every refusal is a 4xx
with a JSON body that names the problem; a database that cannot be read is a 503, never an
answer (the gate fails closed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.api.desk import GateDesk, Refused
from bot.api.errors import UNAVAILABLE, ApiError, from_change_error
from bot.api.requests import change_number, credential, json_body
from bot.services import Services
from storage import tokens
from storage.rows import deployment_to_json
from workflows.deployments import (
    Report,
    Reported,
    report_finished,
    report_started,
)
from workflows.errors import ChangeError
from workflows.gate import Answer, Asked, Decision, Question, Target, check_question
from workflows.model import OUTCOME_NAMES, outcome_named
from workflows.tokens import ApiToken, Scope, refusal

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
GATE_PATH = f"{PREFIX}/gate"
#: Paths answered in JSON, refusals included: the API's and GitHub's webhook.
JSON_PATHS = ("/api/", "/github/")
GATE_FIELDS = (
    "change",
    "service",
    "environment",
    "repository",
    "commit",
    "run_url",
    "triggered_by",
)
START_FIELDS = ("service", "environment", "triggered_by")
#: Answers' bodies kept, at most: one for each change, service and answer that pipelines
#: are asking about (forgotten all at once when full, and made again).
ANSWER_BODIES = 4096


class Api:
    def __init__(self, services: Services, desk: GateDesk) -> None:
        self.services = services
        self.desk = desk
        self.tally = desk.tally
        #: The bodies of answers given (see `_answered`).
        self._bodies: dict[tuple[Decision, str, str, str], bytes] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(GATE_PATH, self.gate)
        app.router.add_put(f"{PREFIX}/changes/{{ref}}/deployments/{{id}}", self.started)
        app.router.add_put(f"{PREFIX}/changes/{{ref}}/deployments/{{id}}/outcome", self.finished)

    # -- the gate ----------------------------------------------------------------------------

    async def gate(self, request: web.Request) -> web.Response:
        secret = credential(request)
        fields = await json_body(request, GATE_FIELDS, ("change", "service", "environment"))
        question = _checked(
            Question(
                change_number(fields.text("change")),
                Target(
                    fields.text("service"),
                    fields.text("environment"),
                    fields.text("repository"),
                    fields.text("commit"),
                ),
                Asked("", run=fields.text("run_url"), triggered_by=fields.text("triggered_by")),
            )
        )
        result = await self.desk.ask(secret, question)
        if isinstance(result, Refused):
            raise _refused(result.status, result.message)
        self.tally.count(result.decision.status)  # and no line of its own (see `quiet`)
        return self._answered(result, question.target)

    def _answered(self, answer: Answer, target: Target) -> web.Response:
        """The answer's body, made once for each thing the gate says: pipelines waiting ask
        again and again and hear the same, byte for byte."""
        decision = answer.decision
        said = (decision, answer.ref, target.service, target.environment)
        body = self._bodies.get(said)
        if body is None:
            if len(self._bodies) >= ANSWER_BODIES:
                self._bodies.clear()
            shown = {
                "status": decision.status.value,
                "change": answer.ref,
                "service": target.service,
                "environment": target.environment,
                "reasons": list(decision.reasons),
                "recheck_at": _time(decision.recheck_at),
            }
            body = self._bodies[said] = json.dumps(shown).encode()
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    # -- deployments ---------------------------------------------------------------------------

    async def started(self, request: web.Request) -> web.Response:
        token = await self._token(request, Scope.DEPLOYMENTS)
        fields = await json_body(request, START_FIELDS, ("service", "environment"))
        number = change_number(request.match_info["ref"], "ref")
        report = Report(
            request.match_info["id"],
            Target(fields.text("service"), fields.text("environment")),
            fields.text("triggered_by"),
        )
        reported = await self._run(report_started, number, token.name, report)
        return self._reported(reported, created=reported.recorded)

    async def finished(self, request: web.Request) -> web.Response:
        token = await self._token(request, Scope.DEPLOYMENTS)
        allowed = ("outcome", "notes", *START_FIELDS)
        fields = await json_body(request, allowed, ("outcome",))
        number = change_number(request.match_info["ref"], "ref")
        outcome = outcome_named(fields.text("outcome"))
        if outcome is None:
            choices = ", ".join(OUTCOME_NAMES)
            raise ApiError(400, "invalid", f"outcome must be one of {choices}.", field="outcome")
        service, environment = fields.text("service"), fields.text("environment")
        target = Target(service, environment) if service or environment else None
        reported = await self._run(
            report_finished,
            number,
            token.name,
            request.match_info["id"],
            outcome,
            notes=fields.text("notes"),
            target=target,
            triggered_by=fields.text("triggered_by"),
        )
        return self._reported(reported, created=False)

    def _reported(self, reported: Reported, *, created: bool) -> web.Response:
        change, deployment = reported.change, reported.deployment
        # A deployment the gate did not allow is told to the policy owner, if the policy names one.
        told = not deployment.gated and bool(self.services.policy.policy.owner)
        body = {
            "change": change.ref,
            "stage": change.stage.value,
            "recorded": reported.recorded,
            "deployment": deployment_to_json(deployment),
            "policy_owner_told": told,
            "outcome": change.outcome.value if change.outcome else None,
            "review_owed": change.review_owed,
        }
        return _json(body, status=201 if created else 200)

    # -- plumbing -------------------------------------------------------------------------------

    async def _token(self, request: web.Request, scope: Scope) -> ApiToken:
        secret = credential(request)

        def look() -> ApiToken | None:
            with Session(self.services.engine) as session:
                found = tokens.authenticate(session, [secret], self.services.clock.now())
                session.commit()
            return found.get(secret)

        token = await asyncio.to_thread(look)
        refused = refusal(token, scope)
        if refused is not None or token is None:
            raise _refused(*(refused or (401, "")))
        return token

    async def _run(self, use_case: Callable[..., Reported], *args: Any, **kwargs: Any) -> Reported:
        try:
            return await self.services.run(use_case, *args, **kwargs)
        except ChangeError as error:
            raise from_change_error(error) from error


def quiet(request: web.Request, status: int) -> bool:
    """A gate answer: counted in the tally (bot/api/tally.py), not logged a line each."""
    return status == 200 and request.path == GATE_PATH


def _checked(question: Question) -> Question:
    try:
        return check_question(question)
    except ChangeError as error:
        raise from_change_error(error) from error


def _refused(status: int, message: str) -> ApiError:
    return ApiError(status, "unauthorized" if status == 401 else "forbidden", message)


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """`handler`'s response to a request under /api/ or /github/, its refusals as JSON, a
    database that cannot be read as 503, anything else as a 500 with a reference to quote
    (bot/server.py's middleware calls it for those paths)."""
    try:
        return await handler(request)
    except ApiError as error:
        return error.response()
    except web.HTTPException as error:
        if error.status == 405:
            allowed = ", ".join(sorted(getattr(error, "allowed_methods", ()) or ()))
            message = f"{request.method} is not allowed here (use {allowed})."
            return ApiError(405, "method_not_allowed", message).response()
        if error.status == 404:
            message = f"There is no {request.path} here."
            if request.path.startswith("/github/"):
                message += " GitHub's webhook is POST /github/webhook, once GitHub is configured."
            return ApiError(404, "not_found", message).response()
        if error.status == 413:
            return ApiError(413, "too_large", "The body is too large.").response()
        raise
    except SQLAlchemyError:
        log.exception("the API could not reach the database")
        return UNAVAILABLE.response()
    except Exception:
        reference = uuid.uuid4().hex[:8]
        log.exception("unexpected error in the API (reference %s)", reference)
        message = (
            f"Something went wrong on changebot's side. Quote reference {reference} to whoever "
            "runs changebot."
        )
        return ApiError(500, "internal", message, status="error", reference=reference).response()

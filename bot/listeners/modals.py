"""Form submissions. Bad input is answered field by field inside the form
(`response_action: errors`) before anything is stored; a good one makes one move."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot import ids
from bot.services import Services
from bot.views import forms
from workflows import process
from workflows.errors import ChangeError, PolicyViolation, ValidationFailed
from workflows.model import Actor

log = logging.getLogger(__name__)

Submission = Callable[[Services, Actor, ids.Target, dict[str, Any]], Awaitable[Any]]


def register(app: AsyncApp) -> None:
    app.view(ids.REQUEST_MODAL)(request_submitted)
    for callback_id, submission in SUBMISSIONS.items():
        app.view(callback_id)(_listener(callback_id, submission))


async def request_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], services: Services
) -> None:
    actor = Actor(body["user"]["id"])
    try:
        details = forms.parse_request(_values(view), services.policy)
        await services.run(process.request_change, actor, details, requested_in=_origin(view))
    except (ValidationFailed, PolicyViolation) as error:
        await ack(response_action="errors", errors=forms.errors_for(error, view=view))
        return
    await ack()


def _listener(callback_id: str, submission: Submission) -> Callable[..., Awaitable[None]]:
    async def submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], services: Services
    ) -> None:
        try:
            target = ids.Target.decode(view.get("private_metadata") or "")
        except ValueError:
            await ack(
                response_action="errors",
                errors={_first_block(view): "This form is not one I know."},
            )
            return
        actor = await services.directory.actor(body["user"]["id"])
        try:
            await submission(services, actor, target, _values(view))
        except (ValidationFailed, PolicyViolation) as error:
            await ack(response_action="errors", errors=forms.errors_for(error, view=view))
            return
        except ChangeError as error:
            await ack(response_action="errors", errors={_first_block(view): str(error)})
            return
        await ack()

    submitted.__name__ = f"submitted_{callback_id}"
    return submitted


async def _edit(
    services: Services, actor: Actor, target: ids.Target, values: dict[str, Any]
) -> Any:
    details = forms.parse_request(values, services.policy)
    return await services.run(process.edit, target.number, actor, details, seen_stage=target.seen)


async def _review(
    services: Services, actor: Actor, target: ids.Target, values: dict[str, Any]
) -> Any:
    assessment, risk = forms.parse_review(values)
    return await services.run(
        process.record_review,
        target.number,
        actor,
        assessment=assessment,
        risk=risk,
        seen_stage=target.seen,
    )


async def _evidence(
    services: Services, actor: Actor, target: ids.Target, values: dict[str, Any]
) -> Any:
    return await services.run(
        process.add_test_evidence,
        target.number,
        actor,
        evidence=forms.parse_evidence(values),
        seen_stage=target.seen,
    )


async def _reject(
    services: Services, actor: Actor, target: ids.Target, values: dict[str, Any]
) -> Any:
    return await services.run(
        process.reject,
        target.number,
        actor,
        reason=forms.parse_reason(values),
        seen_stage=target.seen,
    )


async def _cancel(
    services: Services, actor: Actor, target: ids.Target, values: dict[str, Any]
) -> Any:
    return await services.run(
        process.cancel,
        target.number,
        actor,
        reason=forms.parse_reason(values),
        seen_stage=target.seen,
    )


async def _outcome(
    services: Services, actor: Actor, target: ids.Target, values: dict[str, Any]
) -> Any:
    outcome, notes = forms.parse_outcome(values)
    return await services.run(
        process.record_outcome,
        target.number,
        actor,
        outcome=outcome,
        notes=notes,
        seen_stage=target.seen,
    )


async def _post_change_review(
    services: Services, actor: Actor, target: ids.Target, values: dict[str, Any]
) -> Any:
    review = forms.parse_post_change_review(values)
    return await services.run(
        process.submit_post_change_review, target.number, actor, review, seen_stage=target.seen
    )


async def _close_without_review(
    services: Services, actor: Actor, target: ids.Target, values: dict[str, Any]
) -> Any:
    return await services.run(
        process.close_without_review,
        target.number,
        actor,
        reason=forms.parse_reason(values),
        seen_stage=target.seen,
    )


SUBMISSIONS: dict[str, Submission] = {
    ids.CLOSE_WITHOUT_REVIEW_MODAL: _close_without_review,
    ids.EDIT_MODAL: _edit,
    ids.REVIEW_MODAL: _review,
    ids.EVIDENCE_MODAL: _evidence,
    ids.REJECT_MODAL: _reject,
    ids.CANCEL_MODAL: _cancel,
    ids.OUTCOME_MODAL: _outcome,
    ids.PCR_MODAL: _post_change_review,
}


def _values(view: dict[str, Any]) -> dict[str, Any]:
    return ((view.get("state") or {}).get("values")) or {}


def _origin(view: dict[str, Any]) -> str:
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return ""
    channel = meta.get("c", "") if isinstance(meta, dict) else ""
    return channel if isinstance(channel, str) and channel[:1] in ("C", "G") else ""


def _first_block(view: dict[str, Any]) -> str:
    for block in view.get("blocks") or []:
        if block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    return "title"

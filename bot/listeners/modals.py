"""Form submissions. Bad input is answered field by field inside the form
(`response_action: errors`) before anything is stored; a good one makes one move."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot import ids
from bot.services import Services
from bot.views import forms
from workflows import process
from workflows.errors import AlreadyRequested, ChangeError, PolicyViolation, ValidationFailed
from workflows.model import Actor
from workflows.policy import Policy

log = logging.getLogger(__name__)


def register(app: AsyncApp) -> None:
    app.view(ids.REQUEST_MODAL)(request_submitted)
    for callback_id, form in STEP_FORMS.items():
        app.view(callback_id)(_listener(callback_id, form))


async def request_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], services: Services
) -> None:
    actor = Actor(body["user"]["id"])
    try:
        details = forms.parse_request(_values(view), await services.current_policy())
        requested = await services.run(
            process.request_change,
            actor,
            details,
            requested_in=_origin(view),
            form=str(view.get("id") or ""),
        )
    except (ValidationFailed, PolicyViolation) as error:
        await ack(response_action="errors", errors=forms.errors_for(error, view=view))
        return
    except AlreadyRequested as error:  # Slack sent the form again: its change stands
        log.info("request form %s was submitted already: change %s", view.get("id"), error.number)
        await ack()
        return
    if requested.conflicts:
        shown = forms.requested_in_conflict(requested.change, requested.conflicts)
        await ack(response_action="update", view=shown)
        return
    await ack()


def _listener(callback_id: str, form: StepForm) -> Callable[..., Awaitable[None]]:
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
            await form.submit(services, actor, target, _values(view))
        except (ValidationFailed, PolicyViolation) as error:
            await ack(response_action="errors", errors=forms.errors_for(error, view=view))
            return
        except ChangeError as error:
            await ack(response_action="errors", errors={_first_block(view): str(error)})
            return
        await ack()

    submitted.__name__ = f"submitted_{callback_id}"
    return submitted


#: How a step's form is read: (positional, keyword) arguments for its use case.
Reading = tuple[tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True)
class StepForm:
    """A form that makes one move: the use case, and how its inputs become its arguments."""

    use_case: Callable[..., Any]
    read: Callable[[dict[str, Any], Policy], Reading]

    async def submit(
        self, services: Services, actor: Actor, target: ids.Target, values: dict[str, Any]
    ) -> Any:
        args, kwargs = self.read(values, await services.current_policy())
        return await services.run_as_seen(
            target.as_seen,
            self.use_case,
            target.number,
            actor,
            *args,
            seen_stage=target.seen,
            **kwargs,
        )


def _reason(values: dict[str, Any], _: Policy) -> Reading:
    return (), {"reason": forms.parse_reason(values)}


STEP_FORMS: dict[str, StepForm] = {
    ids.EDIT_MODAL: StepForm(process.edit, lambda v, p: ((forms.parse_request(v, p),), {})),
    ids.REVIEW_MODAL: StepForm(
        process.record_review, lambda v, _: ((), forms.parse_review(v)._asdict())
    ),
    ids.EVIDENCE_MODAL: StepForm(
        process.add_test_evidence, lambda v, _: ((), {"evidence": forms.parse_evidence(v)})
    ),
    ids.REJECT_MODAL: StepForm(process.reject, _reason),
    ids.CANCEL_MODAL: StepForm(process.cancel, _reason),
    ids.CLOSE_WITHOUT_REVIEW_MODAL: StepForm(process.close_without_review, _reason),
    ids.OUTCOME_MODAL: StepForm(
        process.record_outcome, lambda v, _: ((), forms.parse_outcome(v)._asdict())
    ),
    ids.PCR_MODAL: StepForm(
        process.submit_post_change_review,
        lambda v, _: ((forms.parse_post_change_review(v),), {}),
    ),
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

"""Deployments a pipeline reports: their start and their outcome, as steps on the change.

A pipeline reports what it deploys, by an id of its own, so that a report sent twice (a retried
job) is recorded once. The first deployment to start moves the change into deployment, as a
person's click would; the last to finish records the change's outcome (the worst of its
deployments'), which owes a post-change review exactly where a person's outcome would. A
deployment the gate did not allow (the change was not authorised, or no pipeline asked the
gate) is still recorded, never refused, and loudly: it is what the policy exists to prevent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from workflows.errors import Conflict, NotFound, ValidationFailed
from workflows.events import Happened
from workflows.followup import conclude
from workflows.gate import Target, allowed_check, check_target, decide
from workflows.model import (
    Change,
    GateStatus,
    Outcome,
    PipelineDeployment,
    Stage,
    pipeline_actor,
)
from workflows.policy import Policy
from workflows.ports import Clock, UnitOfWork
from workflows.stages import Action
from workflows.steps import Step
from workflows.validation import check_line, check_text

PIPELINE_STARTED = Happened.PIPELINE_DEPLOYMENT_STARTED
PIPELINE_FINISHED = Happened.PIPELINE_DEPLOYMENT_FINISHED
UNGATED = Happened.UNGATED_DEPLOYMENT

_DEPLOYMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#@+-]{0,99}$")


@dataclass(frozen=True)
class Reported:
    """What a report left: the change, its deployment, and whether anything new was written
    (False for a report sent again)."""

    change: Change
    deployment: PipelineDeployment
    recorded: bool


@dataclass(frozen=True)
class Report:
    """A deployment as a pipeline reports it."""

    id: str
    target: Target
    triggered_by: str = ""


def check_deployment_id(value: str) -> str:
    text = value.strip()
    if not _DEPLOYMENT_ID.match(text):
        raise ValidationFailed(
            "id",
            "give the deployment an id of up to 100 letters, digits and . _ : / # @ + - "
            "(your pipeline's run or job id, say), so that a report sent twice counts once.",
        )
    return text


def report_started(
    uow: UnitOfWork, clock: Clock, policy: Policy, number: int, pipeline: str, report: Report
) -> Reported:
    """A pipeline starts deploying under the change. Sent again, it changes nothing."""
    report = _checked(report, policy)
    with _reporting(uow, clock, policy, number) as step:
        known = _known(step.change, pipeline, report.id)
        if known is not None:
            _same_target(known, report)
        else:
            known = _start(step, pipeline, report)
    return Reported(step.change, known, step.moved)


def report_finished(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    pipeline: str,
    deployment_id: str,
    outcome: Outcome,
    *,
    notes: str = "",
    target: Target | None = None,
    triggered_by: str = "",
) -> Reported:
    """A pipeline's deployment ended. Sent again with the same outcome, it changes nothing.

    A deployment whose start was never reported is started here first, if the report says
    what it deployed (`target`): a start report that failed must not lose the deployment.
    """
    deployment_id = check_deployment_id(deployment_id)
    notes = check_text("notes", notes, "notes")
    report = _checked(Report(deployment_id, target, triggered_by), policy) if target else None
    with _reporting(uow, clock, policy, number) as step:
        known = _known(step.change, pipeline, deployment_id)
        if known is None:
            if report is None:
                raise NotFound(
                    f"deployment reported by {pipeline} on {step.change.ref}:", deployment_id
                )
            known = _start(step, pipeline, report)
        elif report is not None:
            _same_target(known, report)
        if known.outcome is not None:
            if known.outcome is not outcome:
                raise Conflict(
                    f"Deployment {deployment_id} of {step.change.ref} already ended "
                    f"{known.outcome.label.lower()}; it cannot end {outcome.label.lower()} too."
                )
            return Reported(step.change, known, False)
        known = _finish(step, pipeline, known, outcome, notes)
    return Reported(step.change, known, True)


# -- the steps -------------------------------------------------------------------------------


def _start(step: Step, pipeline: str, report: Report) -> PipelineDeployment:
    change, actor = step.change, pipeline_actor(pipeline)
    target = report.target
    unallowed = _not_allowed(step, target)
    deployment = PipelineDeployment(
        id=report.id,
        pipeline=pipeline,
        service=target.service,
        environment=target.environment,
        started_at=step.at,
        triggered_by=report.triggered_by,
        gated=unallowed is None,
    )
    change.deployments += (deployment,)
    details = _described(deployment)
    # An authorised change moves into deployment even when the gate was skipped: what it
    # deploys is then on the change, and its outcome owes what any outcome owes.
    if change.stage is Stage.DEPLOY and change.deployment_started_at is None:
        step.move(Action.START_DEPLOYMENT, actor, **details)
        change.deployment_started_at, change.deployed_by = step.at, actor.user_id
    else:
        step.note(PIPELINE_STARTED, actor, **details)
    if unallowed is not None:
        # Recorded, never refused: the deployment happened. The policy owner hears of it.
        step.note(UNGATED, actor, reason=unallowed, owner=step.policy.policy.owner, **details)
    return deployment


def _finish(
    step: Step, pipeline: str, deployment: PipelineDeployment, outcome: Outcome, notes: str
) -> PipelineDeployment:
    change, actor = step.change, pipeline_actor(pipeline)
    ended = replace(deployment, outcome=outcome, finished_at=step.at)
    change.deployments = tuple(ended if d is deployment else d for d in change.deployments)
    details = {**_described(ended), "outcome": outcome.value}
    running = [d for d in change.deployments if d.outcome is None]
    concludes = (
        change.stage is Stage.DEPLOY
        and change.deployment_started_at is not None
        and change.outcome is None
        and not running
    )
    if not concludes:
        step.note(PIPELINE_FINISHED, actor, notes=notes, running=len(running), **details)
        return ended
    worst = max((d.outcome for d in change.deployments if d.outcome), key=lambda o: o.severity)
    if not notes and (worst is not Outcome.SUCCESSFUL or len(change.deployments) > 1):
        notes = _summary(change.deployments)
    conclude(step, actor, worst, notes, **_described(ended))
    return ended


def _not_allowed(step: Step, target: Target) -> str | None:
    """Why the gate would not have let this deployment go, or None if it did."""
    change = step.change
    decision = decide(change, change.ref, target, step.policy, step.at)
    if decision.status is not GateStatus.ALLOWED:
        return f"The gate would have answered {decision.status.value}: {decision.reasons[0]}"
    if allowed_check(change, target.service, target.environment) is None:
        return (
            f"No pipeline asked the gate before deploying {target.service} to {target.environment}."
        )
    return None


def _summary(deployments: tuple[PipelineDeployment, ...]) -> str:
    return "; ".join(
        f"{d.service} to {d.environment} ({d.id}): {d.outcome.label.lower()}"
        for d in deployments
        if d.outcome is not None
    )


def _described(deployment: PipelineDeployment) -> dict[str, Any]:
    return {
        "deployment": deployment.id,
        "service": deployment.service,
        "environment": deployment.environment,
        "triggered_by": deployment.triggered_by,
    }


# -- plumbing ----------------------------------------------------------------------------------


def _checked(report: Report, policy: Policy) -> Report:
    target = check_target(report.target)
    if not policy.gate.gates(target.environment):
        gated = ", ".join(policy.gate.environments)
        raise ValidationFailed(
            "environment",
            f"changebot records deployments to {gated}; {target.environment!r} is not one of them.",
        )
    return Report(
        id=check_deployment_id(report.id),
        target=target,
        triggered_by=check_line("triggered_by", report.triggered_by, 100),
    )


def _known(change: Change, pipeline: str, deployment_id: str) -> PipelineDeployment | None:
    return next(
        (d for d in change.deployments if (d.pipeline, d.id) == (pipeline, deployment_id)), None
    )


def _same_target(known: PipelineDeployment, report: Report) -> None:
    target = report.target
    if (known.service.lower(), known.environment.lower()) != (
        target.service.lower(),
        target.environment.lower(),
    ):
        raise Conflict(
            f"Deployment {known.id} was reported for {known.service} in {known.environment}; "
            f"it cannot be {target.service} in {target.environment} too. Give each "
            "deployment its own id."
        )


@contextmanager
def _reporting(uow: UnitOfWork, clock: Clock, policy: Policy, number: int) -> Iterator[Step]:
    """A pipeline's report: like a person's step, but recorded whatever stage the change is
    in, since what it reports has already happened."""
    with uow:
        step = Step(uow, policy, uow.changes.get(number), clock.now())
        yield step
        if step.moved:
            uow.changes.save(step.change)
            uow.commit()

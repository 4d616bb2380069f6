"""Deployments a pipeline reports: steps on the change like a person's, counted once by their
id, owing what a person's outcome owes, and loud when the gate did not allow them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.unit.builders import (
    ALICE,
    ANNA,
    EMMA,
    TOMORROW,
    Desk,
    emergency_details,
    normal_details,
    nothing_written,
)
from workflows.chase import Owed
from workflows.deployments import Report, report_finished, report_started
from workflows.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from workflows.gate import Asked, Question, Target, ask
from workflows.model import Change, GateStatus, Outcome, Stage
from workflows.stages import Action, allowed_actions, available_actions

PROD = "production"


def authorised(desk: Desk, *services: str) -> Change:
    """A Normal change approved for `services`, the clock inside its window."""
    change = desk.normal_change_in(Stage.DEPLOY, normal_details(services=services or ("api",)))
    desk.clock.current = TOMORROW.start + timedelta(minutes=1)
    return change


def asked(desk: Desk, change: Change, service: str = "api", pipeline: str = "ci-prod") -> None:
    question = Question(change.number, Target(service, PROD), Asked(pipeline))
    answer = ask(desk.uow, desk.clock, desk.policy, question)
    assert answer.decision.status is GateStatus.ALLOWED, answer.decision.reasons


def start(
    desk: Desk, change: Change, deployment: str = "run-1", service: str = "api", **kw: str
) -> Change:
    report = Report(deployment, Target(service, PROD), kw.pop("triggered_by", "octocat"))
    return report_started(
        desk.uow, desk.clock, desk.policy, change.number, kw.pop("pipeline", "ci-prod"), report
    ).change


def finish(
    desk: Desk,
    change: Change,
    deployment: str = "run-1",
    outcome: Outcome = Outcome.SUCCESSFUL,
    **kw: object,
) -> Change:
    return report_finished(
        desk.uow,
        desk.clock,
        desk.policy,
        change.number,
        str(kw.pop("pipeline", "ci-prod")),
        deployment,
        outcome,
        **kw,  # type: ignore[arg-type]
    ).change


def test_a_pipelines_start_moves_the_change_into_deployment_under_its_name(desk: Desk) -> None:
    change = authorised(desk)
    asked(desk, change)

    started = start(desk, change)

    assert started.deployment_started_at == desk.clock.now()
    assert started.deployed_by == "pipeline:ci-prod"
    entry = desk.last_entry(change, "deployment_started").entry
    assert entry.actor == "pipeline:ci-prod"
    assert entry.details == {
        "deployment": "run-1",
        "service": "api",
        "environment": PROD,
        "triggered_by": "octocat",
    }
    assert [(d.id, d.gated) for d in started.deployments] == [("run-1", True)]
    assert "ungated_deployment" not in desk.actions(change)


def test_a_pipelines_success_closes_the_change_like_a_persons(desk: Desk) -> None:
    change = authorised(desk)
    asked(desk, change)
    start(desk, change)

    done = finish(desk, change)

    assert (done.outcome, done.stage, done.review_owed) == (Outcome.SUCCESSFUL, Stage.CLOSED, False)
    assert desk.actions(change)[-2:] == ["outcome_recorded", "closed"]
    assert desk.last_entry(change, "outcome_recorded").entry.details["deployment"] == "run-1"


def test_a_pipelines_failure_owes_the_post_change_review_a_persons_would(desk: Desk) -> None:
    change = authorised(desk)
    asked(desk, change)
    start(desk, change)

    failed = finish(desk, change, outcome=Outcome.FAILED)

    assert (failed.outcome, failed.stage, failed.review_owed) == (
        Outcome.FAILED,
        Stage.DEPLOY,
        True,
    )
    owed = desk.owed(Owed.POST_CHANGE_REVIEW, change)
    assert owed is not None and owed.owner == "UALICE"  # the change's owner, as for a person
    assert failed.outcome_notes == "api to production (run-1): failed"


def test_a_report_sent_twice_is_recorded_once(desk: Desk) -> None:
    change = authorised(desk)
    asked(desk, change)
    start(desk, change)
    events = len(desk.trail(change))

    again = start(desk, change)
    finish(desk, change)
    events_after_finish = len(desk.trail(change))
    finish(desk, change)

    assert len(again.deployments) == 1
    assert len(desk.trail(change)) == events_after_finish
    assert events_after_finish > events


def test_an_id_reused_for_another_target_or_outcome_is_a_conflict(desk: Desk) -> None:
    change = authorised(desk, "api", "worker")
    asked(desk, change)
    start(desk, change)

    with pytest.raises(Conflict, match="reported for api in production"):
        start(desk, change, service="worker")
    finish(desk, change)
    with pytest.raises(Conflict, match="already ended successful"):
        finish(desk, change, outcome=Outcome.FAILED)


def test_the_change_ends_when_its_last_deployment_does_as_the_worst_of_them(desk: Desk) -> None:
    change = authorised(desk, "api", "worker")
    asked(desk, change, "api")
    asked(desk, change, "worker")
    start(desk, change, "run-api", "api")
    start(desk, change, "run-worker", "worker")

    one = finish(desk, change, "run-api", Outcome.SUCCESSFUL)
    both = finish(desk, change, "run-worker", Outcome.ROLLED_BACK)

    assert one.outcome is None and one.stage is Stage.DEPLOY
    assert desk.actions(change).count("pipeline_deployment_started") == 1
    assert desk.actions(change).count("pipeline_deployment_finished") == 1
    assert both.outcome is Outcome.ROLLED_BACK and both.review_owed


def test_an_outcome_without_a_start_records_the_start_first_if_it_says_what(desk: Desk) -> None:
    change = authorised(desk)
    asked(desk, change)

    done = finish(desk, change, target=Target("api", PROD), triggered_by="octocat")

    assert done.stage is Stage.CLOSED
    assert (
        desk.actions(change)[-4:]
        == [
            "gate_decided",
            "deployment_started",
            "outcome_recorded",
            "closed",
        ][-4:]
    )
    with pytest.raises(NotFound, match="run-9"):
        finish(desk, desk.normal_change_in(Stage.DEPLOY), "run-9")


def test_a_deployment_of_an_unapproved_change_is_recorded_loudly_not_refused(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE)

    recorded = start(desk, change)

    assert recorded.stage is Stage.APPROVE and recorded.deployment_started_at is None
    assert [(d.id, d.gated) for d in recorded.deployments] == [("run-1", False)]
    ungated = desk.last_entry(change, "ungated_deployment").entry
    assert ungated.details["reason"].startswith(
        "The gate would have answered awaiting: CHG-0001 is not yet approved"
    )
    assert ungated.details["owner"] == "UOWNER"
    assert desk.actions(change)[-2:] == ["pipeline_deployment_started", "ungated_deployment"]


def test_a_deployment_no_pipeline_asked_the_gate_about_is_loud_too(desk: Desk) -> None:
    change = authorised(desk)

    started = start(desk, change)

    assert started.deployment_started_at is not None  # authorised: it moves on
    reason = desk.last_entry(change, "ungated_deployment").entry.details["reason"]
    assert reason == "No pipeline asked the gate before deploying api to production."


def test_an_allowed_answer_to_one_pipeline_covers_another_deploying_it(desk: Desk) -> None:
    change = authorised(desk)
    asked(desk, change, pipeline="github")

    start(desk, change, pipeline="ci-prod")

    assert "ungated_deployment" not in desk.actions(change)


def test_a_deployment_after_the_outcome_is_outside_the_process(desk: Desk) -> None:
    change = authorised(desk)
    asked(desk, change)
    start(desk, change)
    finish(desk, change, outcome=Outcome.FAILED)

    start(desk, change, "run-2")

    reason = desk.last_entry(change, "ungated_deployment").entry.details["reason"]
    assert "The gate would have answered prevented: CHG-0001's deployment is over" in reason


def test_a_break_glass_emergency_deployed_by_a_pipeline_owes_its_review(desk: Desk) -> None:
    change = desk.request(emergency_details(services=("gateway",)))
    desk.approve(change, by=EMMA)
    question = Question(change.number, Target("gateway", PROD), Asked("ci"))
    ask(desk.uow, desk.clock, desk.policy, question)

    start(desk, change, service="gateway", pipeline="ci")
    done = finish(desk, change, pipeline="ci")

    assert done.review_owed and done.stage is Stage.DEPLOY
    assert desk.owed(Owed.POST_CHANGE_REVIEW, change) is not None


@pytest.mark.parametrize(
    ("deployment", "service", "environment", "field"),
    [
        ("", "api", PROD, "id"),
        ("run 1", "api", PROD, "id"),
        ("x" * 101, "api", PROD, "id"),
        ("run-1", "", PROD, "service"),
        ("run-1", "api", "staging", "environment"),
    ],
)
def test_a_malformed_report_is_refused_on_its_field(
    desk: Desk, deployment: str, service: str, environment: str, field: str
) -> None:
    change = authorised(desk)
    events = len(desk.uow.audit.events)

    with pytest.raises(ValidationFailed) as refused:
        report_started(
            desk.uow,
            desk.clock,
            desk.policy,
            change.number,
            "ci-prod",
            Report(deployment, Target(service, environment)),
        )

    assert refused.value.field == field
    assert len(desk.uow.audit.events) == events


def test_a_report_says_whether_it_recorded_anything(desk: Desk) -> None:
    change = authorised(desk)
    asked(desk, change)
    report = Report("run-1", Target("api", PROD))

    first = report_started(desk.uow, desk.clock, desk.policy, change.number, "ci-prod", report)
    again = report_started(desk.uow, desk.clock, desk.policy, change.number, "ci-prod", report)
    ended = report_finished(
        desk.uow, desk.clock, desk.policy, change.number, "ci-prod", "run-1", Outcome.SUCCESSFUL
    )
    ended_again = report_finished(
        desk.uow, desk.clock, desk.policy, change.number, "ci-prod", "run-1", Outcome.SUCCESSFUL
    )

    assert [first.recorded, again.recorded, ended.recorded, ended_again.recorded] == [
        True,
        False,
        True,
        False,
    ]
    assert ended.deployment.outcome is Outcome.SUCCESSFUL


# -- a change that may be out is cancelled by an approver only ----------------------------------


def test_a_change_the_gate_let_a_pipeline_deploy_is_cancelled_by_an_approver_only(
    desk: Desk,
) -> None:
    """No start reported, but the pipeline may have deployed it: its requester cannot close
    it with no outcome on their own word; an approver may, saying why, and the trail says
    what may be out."""
    change = authorised(desk)
    assert Action.CANCEL in allowed_actions(change, ALICE, desk.policy)
    asked(desk, change)
    allowed = desk.stored(change)
    assert Action.CANCEL in available_actions(allowed, desk.policy)  # the card's button
    assert Action.CANCEL not in allowed_actions(allowed, ALICE, desk.policy)

    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.cancel(allowed, reason="Superseded.")

    assert str(refused.value.reason) == (
        "The gate allowed ci-prod to deploy api to production, so CHG-0001 may have been "
        "deployed: only an approver other than its requester and implementer can cancel it "
        "now, saying why. Or start its deployment and record its outcome (Rolled back or "
        "Failed if it did not go ahead)."
    )
    cancelled = desk.cancel(allowed, by=ANNA, reason="The run was stopped before deploying.")
    assert cancelled.stage is Stage.CANCELLED
    entry = desk.last_entry(change, "cancelled").entry
    assert (entry.actor, entry.details["reason"]) == (
        "UANNA",
        "The run was stopped before deploying.",
    )
    assert entry.details["maybe_out"] == "the gate allowed ci-prod to deploy api to production"


def test_an_allowed_change_whose_approvals_were_withdrawn_is_still_cancelled_by_an_approver(
    desk: Desk,
) -> None:
    """An edit after the gate allowed it takes the authorisation, not what may have gone out."""
    change = authorised(desk)
    asked(desk, change)
    edited = desk.edit(change, services=("api", "ledger"))
    assert edited.stage is Stage.APPROVE

    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.cancel(edited, reason="Superseded.")

    assert str(refused.value.reason).endswith("can cancel it now, saying why.")
    assert desk.cancel(edited, by=ANNA, reason="Nothing went out.").stage is Stage.CANCELLED


def test_a_change_a_pipeline_reported_deploying_before_approval_is_cancelled_by_an_approver(
    desk: Desk,
) -> None:
    """The deployment skipped the process and was recorded loudly; rejected, then given up,
    the change is still closed by an approver's word, never its requester's alone."""
    change = desk.normal_change_in(Stage.APPROVE)
    start(desk, change, pipeline="deploy-bot")
    rejected = desk.reject(desk.stored(change), by=ANNA)
    assert rejected.stage is Stage.REQUEST

    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.cancel(rejected, reason="Deployed by mistake.")

    assert str(refused.value.reason) == (
        "Pipeline deploy-bot reported deploying api to production, so CHG-0001 may have been "
        "deployed: only an approver other than its requester and implementer can cancel it "
        "now, saying why."
    )
    cancelled = desk.cancel(rejected, by=ANNA, reason="Rolled back by hand at once.")
    assert cancelled.stage is Stage.CANCELLED
    maybe = desk.last_entry(change, "cancelled").entry.details["maybe_out"]
    assert maybe == "pipeline deploy-bot reported deploying api to production"


def test_an_allowed_answer_on_the_card_alone_counts_too(desk: Desk) -> None:
    """A change the gate allowed before it kept its first allowed answer apart (stored by an
    earlier version) has that answer among the card's latest only: it may be out all the
    same."""
    change = authorised(desk)
    asked(desk, change)
    stored = desk.stored(change)
    desk.uow.changes.committed[change.number] = replace(stored, first_allowed=None)
    earlier = desk.stored(change)
    assert earlier.first_allowed is None and earlier.gate_checks

    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.cancel(earlier, reason="Superseded.")

    assert str(refused.value.reason).startswith(
        "The gate allowed ci-prod to deploy api to production, so CHG-0001 may have been deployed"
    )


@pytest.mark.parametrize("service", ["api", "billing"])
def test_a_gate_that_only_held_a_change_does_not_stop_its_cancellation(
    desk: Desk, service: str
) -> None:
    """Awaiting (before its window) or prevented (a service it does not name): nothing went
    out, and its requester may still withdraw it."""
    change = desk.normal_change_in(Stage.DEPLOY, normal_details(services=("api",)))
    question = Question(change.number, Target(service, PROD), Asked("ci-prod"))
    status = ask(desk.uow, desk.clock, desk.policy, question).decision.status
    assert status is (GateStatus.AWAITING if service == "api" else GateStatus.PREVENTED)

    assert desk.cancel(change, reason="Superseded.").stage is Stage.CANCELLED

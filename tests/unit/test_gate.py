"""The deploy gate's decision: only an authorised change, inside its window, for a service it
names, is allowed; every other answer says why, in a sentence a pipeline log can show."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.unit.builders import (
    ANNA,
    ARTHUR,
    EMMA,
    TOMORROW,
    Desk,
    a_policy,
    emergency_details,
    normal_details,
    standard_details,
)
from workflows.errors import ValidationFailed
from workflows.gate import (
    GATE_REF,
    Asked,
    Decision,
    Question,
    Target,
    ask,
    ask_many,
    check_question,
    combine,
    decide,
    find_change,
)
from workflows.model import Change, GateStatus, Level, Links, Outcome, Stage

API = Target("api", "production")
CI = Asked("ci-prod", run="https://ci.example.com/runs/9", triggered_by="octocat")


def gate(desk: Desk, change: Change | None, target: Target = API, **later: float) -> Decision:
    """What the gate answers about `change` now, or after the clock moved by `later`."""
    desk.clock.advance(**later)
    stored = desk.stored(change) if change is not None else None
    ref = stored.ref if stored is not None else "CHG-0099"
    return decide(stored, ref, target, desk.policy, desk.clock.now())


def in_window(desk: Desk) -> None:
    desk.clock.current = TOMORROW.start + timedelta(minutes=5)


# -- allowed --------------------------------------------------------------------------------


def test_an_authorised_change_inside_its_window_is_allowed(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)
    in_window(desk)

    decision = gate(desk, change)

    assert decision.status is GateStatus.ALLOWED
    assert decision.reasons == (
        "CHG-0001 is authorised, approved by UANNA.",
        "Its window is open until 2026-11-24 10:00 UTC.",
    )


def test_a_service_is_matched_whatever_its_case(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY, normal_details(services=("Payments-API",)))
    in_window(desk)

    assert gate(desk, change, Target(" payments-api ", "Production")).status is GateStatus.ALLOWED


def test_a_standard_change_is_allowed_by_its_catalog_procedure(desk: Desk) -> None:
    change = desk.request(standard_details())
    in_window(desk)

    decision = gate(desk, change)

    assert decision.status is GateStatus.ALLOWED
    assert decision.reasons[0] == (
        "CHG-0001 is pre-approved by the Standard procedure Rolling restart of a stateless "
        "service (v3)."
    )


def test_an_approved_emergency_with_no_window_is_allowed_at_once(desk: Desk) -> None:
    change = desk.approve(desk.request(emergency_details(services=("api",))), by=EMMA)

    decision = gate(desk, change)

    assert decision.status is GateStatus.ALLOWED
    assert decision.reasons == ("CHG-0001 is an authorised emergency change, approved by UEMMA.",)


def test_an_emergency_declared_in_one_line_covers_the_service_it_deploys(desk: Desk) -> None:
    change = desk.approve(desk.declare_emergency("Block the abusive client"), by=EMMA)

    decision = gate(desk, change, Target("gateway", "production"))

    assert decision.status is GateStatus.ALLOWED
    assert "names no services yet, so it covers 'gateway'" in decision.reasons[-1]


def test_break_glass_allows_the_deployment_and_says_an_approval_is_owed(desk: Desk) -> None:
    change = desk.declare_emergency("Roll back the bad config")
    desk.clock.advance(minutes=20)
    desk.break_glass(change)

    decision = gate(desk, change, Target("gateway", "production"))

    assert decision.status is GateStatus.ALLOWED
    assert decision.reasons[0] == (
        "CHG-0001 is deploying under break-glass by UALICE since 2026-11-23 09:20 UTC; an "
        "approval is owed in retrospect."
    )


def test_a_second_service_may_deploy_while_the_first_is_deploying(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY, normal_details(services=("api", "worker")))
    in_window(desk)
    desk.start_deployment(change)

    assert gate(desk, change, Target("worker", "production")).status is GateStatus.ALLOWED


# -- awaiting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "waits_for"),
    [
        (Stage.REVIEW, "its peer review, then test evidence from staging and 1 approval"),
        (Stage.TEST, "test evidence from staging, then 1 approval"),
        (Stage.APPROVE, "approval: it has 0 of the 1 approval it needs"),
    ],
)
def test_a_change_on_its_way_is_awaiting_what_it_waits_for(
    desk: Desk, stage: Stage, waits_for: str
) -> None:
    change = desk.normal_change_in(stage)

    decision = gate(desk, change)

    assert decision.status is GateStatus.AWAITING
    assert decision.reasons == (f"CHG-0001 is not yet approved; it waits for {waits_for}.",)


def test_a_high_risk_change_with_one_approval_says_how_many_it_has(desk: Desk) -> None:
    change = desk.request(normal_details(risk=Level.HIGH))
    change = desk.approve(desk.add_evidence(desk.review(change)), by=ANNA)

    decision = gate(desk, change)

    assert decision.status is GateStatus.AWAITING
    assert "it has 1 of the 2 approvals it needs" in decision.reasons[0]
    desk.approve(change, by=ARTHUR)
    in_window(desk)
    assert gate(desk, change).status is GateStatus.ALLOWED


def test_an_authorised_change_before_its_window_awaits_the_window(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)

    decision = gate(desk, change)

    assert decision.status is GateStatus.AWAITING
    assert decision.reasons == (
        "CHG-0001 is authorised, but its window opens at 2026-11-24 09:00 UTC; the gate allows "
        "it from then until 2026-11-24 10:00 UTC.",
    )
    assert decision.recheck_at == TOMORROW.start


def test_an_unapproved_emergency_says_when_break_glass_opens(desk: Desk) -> None:
    change = desk.declare_emergency("Roll back the bad config")

    waiting = gate(desk, change, Target("gateway", "production"))
    later = gate(desk, change, Target("gateway", "production"), minutes=16)

    assert waiting.status is later.status is GateStatus.AWAITING
    assert waiting.reasons == (
        "CHG-0001 is waiting for an emergency approval (0 of 1).",
        "If no approver acts, its requester may break glass from 2026-11-23 09:15 UTC.",
    )
    assert later.reasons[1] == "No approver has acted: its requester may break glass now."


def test_a_change_not_yet_submitted_awaits_its_submission(desk: Desk) -> None:
    change = desk.request(submit=False)

    decision = gate(desk, change)

    assert decision.status is GateStatus.AWAITING
    assert decision.reasons == ("CHG-0001 is in Request: it must be submitted for review.",)


# -- prevented ------------------------------------------------------------------------------


def test_a_service_the_change_does_not_name_is_prevented(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY, normal_details(services=("api", "worker")))
    in_window(desk)

    decision = gate(desk, change, Target("payments", "production"))

    assert decision.status is GateStatus.PREVENTED
    assert decision.reasons == (
        "CHG-0001 names api, worker; 'payments' is not one of them. Deploy only what the change "
        "names, or edit it to add 'payments' (its approvals are then withdrawn).",
    )


def test_a_window_that_closed_prevents_the_deployment(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)
    desk.clock.current = TOMORROW.end

    decision = gate(desk, change)

    assert decision.status is GateStatus.PREVENTED
    assert decision.reasons[0].startswith("CHG-0001's window closed at 2026-11-24 10:00 UTC.")


@pytest.mark.parametrize("stage", [Stage.REQUEST, Stage.REVIEW, Stage.TEST, Stage.APPROVE])
def test_a_window_that_closed_before_approval_prevents_the_deployment(
    desk: Desk, stage: Stage
) -> None:
    """No approval can make it deployable any more: a pipeline waiting would wait for ever."""
    change = (
        desk.normal_change_in(stage) if stage is not Stage.REQUEST else desk.request(submit=False)
    )
    before_the_end = gate(desk, change)
    desk.clock.current = TOMORROW.end

    decision = gate(desk, change)

    assert before_the_end.status is GateStatus.AWAITING
    assert decision.status is GateStatus.PREVENTED
    assert decision.reasons == (
        "CHG-0001's window closed at 2026-11-24 10:00 UTC before it was authorised. Edit the "
        "change with a new window, then see it through to approval.",
    )


def test_a_rejected_change_is_prevented_until_it_is_submitted_again(desk: Desk) -> None:
    change = desk.reject(desk.normal_change_in(Stage.APPROVE), reason="Needs a canary.")

    rejected = gate(desk, change)
    desk.submit(change)
    resubmitted = gate(desk, change, minutes=1)

    assert rejected.status is GateStatus.PREVENTED
    assert rejected.reasons == (
        "CHG-0001 was rejected by UANNA in Approve: “Needs a canary.”. It is back in Request: "
        "fix it and submit it again.",
    )
    assert resubmitted.status is GateStatus.AWAITING


def test_a_cancelled_change_is_prevented(desk: Desk) -> None:
    change = desk.cancel(desk.normal_change_in(Stage.APPROVE), reason="Superseded by CHG-0002.")

    decision = gate(desk, change)

    assert decision.status is GateStatus.PREVENTED
    assert decision.reasons == (
        "CHG-0001 was cancelled: “Superseded by CHG-0002.”. Request a new change.",
    )


def test_a_change_whose_outcome_is_recorded_is_prevented(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)
    in_window(desk)
    desk.record_outcome(desk.start_deployment(change), Outcome.FAILED)

    decision = gate(desk, change)

    assert decision.status is GateStatus.PREVENTED
    assert decision.reasons == (
        "CHG-0001's deployment is over (its outcome, failed, was recorded at 2026-11-24 09:05 "
        "UTC). A new deployment needs a new change.",
    )


def test_a_closed_change_is_prevented(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)
    in_window(desk)
    desk.record_outcome(desk.start_deployment(change))

    decision = gate(desk, change)

    assert desk.stored(change).stage is Stage.CLOSED
    assert decision.status is GateStatus.PREVENTED
    assert decision.reasons[0].startswith("CHG-0001 is closed (its outcome, successful, was")


# -- invalid --------------------------------------------------------------------------------


def test_a_change_that_does_not_exist_is_invalid(desk: Desk) -> None:
    decision = gate(desk, None)

    assert decision.status is GateStatus.INVALID
    assert decision.reasons == (
        "There is no change CHG-0099. Request one with /change in Slack and deploy with its "
        "reference.",
    )


def test_an_environment_the_policy_does_not_gate_is_invalid(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)
    in_window(desk)

    decision = gate(desk, change, Target("api", "staging"))

    assert decision.status is GateStatus.INVALID
    assert decision.reasons == (
        "changebot gates deployments to production; 'staging' is not one of them. Ask the gate "
        "only about those, or add 'staging' to gate.environments in the change policy.",
    )


def test_the_policy_names_the_environments_it_gates() -> None:
    policy = a_policy(approvals="normal = 1\n[gate]\nenvironments = ['prod-eu', 'prod-us']")

    assert policy.gate.gates("PROD-EU") and policy.gate.gates("prod-us")
    assert not policy.gate.gates("production")


# -- several answers as one -------------------------------------------------------------------


def test_the_worst_of_several_answers_wins_with_every_reason_once() -> None:
    allowed = Decision(GateStatus.ALLOWED, ("a",))
    awaiting = Decision(GateStatus.AWAITING, ("b", "a"), recheck_at=TOMORROW.start)
    prevented = Decision(GateStatus.PREVENTED, ("c",))

    assert combine([allowed, awaiting]) == Decision(GateStatus.AWAITING, ("a", "b"), TOMORROW.start)
    assert combine([awaiting, prevented, allowed]).status is GateStatus.PREVENTED
    assert combine([awaiting, prevented]).recheck_at is None
    assert combine([allowed]).status is GateStatus.ALLOWED


# -- asking, and the record it leaves -----------------------------------------------------------


def test_every_decision_is_recorded_with_who_asked_for_what_and_why(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE)

    answer = ask(desk.uow, desk.clock, desk.policy, Question(change.number, API, CI))

    entry = desk.last_entry(change, "gate_decided").entry
    assert answer.decision.status is GateStatus.AWAITING and answer.news
    assert entry.actor == "pipeline:ci-prod"
    assert entry.details == {
        "change": "CHG-0001",
        "status": "awaiting",
        "reasons": list(answer.decision.reasons),
        "service": "api",
        "environment": "production",
        "repository": "",
        "commit": "",
        "run": "https://ci.example.com/runs/9",
        "triggered_by": "octocat",
        "news": True,
    }
    assert [c.status for c in desk.stored(change).gate_checks] == [GateStatus.AWAITING]


def test_the_same_answer_again_is_recorded_but_is_no_news(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE)
    first = ask(desk.uow, desk.clock, desk.policy, Question(change.number, API, CI))
    version = desk.stored(change).version

    again = ask(desk.uow, desk.clock, desk.policy, Question(change.number, API, CI))

    assert first.news and not again.news
    assert desk.actions(change).count("gate_decided") == 2
    assert desk.stored(change).version == version  # the card has nothing new to show
    assert [e.action for e in desk.uow.audit.unshown] == ["gate_decided"]


def test_a_new_answer_to_the_same_question_is_news(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE)
    ask(desk.uow, desk.clock, desk.policy, Question(change.number, API, CI))
    desk.approve(change)
    in_window(desk)

    answer = ask(desk.uow, desk.clock, desk.policy, Question(change.number, API, CI))

    assert answer.decision.status is GateStatus.ALLOWED and answer.news
    checks = desk.stored(change).gate_checks
    assert [(c.pipeline, c.service, c.status) for c in checks] == [
        ("ci-prod", "api", GateStatus.ALLOWED)
    ]


def test_a_question_about_no_change_is_recorded_apart(desk: Desk) -> None:
    answer = ask(desk.uow, desk.clock, desk.policy, Question(99, API, CI))

    assert answer.decision.status is GateStatus.INVALID and not answer.news
    entry = desk.uow.audit.events[-1].entry
    assert (entry.ref, entry.details["change"], entry.details["status"]) == (
        GATE_REF,
        "CHG-0099",
        "invalid",
    )


@pytest.mark.parametrize(
    ("target", "asked", "field"),
    [
        (Target("", "production"), CI, "service"),
        (Target("api", ""), CI, "environment"),
        (Target("api\nrm -rf", "production"), CI, "service"),
        (Target("api", "production", repository="not a repo"), CI, "repository"),
        (Target("api", "production", commit="main"), CI, "commit"),
        (API, Asked("ci-prod", run="javascript:alert(1)"), "run"),
        (API, Asked("ci-prod", triggered_by="x" * 101), "triggered_by"),
    ],
)
def test_a_malformed_question_is_refused_on_its_field_and_recorded_nowhere(
    desk: Desk, target: Target, asked: Asked, field: str
) -> None:
    change = desk.normal_change_in(Stage.APPROVE)
    events = len(desk.uow.audit.events)

    with pytest.raises(ValidationFailed) as refused:
        ask(desk.uow, desk.clock, desk.policy, Question(change.number, target, asked))

    assert refused.value.field == field
    assert len(desk.uow.audit.events) == events


def test_a_question_is_taken_trimmed_and_its_commit_in_lower_case() -> None:
    written = Question(
        42,
        Target(" payments-api ", "production\t", " acme/payments ", "ABCDEF1"),
        Asked("ci-prod", run=" https://ci.example.com/1 ", triggered_by=" alice "),
    )
    clean = Question(
        42,
        Target("payments-api", "production", "acme/payments", "abcdef1"),
        Asked("ci-prod", run="https://ci.example.com/1", triggered_by="alice"),
    )

    assert check_question(written) == clean
    assert check_question(clean) == clean
    assert check_question(replace(clean, target=replace(clean.target, commit="ABCDEF1"))) == clean
    assert check_question(replace(clean, asked=replace(clean.asked, run="https://x/ "))).asked == (
        Asked("ci-prod", run="https://x/", triggered_by="alice")
    )


def test_many_questions_are_answered_in_order_in_one_commit(desk: Desk) -> None:
    waiting = desk.normal_change_in(Stage.APPROVE)
    ready = desk.normal_change_in(Stage.DEPLOY)
    in_window(desk)
    commits = desk.uow.commits

    answers = ask_many(
        desk.uow,
        desk.clock,
        desk.policy,
        [
            Question(waiting.number, API, CI),
            Question(ready.number, API, CI),
            Question(99, API, CI),
            Question(ready.number, API, Asked("ci-prod")),  # asked twice in one batch
        ],
    )

    assert [a.decision.status for a in answers] == [
        GateStatus.AWAITING,
        GateStatus.ALLOWED,
        GateStatus.INVALID,
        GateStatus.ALLOWED,
    ]
    assert [a.news for a in answers] == [True, True, False, False]
    assert desk.uow.commits == commits + 1
    assert answers[1].version == answers[3].version == desk.stored(ready).version


# -- which change a deployment belongs to --------------------------------------------------------


@pytest.mark.parametrize(
    ("git_ref", "number"),
    [
        ("refs/heads/release/CHG-42", 42),
        ("chg-0007-hotfix", 7),
        ("refs/tags/v1.2-CHG42", 42),
        ("main", None),
        ("MYCHG-42", None),
        ("CHG-0", None),
    ],
)
def test_a_change_is_found_by_the_reference_in_the_deployed_branch_or_tag(
    desk: Desk, git_ref: str, number: int | None
) -> None:
    assert find_change(desk.uow, git_ref, []) == number


def test_else_by_the_pull_request_of_the_deployed_commit(desk: Desk) -> None:
    pr = "https://github.com/Acme/API/pull/12"
    old = desk.request(normal_details(links=Links(pull_request=pr)))
    desk.cancel(old)
    newer = desk.request(normal_details(links=Links(pull_request=pr)))
    desk.request(normal_details(links=Links(pull_request="https://github.com/acme/api/pull/13")))

    assert find_change(desk.uow, "main", ["acme/api#12"]) == newer.number
    assert find_change(desk.uow, "main", ["acme/api#99"]) is None
    assert find_change(desk.uow, "release/CHG-5", ["acme/api#12"]) == 5  # the branch first

"""A change's evidence from fixed audit events: each event a plain sentence saying who did what,
when and under which rule, and the exceptions an auditor asks about first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.unit.builders import a_change, a_policy
from workflows.audit import AuditEntry
from workflows.events import Happened
from workflows.evidence import (
    Mark,
    Narrator,
    Part,
    approval_rule,
    exceptions,
    freeze_refusal,
    steps,
    when,
    who,
)
from workflows.model import Classification, Level, Stage

POLICY = a_policy(approvals="normal = 1\nnormal_high_risk = 2\nemergency = 1\nconflict_extra = 1")
AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def event(
    action: Happened | str, actor: str = "UALICE", minutes: int = 0, **details: Any
) -> AuditEntry:
    at = AT + timedelta(minutes=minutes)
    return AuditEntry(at, actor, str(action), "CHG-0007", "review", "review", details)


def told(entry: AuditEntry, classification: Classification = Classification.NORMAL) -> str:
    found = Narrator(POLICY, classification).step(entry)
    assert found is not None
    return found.sentence


def test_a_request_says_who_asked_for_what_and_when() -> None:
    entry = event(
        Happened.REQUESTED,
        title="Upgrade <db> & friends",
        classification="normal",
        scope="database",
        services=["payments"],
        risk="low",
        impact="medium",
        window=["2026-12-02T10:00:00+00:00", "2026-12-02T11:00:00+00:00"],
        rollback_given=True,
    )

    (step,) = steps(a_change(Classification.NORMAL, Stage.REVIEW), [entry], POLICY)

    assert step.part is Part.REQUEST and step.who == "UALICE" and step.at == AT
    assert step.sentence == (
        "UALICE requested this Normal change “Upgrade <db> & friends” (scope database; "
        "services payments; risk low, impact medium; window 2026-12-02 10:00 UTC to "
        "2026-12-02 11:00 UTC; rollback plan given)."
    )
    assert step.mark is None


def test_each_approval_names_the_rule_it_was_counted_under() -> None:
    normal = event(Happened.APPROVED, "UANNA", comment="Go ahead.")
    assert told(normal) == (
        "UANNA approved it under the Normal rule: 1 approval needed: “Go ahead.”"
    )
    emergency = event(Happened.APPROVED, "UEMMA", stands_for=["review", "test"])
    assert told(emergency, Classification.EMERGENCY) == (
        "UEMMA approved it under the Emergency rule: 1 approval needed; the approval stands "
        "for the compressed review and test."
    )


def test_the_reviewers_risk_and_a_conflicting_window_change_the_rule() -> None:
    narrator = Narrator(POLICY, Classification.NORMAL)
    narrator.step(event(Happened.REVIEWED, "UPETER", risk="high", assessment="Risky."))

    approval = narrator.step(event(Happened.APPROVED, "UANNA", conflicts=["CHG-0003"]))

    assert approval is not None and approval.part is Part.APPROVAL
    assert approval.sentence == (
        "UANNA approved it under the high-risk Normal rule: 2 approvals needed, and 1 more for "
        "its window overlapping another change's."
    )


def test_approval_rules_follow_the_policy() -> None:
    assert approval_rule(POLICY, Classification.NORMAL, Level.LOW) == (
        "the Normal rule: 1 approval needed"
    )
    assert approval_rule(POLICY, Classification.STANDARD, Level.LOW).startswith("the Standard rule")


def test_a_gate_answer_repeated_to_a_pipeline_asking_again_is_not_evidence() -> None:
    asked = {"status": "allowed", "service": "api", "environment": "production"}
    narrator = Narrator(POLICY, Classification.NORMAL)

    first = narrator.step(event(Happened.GATE_DECIDED, "pipeline:ci", news=True, **asked))
    again = narrator.step(event(Happened.GATE_DECIDED, "pipeline:ci", news=False, **asked))

    assert first is not None and first.part is Part.GATE
    assert first.sentence == "The gate allowed pipeline ci to deploy api to production."
    assert again is None


def test_a_review_after_its_deadline_is_marked_late() -> None:
    due = AT + timedelta(hours=48)
    outcome = event(
        Happened.OUTCOME_RECORDED,
        outcome="rolled_back",
        notes="Errors rose.",
        review_owed=True,
        review_due_at=due.isoformat(),
    )
    review = event(Happened.POST_CHANGE_REVIEW_SUBMITTED, minutes=49 * 60)
    change = a_change(Classification.EMERGENCY, Stage.CLOSED)

    recorded, reviewed = steps(change, [outcome, review], POLICY)

    assert recorded.sentence == (
        "UALICE recorded the outcome: Rolled back. “Errors rose.” A post-change review is owed "
        "by 2026-12-03 10:00 UTC."
    )
    assert reviewed.mark is Mark.REVIEW_LATE and reviewed.sentence.endswith("It was 1h late.")


def test_exceptions_of_a_change_link_to_it() -> None:
    change = a_change(Classification.EMERGENCY, Stage.CLOSED)
    events = [
        event(Happened.REQUESTED, classification="emergency", freezes=["Year-end freeze"]),
        event(Happened.BREAK_GLASS, waited_seconds=900, reason="Checkout is down"),
        event(
            Happened.UNGATED_DEPLOYMENT,
            "pipeline:ci",
            deployment="run-9",
            service="api",
            environment="production",
            reason="No allowed gate decision covered it.",
        ),
        event(Happened.APPROVALS_WITHDRAWN, withdrawn=["UANNA"], because=["window"]),
        event(Happened.CLOSED_WITHOUT_REVIEW, "UANNA", reason="Duplicate of CHG-0006"),
        event(Happened.TESTED, evidence="not an exception"),
    ]

    found = exceptions(change, events, POLICY, as_of=AT)

    assert [f.mark for f in found] == [
        Mark.EMERGENCY,
        Mark.IN_FREEZE,
        Mark.BREAK_GLASS,
        Mark.UNGATED,
        Mark.APPROVALS_WITHDRAWN,
        Mark.CLOSED_WITHOUT_REVIEW,
    ]
    assert {f.ref for f in found} == {change.ref}
    assert found[3].sentence == (
        "pipeline ci deployed api to production (run-9) without an allowed gate decision: "
        "No allowed gate decision covered it."
    )
    assert "because the window changed" in found[4].sentence


def test_a_review_still_owed_past_its_deadline_is_overdue() -> None:
    change = a_change(Classification.EMERGENCY, Stage.DEPLOY)
    change.review_owed, change.review_due_at = True, AT

    found = exceptions(change, [], POLICY, as_of=AT + timedelta(minutes=1))

    assert [f.mark for f in found] == [Mark.EMERGENCY, Mark.REVIEW_OVERDUE]
    assert exceptions(change, [], POLICY, as_of=AT - timedelta(minutes=1))[1:] == []


def test_a_refusal_in_a_freeze_is_an_exception_without_a_change() -> None:
    refused = AuditEntry(
        AT,
        "UALICE",
        Happened.FREEZE_REFUSED,
        "FREEZE",
        "",
        "",
        {
            "title": "Ship it",
            "window_start": "2026-12-24T10:00:00+00:00",
            "window_end": "2026-12-24T11:00:00+00:00",
            "freezes": ["Holidays"],
        },
    )

    found = freeze_refusal(refused)

    assert found.ref == "" and found.mark is Mark.FREEZE_REFUSED and found.title == "Ship it"
    assert found.sentence == (
        "UALICE asked for a window from 2026-12-24 10:00 UTC to 2026-12-24 11:00 UTC, refused "
        "because of Holidays."
    )


def test_an_unknown_or_malformed_event_still_reads_as_a_sentence() -> None:
    assert told(event("something_new", "system")) == "changebot: something new."
    assert told(event(Happened.APPROVED, "UANNA", conflicts=7, comment=3)) == (
        "UANNA approved it under the Normal rule: 1 approval needed."
    )
    assert told(event(Happened.OUTCOME_RECORDED, outcome="sideways")).startswith(
        "UALICE recorded the outcome: sideways."
    )


def test_people_and_pipelines_and_times_read_plainly() -> None:
    assert who("system") == "changebot"
    assert who("pipeline:github") == "GitHub"
    assert who("pipeline:deploy-prod") == "pipeline deploy-prod"
    assert when(datetime(2026, 12, 1, 11, 30)) == "2026-12-01 11:30 UTC"

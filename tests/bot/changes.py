"""Changes in every stage of every classification, made by running the real use cases on the
in-memory fakes, so the views are tested on changes the process can really produce."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.unit.builders import NOW, emergency_details, normal_details, standard_details
from tests.unit.fakes import FakeClock, FakeUnitOfWork
from workflows import deployments, emergency, gate, process
from workflows.audit import AuditEntry
from workflows.deployments import Report
from workflows.gate import Asked, Question, Target
from workflows.model import (
    GITHUB_PIPELINE,
    Actor,
    Change,
    ChangeDetails,
    Classification,
    Level,
    Outcome,
    PostChangeReview,
    Rollback,
    Stage,
)
from workflows.policy import Policy, parse_policy

ALICE = Actor("UALICE")  # requests changes
IVAN = Actor("UIVAN")  # implements them
ANNA = Actor("UANNA")  # approver
ARTHUR = Actor("UARTHUR")  # approver
EMMA = Actor("UEMMA")  # emergency approver
PETER = Actor("UPETER")  # a peer: reviews and tests


_EMERGENCY_APPROVERS = """
[emergency]
approver_users = ["UEMMA"]
approver_groups = ["SONCALL"]
"""
_POLICY = """
[policy]
name = "Test policy"
owner = "UOWNER"
last_reviewed = 2026-01-05
review_every = "180d"

[approvers]
users = ["UANNA", "UARTHUR"]
groups = ["SCAB"]
{emergency}
[[scope]]
id = "code"
name = "Code deployment"

[[scope]]
id = "database"
name = "Database schema change or data migration"

[[catalog]]
id = "restart-service"
name = "Rolling restart of a stateless service"
version = "3"
runbook = "https://example.com/runbooks/restart"
scope = "code"
"""


def a_policy(*, own_emergency_approvers: bool = True, extra: str = "") -> Policy:
    """The test policy; `extra` adds tables at its end (a [[freeze]], say)."""
    emergency = _EMERGENCY_APPROVERS if own_emergency_approvers else ""
    return parse_policy(_POLICY.format(emergency=emergency) + extra, "test policy")


@dataclass
class Desk:
    """The use cases with everyday defaults: who usually does what, with plausible words."""

    policy: Policy = field(default_factory=a_policy)
    uow: FakeUnitOfWork = field(default_factory=FakeUnitOfWork)
    clock: FakeClock = field(default_factory=FakeClock)

    def _run(self, use_case: Callable[..., Change], change: Change, by: Actor, **kw: Any) -> Change:
        return use_case(self.uow, self.clock, self.policy, change.number, by, **kw)

    def stored(self, change: Change) -> Change:
        return self.uow.changes.get(change.number)

    def request(
        self, details: ChangeDetails | None = None, by: Actor = ALICE, *, submit: bool = True
    ) -> Change:
        details = details or normal_details()
        return process.request_change(
            self.uow, self.clock, self.policy, by, details, submit=submit
        ).change

    def submit(self, change: Change, by: Actor = ALICE) -> Change:
        return self._run(process.submit, change, by)

    def review(
        self, change: Change, by: Actor = PETER, *, assessment: str = "Small and easy to revert."
    ) -> Change:
        risk = self.stored(change).details.risk
        return self._run(process.record_review, change, by, assessment=assessment, risk=risk)

    def add_evidence(
        self, change: Change, by: Actor = PETER, *, evidence: str = "Green in staging."
    ) -> Change:
        return self._run(process.add_test_evidence, change, by, evidence=evidence)

    def approve(self, change: Change, by: Actor = ANNA, *, comment: str = "") -> Change:
        return self._run(process.approve, change, by, comment=comment)

    def reject(
        self, change: Change, by: Actor = ANNA, *, reason: str = "Needs a canary."
    ) -> Change:
        return self._run(process.reject, change, by, reason=reason)

    def start_deployment(self, change: Change, by: Actor = ALICE) -> Change:
        return self._run(process.start_deployment, change, by)

    def record_outcome(
        self, change: Change, outcome: Outcome = Outcome.SUCCESSFUL, *, notes: str = ""
    ) -> Change:
        if outcome is not Outcome.SUCCESSFUL and not notes:
            notes = "Error rate rose after the switch."
        return self._run(process.record_outcome, change, ALICE, outcome=outcome, notes=notes)

    def submit_post_change_review(
        self, change: Change, review: PostChangeReview | None = None
    ) -> Change:
        if review is None:
            owed = self.stored(change).owed_documents
            review = PostChangeReview(
                by="",
                at=NOW,
                what_was_done="Blocked the client's IP range at the gateway.",
                why_it_could_not_wait="It was taking the API down.",
                root_cause="A client retry loop without backoff.",
                classification_justified=True,
                follow_ups="Rate-limit per client.",
                contributed_to_incident=False,
                documentation={doc: f"The {doc}, after the fact." for doc in owed},
            )
        return process.submit_post_change_review(
            self.uow, self.clock, self.policy, change.number, ALICE, review
        )

    def edit(self, change: Change, by: Actor = ALICE, **fields: Any) -> Change:
        details = self.stored(change).details.with_changes(**fields)
        return self._run(process.edit, change, by, details=details)

    def cancel(
        self, change: Change, by: Actor = ALICE, *, reason: str = "No longer needed."
    ) -> Change:
        return self._run(process.cancel, change, by, reason=reason)

    def normal_change_in(self, stage: Stage, details: ChangeDetails | None = None) -> Change:
        """A Normal change walked by the usual people to `stage` (DEPLOY: authorised)."""
        change = self.request(details, submit=stage is not Stage.REQUEST)
        for step in (self.review, self.add_evidence, self.approve):
            if change.stage is stage:
                break
            change = step(change)
        assert change.stage is stage, f"could not walk a Normal change to {stage}"
        return change

    def deploying(self, details: ChangeDetails | None = None) -> Change:
        details = details or normal_details()
        change = self.request(details)
        if details.classification is Classification.NORMAL:
            change = self.approve(self.add_evidence(self.review(change)))
        elif details.classification is Classification.EMERGENCY:
            change = self.approve(change, by=EMMA)
        return self.start_deployment(change)


def _broken_glass(desk: Desk) -> Change:
    change = desk.request(emergency_details())
    desk.clock.advance(hours=1)
    return desk._run(emergency.break_glass, change, ALICE, reason="Checkout is down.")


def _closed_without_review(desk: Desk) -> Change:
    change = _emergency_failed(desk)
    return desk._run(process.close_without_review, change, EMMA, reason="The owner left.")


def _ask(desk: Desk, change: Change, service: str = "api", pipeline: str = "ci-prod") -> None:
    question = Question(
        change.number,
        Target(service, "production", "acme/api", "47efb7196c2a"),
        Asked(pipeline, run="https://ci.example.com/runs/7", triggered_by="octocat"),
    )
    gate.ask(desk.uow, desk.clock, desk.policy, question)


def _in_window(desk: Desk, change: Change) -> None:
    window = desk.stored(change).details.window
    assert window is not None
    desk.clock.current = window.start


def _held_by_the_gate(desk: Desk) -> Change:
    change = desk.normal_change_in(Stage.APPROVE)
    _ask(desk, change)
    return change


def _deployed_by_a_pipeline(desk: Desk, outcome: Outcome = Outcome.SUCCESSFUL) -> Change:
    change = desk.normal_change_in(Stage.DEPLOY, normal_details(services=("api", "worker")))
    _in_window(desk, change)
    for service in ("api", "worker"):
        _ask(desk, change, service)
        report = Report(f"run-{service}", Target(service, "production"), "octocat")
        deployments.report_started(desk.uow, desk.clock, desk.policy, change.number, "ci", report)
    for service, ended in (("api", Outcome.SUCCESSFUL), ("worker", outcome)):
        deployments.report_finished(
            desk.uow, desk.clock, desk.policy, change.number, "ci", f"run-{service}", ended
        )
    return change


def _deployed_outside_the_gate(desk: Desk) -> Change:
    change = desk.normal_change_in(Stage.APPROVE)
    report = Report("hotfix-1", Target("api", "production"), "UIVAN")
    deployments.report_started(desk.uow, desk.clock, desk.policy, change.number, "ci", report)
    return change


def _github_refused(desk: Desk) -> Change:
    change = desk.cancel(desk.normal_change_in(Stage.APPROVE), reason="Superseded.")
    _ask(desk, change, pipeline=GITHUB_PIPELINE)
    return change


def a_desk() -> Desk:
    return Desk()


def entries(desk: Desk) -> list[AuditEntry]:
    return [event.entry for event in desk.uow.audit.events]


def _normal(desk: Desk) -> Change:
    return desk.request(normal_details(implementer=IVAN.user_id))


def _authorised(desk: Desk) -> Change:
    return desk.normal_change_in(Stage.DEPLOY, normal_details(implementer=IVAN.user_id))


def _high_risk_half_approved(desk: Desk) -> Change:
    return desk.approve(desk.normal_change_in(Stage.APPROVE, normal_details(risk=Level.HIGH)))


def _emergency(desk: Desk) -> Change:
    return desk.request(emergency_details())


def _emergency_failed(desk: Desk) -> Change:
    return desk.record_outcome(desk.deploying(emergency_details()), Outcome.FAILED)


#: name -> how to get there. Together they visit every stage of every classification.
SCENARIOS: dict[str, Callable[[Desk], Change]] = {
    "normal draft": lambda d: d.request(submit=False),
    "normal in review": _normal,
    "normal in test": lambda d: d.review(_normal(d)),
    "normal in approve": lambda d: d.add_evidence(d.review(_normal(d))),
    "normal half approved": _high_risk_half_approved,
    "normal authorised": _authorised,
    "normal deploying": lambda d: d.deploying(),
    "normal rolled back": lambda d: d.record_outcome(d.deploying(), Outcome.ROLLED_BACK),
    "normal closed": lambda d: d.record_outcome(d.deploying()),
    "normal reviewed after failing": lambda d: d.submit_post_change_review(
        d.record_outcome(d.deploying(), Outcome.FAILED)
    ),
    "normal rejected": lambda d: d.reject(d.add_evidence(d.review(_normal(d)))),
    "normal rejected twice": lambda d: d.reject(d.submit(d.reject(_normal(d))), by=ARTHUR),
    "normal cancelled": lambda d: d.cancel(_normal(d)),
    "normal cancelled when authorised": lambda d: d.cancel(_authorised(d), by=ANNA),
    "normal edited when authorised": lambda d: d.edit(_authorised(d), title="Raise it to 60"),
    "normal reclassified": lambda d: d.edit(
        _authorised(d), classification=Classification.EMERGENCY
    ),
    "normal not reversible": lambda d: d.request(
        normal_details(rollback=Rollback(not_reversible_reason="Drops a column."))
    ),
    "standard draft": lambda d: d.request(standard_details(), submit=False),
    "standard authorised": lambda d: d.request(standard_details()),
    "standard deploying": lambda d: d.deploying(standard_details()),
    "standard closed": lambda d: d.record_outcome(d.deploying(standard_details())),
    "standard cancelled": lambda d: d.cancel(d.request(standard_details())),
    "emergency in review": _emergency,
    "emergency in test": lambda d: d.review(_emergency(d)),
    "emergency authorised": lambda d: d.approve(_emergency(d), by=EMMA),
    "emergency authorised in test": lambda d: d.approve(d.review(_emergency(d)), by=EMMA),
    "emergency deploying": lambda d: d.deploying(emergency_details()),
    "emergency review owed": _emergency_failed,
    "emergency closed": lambda d: d.submit_post_change_review(_emergency_failed(d)),
    "emergency cancelled": lambda d: d.cancel(_emergency(d)),
    "emergency after break-glass": _broken_glass,
    "emergency approved in retrospect": lambda d: d.approve(_broken_glass(d), by=EMMA),
    "emergency closed without review": _closed_without_review,
    "normal held by the gate": _held_by_the_gate,
    "normal deployed by pipelines": _deployed_by_a_pipeline,
    "normal rolled back by a pipeline": lambda d: _deployed_by_a_pipeline(d, Outcome.ROLLED_BACK),
    "normal deployed outside the gate": _deployed_outside_the_gate,
    "normal cancelled, GitHub refused": _github_refused,
}


def every_change() -> Iterator[tuple[str, Desk, Change]]:
    for name, make in SCENARIOS.items():
        desk = a_desk()
        change = make(desk)
        yield name, desk, desk.stored(change)

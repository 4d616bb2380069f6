"""The people, the policy and the requests the unit tests are built from, and a desk that runs
the use cases with everyday defaults so each test states only what it is about."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.unit.fakes import FakeClock, FakeUnitOfWork
from workflows import emergency, followup, process
from workflows.audit import ChainedEntry
from workflows.chase import Obligation, Owed
from workflows.freezes import Freeze
from workflows.model import (
    Actor,
    Answer,
    Change,
    ChangeDetails,
    Classification,
    Level,
    Links,
    Outcome,
    PostChangeReview,
    Rollback,
    Stage,
    Window,
)
from workflows.policy import Policy, parse_policy
from workflows.schedule import Booking

# -- people -------------------------------------------------------------------------------

ALICE = Actor("UALICE")  # requests changes
IVAN = Actor("UIVAN")  # implements them
ANNA = Actor("UANNA")  # approver, by name
ARTHUR = Actor("UARTHUR")  # approver, by name
GRACE = Actor("UGRACE", frozenset({"SCAB"}))  # approver, through the CAB user group
EMMA = Actor("UEMMA")  # emergency approver, by name
OSCAR = Actor("UOSCAR", frozenset({"SONCALL"}))  # emergency approver, through on-call group
PETER = Actor("UPETER")  # a peer: reviews and tests, approves nothing
BOB = Actor("UBOB")  # a bystander
POLLY = Actor("UOWNER")  # owns the change policy

EVERYONE = (ALICE, IVAN, ANNA, ARTHUR, GRACE, EMMA, OSCAR, PETER, BOB)

# -- the policy ---------------------------------------------------------------------------

POLICY_TOML = """
[policy]
name = "Test policy"
owner = "UOWNER"
last_reviewed = 2026-01-05
review_every = "180d"

[approvers]
users = ["UANNA", "UARTHUR"]
groups = ["SCAB"]

[approvals]
normal = 1
normal_high_risk = 2
emergency = 1

[emergency]
approver_users = ["UEMMA"]
approver_groups = ["SONCALL"]
review_deadline = "48h"

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


def a_policy(**sections: str) -> Policy:
    """The test policy, with whole TOML sections replaced: a_policy(emergency='...')."""
    text = POLICY_TOML
    for name, body in sections.items():
        start = text.index(f"[{name}]")
        end = text.index("\n[", start + 1)
        text = text[:start] + f"[{name}]\n{body}\n" + text[end:]
    return parse_policy(text, "test policy")


#: A freeze from Friday 16:00 for 64 hours, Berlin time: the weekends, across daylight saving.
WEEKEND = """
[[freeze]]
name = "Weekend"
reason = "Nobody is around to fix it."
rrule = "FREQ=WEEKLY;BYDAY=FR"
start = 2026-01-02T16:00:00
duration = "64h"
timezone = "Europe/Berlin"
"""

#: A risk questionnaire: a total under 3 is Low, from 3 Medium, from 6 High. Testing in
#: staging takes one off, so the answers can total -1.
QUESTIONNAIRE = """
[risk]
low = { below = 3 }
medium = { from = 3, below = 6 }
high = { from = 6 }

[[risk.question]]
id = "customers"
text = "Will customers notice if it goes wrong?"
answers = [{ label = "Yes", weight = 3 }, { label = "No", weight = 0 }]

[[risk.question]]
id = "reversible"
text = "Can it be undone within minutes?"
hint = "A redeploy of the previous version counts; restoring a backup does not."
answers = [{ label = "Yes", weight = 0 }, { label = "No", weight = 2 }]

[[risk.question]]
id = "data"
text = "Does it touch stored data?"
answers = [
  { label = "No", weight = 0 },
  { label = "Schema only", weight = 1 },
  { label = "Rewrites data", weight = 3 },
]

[[risk.question]]
id = "staging"
text = "Was it tested in staging?"
answers = [{ label = "Yes", weight = -1 }, { label = "No", weight = 1.5 }]
"""


def answered(**picked: str) -> tuple[Answer, ...]:
    """Answers to QUESTIONNAIRE, as the form gives them: answered(customers="Yes", ...)."""
    return tuple(Answer(question, choice) for question, choice in picked.items())


#: Answers to QUESTIONNAIRE that total -1 (tested in staging, nothing else): Low.
ROUTINE = answered(customers="No", reversible="Yes", data="No", staging="Yes")
#: Answers that total 3 + 2 + 3 - 1 = 7: High.
RISKY = answered(customers="Yes", reversible="No", data="Rewrites data", staging="Yes")


def weekend(**fields: object) -> Freeze:
    """The WEEKEND freeze as the policy reads it, with `fields` changed."""
    return Freeze.model_validate({**tomllib.loads(WEEKEND)["freeze"][0], **fields})


# -- time and the schedule ----------------------------------------------------------------


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def a_booking(
    number: int, start: datetime, hours: float = 1, *services: str, **fields: object
) -> Booking:
    """An open Normal change booked from `start` for `hours` on `services` (api), awaiting
    approval; `fields` change the rest (a `window` given wins over start and hours)."""
    booked: dict[str, object] = {
        "number": number,
        "title": f"Change {number}",
        "classification": Classification.NORMAL,
        "stage": Stage.APPROVE,
        "services": services or ("api",),
        "window": Window(start, start + timedelta(hours=hours)),
        "occupies": True,
    }
    return Booking(**{**booked, **fields})  # type: ignore[arg-type]


# -- requests -----------------------------------------------------------------------------

NOW = FakeClock().now()
TOMORROW = Window(NOW + timedelta(days=1), NOW + timedelta(days=1, hours=1))


def normal_details(**fields: Any) -> ChangeDetails:
    return ChangeDetails(
        title="Raise the API connection pool to 50",
        classification=Classification.NORMAL,
        scope="code",
        description="The pool runs dry at peak; 50 leaves headroom.",
        services=("api",),
        rollback=Rollback(plan="Revert the commit and redeploy."),
        window=TOMORROW,
        links=Links(pull_request="https://example.com/pr/1"),
    ).with_changes(**fields)


def standard_details(**fields: Any) -> ChangeDetails:
    return ChangeDetails(
        title="Restart the API after the config push",
        classification=Classification.STANDARD,
        scope="code",
        services=("api",),
        window=TOMORROW,
        procedure_id="restart-service",
    ).with_changes(**fields)


def emergency_details(**fields: Any) -> ChangeDetails:
    return ChangeDetails(
        title="Block the abusive client at the gateway",
        classification=Classification.EMERGENCY,
        scope="code",
    ).with_changes(**fields)


DETAILS = {
    Classification.NORMAL: normal_details,
    Classification.STANDARD: standard_details,
    Classification.EMERGENCY: emergency_details,
}


def a_post_change_review(**documentation: str) -> PostChangeReview:
    return PostChangeReview(
        by="",
        at=NOW,
        what_was_done="Blocked the client's IP range at the gateway.",
        why_it_could_not_wait="It was taking the API down.",
        root_cause="A client retry loop without backoff.",
        classification_justified=True,
        follow_ups="Rate-limit per client.",
        contributed_to_incident=False,
        documentation=documentation,
    )


def a_change(
    classification: Classification = Classification.NORMAL,
    stage: Stage = Stage.REQUEST,
    **state: Any,
) -> Change:
    """A change as the store might hand it back, requested by Alice for Ivan to implement."""
    state = {"requester": ALICE.user_id, **state}
    details = DETAILS[classification](implementer=IVAN.user_id)
    return Change(number=7, details=details, created_at=NOW, stage=stage, **state)


# -- running the use cases ----------------------------------------------------------------


@dataclass
class Desk:
    """The use cases with everyday defaults: who usually does what, with plausible words."""

    uow: FakeUnitOfWork
    clock: FakeClock
    policy: Policy

    def request(
        self, details: ChangeDetails | None = None, by: Actor = ALICE, *, submit: bool = True
    ) -> Change:
        details = details or normal_details()
        return process.request_change(
            self.uow, self.clock, self.policy, by, details, submit=submit
        ).change

    def submit(self, change: Change, by: Actor = ALICE, **kw: Any) -> Change:
        return process.submit(self.uow, self.clock, self.policy, change.number, by, **kw)

    def review(
        self,
        change: Change,
        by: Actor = PETER,
        *,
        risk: Level | None = None,
        assessment: str = "Small, well understood, easy to revert.",
        **kw: Any,
    ) -> Change:
        risk = risk or self.stored(change).details.risk
        return process.record_review(
            self.uow,
            self.clock,
            self.policy,
            change.number,
            by,
            assessment=assessment,
            risk=risk,
            **kw,
        )

    def add_evidence(
        self, change: Change, by: Actor = PETER, *, evidence: str = "Green in staging.", **kw: Any
    ) -> Change:
        return process.add_test_evidence(
            self.uow, self.clock, self.policy, change.number, by, evidence=evidence, **kw
        )

    def approve(self, change: Change, by: Actor = ANNA, **kw: Any) -> Change:
        return process.approve(self.uow, self.clock, self.policy, change.number, by, **kw)

    def reject(
        self, change: Change, by: Actor = ANNA, *, reason: str = "Needs a canary.", **kw: Any
    ) -> Change:
        return process.reject(
            self.uow, self.clock, self.policy, change.number, by, reason=reason, **kw
        )

    def start_deployment(self, change: Change, by: Actor = ALICE, **kw: Any) -> Change:
        return process.start_deployment(self.uow, self.clock, self.policy, change.number, by, **kw)

    def record_outcome(
        self,
        change: Change,
        outcome: Outcome = Outcome.SUCCESSFUL,
        by: Actor = ALICE,
        *,
        notes: str | None = None,
        **kw: Any,
    ) -> Change:
        if notes is None:
            notes = "" if outcome is Outcome.SUCCESSFUL else "Error rate rose after the switch."
        return process.record_outcome(
            self.uow,
            self.clock,
            self.policy,
            change.number,
            by,
            outcome=outcome,
            notes=notes,
            **kw,
        )

    def submit_post_change_review(
        self,
        change: Change,
        by: Actor = ALICE,
        review: PostChangeReview | None = None,
        **kw: Any,
    ) -> Change:
        if review is None:
            owed = self.stored(change).owed_documents
            review = a_post_change_review(**{doc: f"The {doc}, after the fact." for doc in owed})
        return process.submit_post_change_review(
            self.uow, self.clock, self.policy, change.number, by, review, **kw
        )

    def edit(
        self, change: Change, by: Actor = ALICE, *, seen_stage: Stage | None = None, **fields: Any
    ) -> Change:
        details = self.stored(change).details.with_changes(**fields)
        return process.edit(
            self.uow, self.clock, self.policy, change.number, by, details, seen_stage=seen_stage
        )

    def declare_emergency(self, text: str, by: Actor = ALICE, **kw: Any) -> Change:
        return emergency.declare_emergency(self.uow, self.clock, self.policy, by, text, **kw)

    def break_glass(self, change: Change, by: Actor = ALICE, **kw: Any) -> Change:
        return emergency.break_glass(self.uow, self.clock, self.policy, change.number, by, **kw)

    def snooze(
        self, kind: Owed, change: Change | None, by: Actor = ALICE, *, choice: str = "1h"
    ) -> Obligation:
        """Snooze a reminder about the change, or (change None) about the policy review."""
        number = change.number if change else 0
        return followup.snooze_reminder(
            self.uow, self.clock, self.policy, kind, number, by, choice=choice
        )

    def ensure_policy_review(self) -> Obligation:
        return followup.ensure_policy_review(self.uow, self.clock, self.policy)

    def record_policy_review(self, by: Actor = POLLY, *, note: str = "") -> Obligation:
        return followup.record_policy_review(self.uow, self.clock, self.policy, by, note=note)

    def close_without_review(
        self, change: Change, by: Actor = ANNA, *, reason: str = "The owner left.", **kw: Any
    ) -> Change:
        return process.close_without_review(
            self.uow, self.clock, self.policy, change.number, by, reason=reason, **kw
        )

    def cancel(
        self, change: Change, by: Actor = ALICE, *, reason: str = "No longer needed.", **kw: Any
    ) -> Change:
        return process.cancel(
            self.uow, self.clock, self.policy, change.number, by, reason=reason, **kw
        )

    # -- looking at what was written --------------------------------------------------------

    def stored(self, change: Change) -> Change:
        return self.uow.changes.get(change.number)

    def trail(self, change: Change) -> list[ChainedEntry]:
        return [e for e in self.uow.audit.events if e.entry.ref == change.ref]

    def actions(self, change: Change) -> list[str]:
        return self.uow.audit.actions(change.ref)

    def last_entry(self, change: Change, action: str) -> ChainedEntry:
        return [e for e in self.trail(change) if e.entry.action == action][-1]

    def owed(self, kind: Owed, change: Change | None = None) -> Obligation | None:
        """The committed obligation about the change (None: the policy review), if open."""
        return self.uow.obligations.committed.get((kind, change.number if change else 0))

    # -- getting a change to where a test starts ----------------------------------------------

    def normal_change_in(self, stage: Stage, details: ChangeDetails | None = None) -> Change:
        """A Normal change walked by the usual people to `stage`; in Deploy, not yet started."""
        change = self.request(details, submit=stage is not Stage.REQUEST)
        path = [
            (Stage.TEST, self.review),
            (Stage.APPROVE, self.add_evidence),
            (Stage.DEPLOY, self.approve),
        ]
        for reached, step in path:
            if change.stage is stage:
                break
            change = step(change)
            assert change.stage is reached
        assert change.stage is stage, f"could not walk a Normal change to {stage}"
        return change

    def deploying(self, details: ChangeDetails | None = None) -> Change:
        """A change whose deployment has started, walked by the usual people."""
        details = details or normal_details()
        change = self.request(details)
        if details.classification is Classification.NORMAL:
            change = self.approve(self.add_evidence(self.review(change)))
        elif details.classification is Classification.EMERGENCY:
            change = self.approve(change, by=EMMA)
        return self.start_deployment(change)


# -- checking that nothing was written ----------------------------------------------------


@contextmanager
def nothing_written(uow: FakeUnitOfWork) -> Iterator[None]:
    """The refused block leaves the store, the trail and what is owed as they were.

    The fake hands out copies and replaces what it commits, so an unwritten change is still
    the very object it was.
    """
    changes, events, commits = dict(uow.changes.committed), list(uow.audit.events), uow.commits
    owed = dict(uow.obligations.committed)
    yield
    assert uow.obligations.committed == owed
    assert not uow.obligations.pending
    assert uow.changes.committed.keys() == changes.keys()
    assert all(uow.changes.committed[n] is change for n, change in changes.items())
    assert uow.audit.events == events
    assert uow.commits == commits
    assert not uow.changes.pending
    assert not uow.audit.pending

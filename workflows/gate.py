"""The deploy gate: may this deployment go ahead now? Answered from the change record alone.

A pipeline (or GitHub, for an environment protected by changebot) names the change, the
service and the environment it is about to deploy. Only an authorised change, inside its
window, for a service it names, is `allowed`; a change still on its way is `awaiting`, with
what it waits for; one that will never be deployable as it stands is `prevented`; a question
the gate cannot answer (no such change, an environment it does not gate) is `invalid`. Every
answer carries its reasons as sentences a pipeline log can show, and every answer is recorded
in the audit trail.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from workflows import approval_rules
from workflows.audit import AuditEntry
from workflows.errors import ValidationFailed
from workflows.events import Happened
from workflows.freezes import INSTANT, Occurrence, blocking, described
from workflows.model import (
    Change,
    Classification,
    GateCheck,
    GateStatus,
    Stage,
    format_ref,
    gate_key,
    pipeline_actor,
    ref_in,
)
from workflows.policy import Policy
from workflows.ports import Clock, UnitOfWork
from workflows.validation import LIMITS, check_line, check_link

#: The audit trail's ref for a decision about a change that does not exist.
GATE_REF = "GATE"
DECIDED = Happened.GATE_DECIDED

#: When several answers make one (a GitHub deployment of several services), the worst wins.
_WORST_FIRST = (GateStatus.INVALID, GateStatus.PREVENTED, GateStatus.AWAITING, GateStatus.ALLOWED)


@dataclass(frozen=True)
class Target:
    """What is about to be deployed, and where."""

    service: str
    environment: str
    repository: str = ""
    commit: str = ""


def check_target(target: Target) -> Target:
    """The target as a pipeline wrote it, trimmed, or ValidationFailed naming the field."""
    repository = check_line("repository", target.repository, 200)
    if repository and not _REPOSITORY.match(repository):
        raise ValidationFailed(
            "repository", "write it as owner/name (or group/…/name), for example acme/payments."
        )
    commit = check_line("commit", target.commit, 64)
    if commit and not _COMMIT.match(commit):
        raise ValidationFailed("commit", "write the commit's SHA (7 to 64 hexadecimal digits).")
    checked = (
        check_line("service", target.service, LIMITS["service"], required=True),
        check_line("environment", target.environment, 100, required=True),
        repository,
        commit.lower(),
    )
    if checked == (target.service, target.environment, target.repository, target.commit):
        return target  # as written: every question a pipeline sends again, nearly always
    return Target(*checked)


_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
_COMMIT = re.compile(r"^[0-9a-fA-F]{7,64}$")


@dataclass(frozen=True)
class Decision:
    status: GateStatus
    reasons: tuple[str, ...]
    #: When the passing of time alone could change the answer (a window that opens later).
    recheck_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        """Allowed, prevented or invalid: nothing to wait for."""
        return self.status is not GateStatus.AWAITING


def decide(
    change: Change | None, ref: str, target: Target, policy: Policy, now: datetime
) -> Decision:
    """The gate's answer for deploying `target` under the change `ref` at `now`."""
    environment, service = target.environment.strip(), target.service.strip()
    if not policy.gate.gates(environment):
        gated = ", ".join(policy.gate.environments)
        return _invalid(
            f"changebot gates deployments to {gated}; {environment!r} is not one of them. Ask "
            f"the gate only about those, or add {environment!r} to gate.environments in the "
            "change policy."
        )
    if change is None:
        return _invalid(
            f"There is no change {ref}. Request one with /change in Slack and deploy with its "
            "reference."
        )
    if change.stage is Stage.CANCELLED:
        return _prevented(f"{ref} was cancelled: “{change.cancel_reason}”. Request a new change.")
    if change.stage is Stage.CLOSED:
        return _prevented(f"{ref} is closed{_ended(change)}. A new deployment needs a new change.")
    if (not_named := _service_not_named(change, service)) is not None:
        return _prevented(not_named)
    if change.outcome is not None:
        return _prevented(
            f"{ref}'s deployment is over{_ended(change)}. A new deployment needs a new change."
        )
    if change.stage is Stage.DEPLOY:
        return _deployable(change, service, policy, now)
    return _on_its_way(change, policy, now)


def combine(decisions: Iterable[Decision]) -> Decision:
    """One answer for several: the worst status, every reason once, the earliest recheck."""
    decided = list(decisions)
    status = min((d.status for d in decided), key=_WORST_FIRST.index)
    reasons = tuple(dict.fromkeys(r for d in decided for r in d.reasons))
    rechecks = [d.recheck_at for d in decided if d.recheck_at is not None]
    recheck = min(rechecks) if rechecks and status is GateStatus.AWAITING else None
    return Decision(status, reasons, recheck)


def _invalid(reason: str) -> Decision:
    return Decision(GateStatus.INVALID, (reason,))


def _prevented(reason: str) -> Decision:
    return Decision(GateStatus.PREVENTED, (reason,))


def _service_not_named(change: Change, service: str) -> str | None:
    named = change.details.services
    if not named and change.classification is Classification.EMERGENCY:
        return None  # declared in one line mid-incident: it covers what it deploys
    if service.lower() in {s.lower() for s in named}:
        return None
    listed = ", ".join(named) or "no services"
    return (
        f"{change.ref} names {listed}; {service!r} is not one of them. Deploy only what the "
        f"change names, or edit it to add {service!r} (its approvals are then withdrawn)."
    )


def _held_by_freeze(change: Change, frozen: Occurrence) -> Decision:
    """Authorised, but a freeze forbids deploying it now: held until the freeze ends if the
    window is still open then, else prevented (a new window is needed)."""
    ref, window = change.ref, change.details.window
    if window is not None and frozen.end >= window.end:
        return _prevented(
            f"{ref} is authorised, but {described(frozen)}, past the end of its window "
            f"({when(window.end)}). Edit the change with a window after the freeze (it will "
            "need approving again)."
        )
    return Decision(
        GateStatus.AWAITING,
        (f"{ref} is authorised, but {described(frozen)}; the gate allows it from then.",),
        recheck_at=frozen.end,
    )


def _deployable(change: Change, service: str, policy: Policy, now: datetime) -> Decision:
    """Authorised (or under break-glass): allowed inside its window."""
    ref, window = change.ref, change.details.window
    if window is not None and now < window.start:
        return Decision(
            GateStatus.AWAITING,
            (
                f"{ref} is authorised, but its window opens at {when(window.start)}; the gate "
                f"allows it from then until {when(window.end)}.",
            ),
            recheck_at=window.start,
        )
    if window is not None and now >= window.end:
        return _prevented(
            f"{ref}'s window closed at {when(window.end)}. Edit the change with a new window "
            "(it will need approving again)."
        )
    frozen = blocking(policy.freeze, now, now + INSTANT, (service,), change.classification)
    if frozen:
        return _held_by_freeze(change, max(frozen, key=lambda one: one.end))
    reasons = [_authority(change)]
    if window is not None:
        reasons.append(f"Its window is open until {when(window.end)}.")
    if not change.details.services:
        reasons.append(
            f"{ref} names no services yet, so it covers {service!r}; name them when you add "
            "its details."
        )
    return Decision(GateStatus.ALLOWED, tuple(reasons))


def _authority(change: Change) -> str:
    ref = change.ref
    if change.break_glass_at is not None:
        by = change.break_glass_by or change.deployed_by or change.requester
        return (
            f"{ref} is deploying under break-glass by {by} since {when(change.break_glass_at)}; "
            "an approval is owed in retrospect."
        )
    if change.classification is Classification.STANDARD:
        procedure = next((a.comment for a in change.approvals if a.kind == "procedure"), "")
        return f"{ref} is pre-approved by the Standard procedure {procedure}."
    approvers = ", ".join(change.approvers())
    if change.classification is Classification.EMERGENCY:
        return f"{ref} is an authorised emergency change, approved by {approvers}."
    return f"{ref} is authorised, approved by {approvers}."


def _on_its_way(change: Change, policy: Policy, now: datetime) -> Decision:
    """In Request, Review, Test or Approve: what it waits for, or why it never will."""
    ref = change.ref
    if change.stage is Stage.REQUEST:
        rejected = change.rejections[-1] if change.rejections else None
        if rejected is not None and rejected.at >= (change.submitted_at or change.created_at):
            return _prevented(
                f"{ref} was rejected by {rejected.by} in {rejected.stage.label}: "
                f"“{rejected.reason}”. It is back in Request: fix it and submit it again."
            )
    window = change.details.window
    if window is not None and now >= window.end:  # no approval can make it deployable now
        return _prevented(
            f"{ref}'s window closed at {when(window.end)} before it was authorised. Edit the "
            "change with a new window, then see it through to approval."
        )
    if change.stage is Stage.REQUEST:
        return Decision(
            GateStatus.AWAITING, (f"{ref} is in Request: it must be submitted for review.",)
        )
    needed = policy.required_approvals(change.classification, change.risk)
    have = len(change.approvers())
    if change.classification is Classification.EMERGENCY:
        reasons = [f"{ref} is waiting for an emergency approval ({have} of {needed})."]
        if policy.emergency.break_glass_allowed:
            opens = change.approvers_asked_at + policy.emergency.break_glass_after
            if opens > now:
                reasons.append(
                    f"If no approver acts, its requester may break glass from {when(opens)}."
                )
            else:
                reasons.append("No approver has acted: its requester may break glass now.")
        return Decision(GateStatus.AWAITING, tuple(reasons))
    approvals = f"{needed} approval{'s' if needed != 1 else ''}"
    waits = {
        Stage.REVIEW: f"its peer review, then test evidence from staging and {approvals}",
        Stage.TEST: f"test evidence from staging, then {approvals}",
        Stage.APPROVE: f"approval: it has {have} of the {approvals} it needs",
    }
    rules = approval_rules.progress(change, policy)
    unmet = tuple(one for one in rules if not one.met)
    if len(rules) > 1:
        # Its services' owners or the high-risk approvers must approve too: say whose approval
        # it waits for, as the card does.
        every = approval_rules.owed(rules)
        waits[Stage.REVIEW] = f"its peer review, then test evidence from staging and {every}"
        waits[Stage.TEST] = f"test evidence from staging, then {every}"
        if unmet:
            waits[Stage.APPROVE] = approval_rules.owed(unmet)
    waiting = f"{ref} is not yet approved; it waits for {waits[change.stage]}."
    return Decision(GateStatus.AWAITING, (waiting,))


def _ended(change: Change) -> str:
    if change.outcome is None or change.outcome_at is None:
        return ""
    outcome = change.outcome.label.lower()
    return f" (its outcome, {outcome}, was recorded at {when(change.outcome_at)})"


@functools.lru_cache(maxsize=4096)
def when(moment: datetime) -> str:
    """A moment as a pipeline log shows it: in UTC, to the minute. Remembered: the gate
    writes the same windows' ends in answer after answer."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


# -- asking -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """Who asks the gate, and about which run: a pipeline, named after its API token."""

    pipeline: str
    #: A link to the pipeline's run, if it gave one.
    run: str = ""
    #: The person who triggered the pipeline, as the pipeline names them.
    triggered_by: str = ""


@dataclass(frozen=True)
class Question:
    """One question to the gate: may `asked` deploy `target` under change `number`?"""

    number: int
    target: Target
    asked: Asked

    def asked_by(self, pipeline: str) -> Question:
        """The question as the pipeline named `pipeline` (its token's name) asks it. Built
        whole, not with dataclasses.replace: the gate asks this of every question it gets."""
        asked = self.asked
        return Question(self.number, self.target, Asked(pipeline, asked.run, asked.triggered_by))


def check_question(question: Question) -> Question:
    """The question as a pipeline wrote it, trimmed, or ValidationFailed naming the field."""
    asked, target = question.asked, check_target(question.target)
    run = check_link("run", asked.run)
    triggered_by = check_line("triggered_by", asked.triggered_by, 100)
    if target is question.target and (run, triggered_by) == (asked.run, asked.triggered_by):
        return question  # as written (a frozen question is the same as a copy)
    return Question(question.number, target, Asked(asked.pipeline, run, triggered_by))


@dataclass(frozen=True)
class Answer:
    ref: str
    decision: Decision
    #: Whether this answer is news for the change: a new question, or a new answer to it.
    news: bool
    #: The change's version once the answer was recorded.
    version: int = -1


def ask(uow: UnitOfWork, clock: Clock, policy: Policy, question: Question) -> Answer:
    """Decide, and record the decision in the audit trail in the same transaction.

    A repeated question with the same answer (a pipeline waiting for approval asks again and
    again) is recorded too, but changes nothing on the card and posts nothing in Slack.
    """
    return ask_many(uow, clock, policy, [check_question(question)])[0]


def ask_many(
    uow: UnitOfWork, clock: Clock, policy: Policy, questions: Sequence[Question]
) -> list[Answer]:
    """Several questions (already checked with check_question) answered and recorded in one
    transaction, in order: the gate's answer to many pipelines at once costs one commit."""
    with uow:
        answers = record_answers(uow, clock.now(), policy, questions)
        uow.commit()
    return answers


def record_answers(
    uow: UnitOfWork, at: datetime, policy: Policy, questions: Sequence[Question]
) -> list[Answer]:
    """`ask_many` inside a unit of work the caller opened and commits (which may hold more:
    the tokens the questions came with, say)."""
    answers = []
    changes = uow.changes.get_many([q.number for q in questions])
    touched: dict[int, Change] = {}
    for question in questions:
        change = changes.get(question.number)
        answer = _answer(uow, policy, question, change, at)
        if change is not None and answer.news:
            touched[change.number] = change
        answers.append(answer)
    if not touched:
        return answers
    for change in touched.values():
        uow.changes.save(change)
    # Every answer about a change saved here carries its version once saved.
    return [
        Answer(a.ref, a.decision, a.news, touched[q.number].version) if q.number in touched else a
        for q, a in zip(questions, answers, strict=True)
    ]


def _answer(
    uow: UnitOfWork, policy: Policy, question: Question, change: Change | None, at: datetime
) -> Answer:
    target, asked = question.target, question.asked
    ref = format_ref(question.number)
    decision = decide(change, ref, target, policy, at)
    status = decision.status
    news = change is not None and _is_news(change, asked.pipeline, target, status)
    stage = change.stage.value if change is not None else ""
    uow.audit.append(
        AuditEntry(
            at=at,
            actor=pipeline_actor(asked.pipeline).user_id,
            action=DECIDED,
            ref=ref if change is not None else GATE_REF,
            from_stage=stage,
            to_stage=stage,
            details={
                "change": ref,
                "status": status.value,
                "reasons": list(decision.reasons),
                "service": target.service,
                "environment": target.environment,
                "repository": target.repository,
                "commit": target.commit,
                "run": asked.run,
                "triggered_by": asked.triggered_by,
                "news": news,
            },
        ),
        shown=news,
    )
    if change is None:
        return Answer(ref, decision, news)
    if news:  # the card shows it (a repeated answer is in the trail only)
        check = GateCheck(
            asked.pipeline,
            target.service,
            target.environment,
            status,
            at,
            target.repository,
            target.commit,
            asked.run,
        )
        change.gate_checks = _recorded(change.gate_checks, check)
        if status is GateStatus.ALLOWED and _first_allowed(change, at):
            change.first_allowed = check
    return Answer(ref, decision, news, change.version)


def _first_allowed(change: Change, at: datetime) -> bool:
    """Whether an `allowed` answer now is the first the change keeps: its first ever, or its
    first since it broke glass (workflows.stages.allowed_under_break_glass)."""
    first, broke = change.first_allowed, change.break_glass_at
    return first is None or (broke is not None and first.at < broke <= at)


def find_change(uow: UnitOfWork, git_ref: str, pull_requests: Sequence[str]) -> int | None:
    """The change a deployment belongs to, when the pipeline did not name it (GitHub):

    1. a change reference in the deployed branch or tag (`release/CHG-42`, `chg-42-hotfix`);
    2. else the newest open change whose pull request is one of the deployed commit's.
    """
    if (number := ref_in(git_ref)) is not None:
        return number
    if not pull_requests:
        return None
    with uow:
        change = uow.changes.linked_to(pull_requests)
    return change.number if change is not None else None


def _is_news(change: Change, pipeline: str, target: Target, status: GateStatus) -> bool:
    """A question this pipeline has not asked before, or a new answer to it."""
    key = gate_key(pipeline, target.service, target.environment)
    known = next((c for c in change.gate_checks if c.key == key), None)
    return known is None or known.status is not status


#: The card shows the latest questions; older ones stay in the audit trail.
KEPT_CHECKS = 20


def _recorded(checks: tuple[GateCheck, ...], check: GateCheck) -> tuple[GateCheck, ...]:
    others = tuple(c for c in checks if c.key != check.key)
    return (*others, check)[-KEPT_CHECKS:]


def allowed_check(change: Change, service: str, environment: str) -> GateCheck | None:
    """The gate's `allowed` answer covering this service and environment, if it gave one."""
    key = (service.strip().lower(), environment.strip().lower())
    return next(
        (c for c in change.gate_checks if c.status is GateStatus.ALLOWED and c.key[1:] == key),
        None,
    )

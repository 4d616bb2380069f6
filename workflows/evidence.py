"""A change's evidence as an auditor reads it: each audit event turned into a step in plain
sentences (who, when, what, under which rule), and the exceptions an auditor asks about first.

Pure: events and changes in, steps and exceptions out. The evidence report (bot/report.py)
HTML-escapes the sentences; nothing here is markup. Events are read defensively, like the
thread's replies (bot/views/replies.py): stored details are JSON and may predate a field.

A `Narrator` walks one change's events in order and keeps what later steps depend on: the
classification and risk an approval was counted under, and when the post-change review was
due, so a late review is known when it arrives.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from workflows.audit import AuditEntry, moment_in
from workflows.durations import format_duration
from workflows.events import Happened
from workflows.model import (
    GITHUB_PIPELINE,
    PIPELINE_PREFIX,
    SYSTEM,
    Change,
    Classification,
    Level,
    Outcome,
    Stage,
)
from workflows.policy import Policy
from workflows.risk import in_words


class Mark(StrEnum):
    """The exceptions an auditor samples first: what departs from the normal path."""

    EMERGENCY = "emergency"
    BREAK_GLASS = "break-glass"
    REVIEW_LATE = "review late"
    REVIEW_OVERDUE = "review overdue"
    CLOSED_WITHOUT_REVIEW = "closed without review"
    UNGATED = "ungated deployment"
    IN_FREEZE = "in a freeze"
    FREEZE_REFUSED = "refused in a freeze"
    APPROVALS_WITHDRAWN = "approvals withdrawn"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Part(StrEnum):
    """Which part of the evidence a step is: what the policy asks to see for each change."""

    REQUEST = "request"
    REVIEW = "review"
    TEST = "test"
    APPROVAL = "approval"
    GATE = "gate"
    DEPLOYMENT = "deployment"
    OUTCOME = "outcome"
    POST_CHANGE_REVIEW = "post-change review"
    CHANGE = "change"
    REMINDER = "reminder"

    @property
    def label(self) -> str:
        return self.value.capitalize()


@dataclass(frozen=True)
class Step:
    """One piece of a change's evidence: when, who, which part, and what, in a sentence."""

    at: datetime
    who: str
    part: Part
    sentence: str
    mark: Mark | None = None


@dataclass(frozen=True)
class Flagged:
    """An exception, linked to its change by `ref` ("" when no change was made)."""

    mark: Mark
    ref: str
    title: str
    at: datetime
    sentence: str


#: The events that can make an exception, so a first pass can read only those.
EXCEPTIONAL = frozenset(
    {
        Happened.REQUESTED,
        Happened.OUTCOME_RECORDED,
        Happened.POST_CHANGE_REVIEW_SUBMITTED,
        Happened.CLOSED_WITHOUT_REVIEW,
        Happened.BREAK_GLASS,
        Happened.UNGATED_DEPLOYMENT,
        Happened.APPROVALS_WITHDRAWN,
    }
)


def when(moment: datetime) -> str:
    """A moment as the report writes it, in UTC to the minute: "2026-12-01 10:00 UTC"."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def who(actor: str) -> str:
    """An actor as people read it: changebot itself, a pipeline by name, else the user ID."""
    if actor == SYSTEM:
        return "changebot"
    if actor.startswith(PIPELINE_PREFIX):
        name = actor.removeprefix(PIPELINE_PREFIX)
        return "GitHub" if name == GITHUB_PIPELINE else f"pipeline {name}"
    return actor or "someone"


def approval_rule(
    policy: Policy, classification: Classification, risk: Level, conflicts: int = 0
) -> str:
    """The policy's approvals rule a change is counted under, as a clause."""
    a = policy.approvals
    if classification is Classification.STANDARD:
        return "the Standard rule: its catalog procedure stands for approval"
    if classification is Classification.EMERGENCY:
        return f"the Emergency rule: {_approvals(a.emergency)}"
    if risk in a.high_risk_levels:
        rule = f"the high-risk Normal rule: {_approvals(a.normal_high_risk)}"
    else:
        rule = f"the Normal rule: {_approvals(a.normal)}"
    if conflicts and a.conflict_extra:
        rule += f", and {a.conflict_extra} more for its window overlapping another change's"
    return rule


@dataclass
class Narrator:
    """Turns one change's events, in order, into steps."""

    policy: Policy
    classification: Classification
    risk: Level = Level.LOW
    review_due: datetime | None = None
    #: The risk the review gave, which an edit of the questionnaire's answers cannot lower.
    reviewed_risk: Level | None = None

    @classmethod
    def of(cls, change: Change, policy: Policy) -> Narrator:
        return cls(policy, change.classification, change.details.risk)

    def step(self, entry: AuditEntry) -> Step | None:
        """The step an event is, or None for an event that is no evidence (a gate's answer
        repeated to a pipeline asking again)."""
        build = _SENTENCES.get(entry.action)
        if build is None:
            what = entry.action.replace("_", " ").strip() or "did something"
            return Step(entry.at, who(entry.actor), Part.CHANGE, f"{who(entry.actor)}: {what}.")
        found = build(self, entry, entry.details)
        if found is None:
            return None
        part, sentence, *mark = found
        return Step(entry.at, who(entry.actor), part, sentence, mark[0] if mark else None)


def steps(change: Change, events: Iterable[AuditEntry], policy: Policy) -> Iterable[Step]:
    """A change's evidence in the order of its events."""
    narrator = Narrator.of(change, policy)
    for entry in events:
        found = narrator.step(entry)
        if found is not None:
            yield found


def exceptions(
    change: Change, events: Iterable[AuditEntry], policy: Policy, as_of: datetime
) -> list[Flagged]:
    """What in a change's record is an exception: an emergency, break-glass, a post-change
    review submitted after its deadline, still owed past it at `as_of`, or closed without it,
    a deployment without an allowed gate decision, a request into a freeze, approvals
    withdrawn. Reads only the events in EXCEPTIONAL; others are ignored."""
    found: list[Flagged] = []

    def add(mark: Mark, at: datetime, sentence: str) -> None:
        found.append(Flagged(mark, change.ref, change.title, at, sentence))

    if change.classification is Classification.EMERGENCY:
        add(Mark.EMERGENCY, change.created_at, "An emergency change.")
    for one in steps(change, (e for e in events if e.action in EXCEPTIONAL), policy):
        if one.mark is not None:
            add(one.mark, one.at, one.sentence)
    due = change.review_due_at
    if change.review_owed and due is not None and due < as_of:
        add(
            Mark.REVIEW_OVERDUE,
            due,
            f"The post-change review was due {when(due)} and is still owed.",
        )
    return found


def freeze_refusal(entry: AuditEntry) -> Flagged:
    """A request refused because its window fell in a freeze: no change was made of it."""
    d = entry.details
    freezes = _join(_names(d.get("freezes"))) or "a freeze"
    title = _text(d.get("title"))
    sentence = (
        f"{who(entry.actor)} asked for a window from {_moment_text(d.get('window_start'))} "
        f"to {_moment_text(d.get('window_end'))}, refused because of {freezes}."
    )
    return Flagged(Mark.FREEZE_REFUSED, "", title, entry.at, sentence)


# -- each event, in a sentence -----------------------------------------------------------------

Built = tuple[Part, str] | tuple[Part, str, Mark] | None
Sentence = Callable[[Narrator, AuditEntry, Mapping[str, Any]], Built]


def _requested(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    with contextlib.suppress(ValueError):  # an older event may not name it
        n.classification = Classification(_text(d.get("classification")))
    n.risk = _level(d.get("risk"), n.risk)
    facts = [f"scope {_text(d.get('scope')) or 'not given'}"]
    if services := _names(d.get("services")):
        facts.append(f"services {', '.join(services)}")
    scored = f" from the risk questionnaire, {words}" if (words := in_words(d)) else ""
    facts.append(f"risk {n.risk.value}{scored}, impact {_text(d.get('impact')) or 'not given'}")
    window = d.get("window")
    if isinstance(window, list) and len(window) == 2:
        facts.append(f"window {_moment_text(window[0])} to {_moment_text(window[1])}")
    if d.get("procedure"):
        facts.append(f"procedure {_text(d.get('procedure'))}")
    facts.append("rollback plan given" if d.get("rollback_given") else "no rollback plan")
    sentence = (
        f"{who(e.actor)} requested this {n.classification.label} change "
        f"“{_text(d.get('title'))}” ({'; '.join(facts)})."
    )
    if conflicts := _names(d.get("conflicts")):
        sentence += f" Its window overlapped {', '.join(conflicts)}."
    if freezes := _names(d.get("freezes")):
        sentence += f" It was requested into the freeze {_join(freezes)}, which allows emergencies."
        return Part.REQUEST, sentence, Mark.IN_FREEZE
    return Part.REQUEST, sentence


def _submitted(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    if n.classification is Classification.STANDARD:
        return Part.REQUEST, f"{who(e.actor)} submitted it; its catalog procedure stands for it."
    return Part.REQUEST, f"{who(e.actor)} submitted it for review."


def _reviewed(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    n.risk = n.reviewed_risk = _level(d.get("risk"), n.risk)
    raised = " (raised by the reviewer)" if d.get("risk_raised") else ""
    floor = d.get("questionnaire")
    if isinstance(floor, Mapping) and (words := in_words(floor)):
        raised += f", no lower than the risk questionnaire's {_text(floor.get('level'))}, {words}"
    sentence = f"{who(e.actor)} reviewed it and rated the risk {n.risk.value}{raised}"
    return Part.REVIEW, sentence + _quoted(d.get("assessment"))


def _tested(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    return Part.TEST, f"{who(e.actor)} added test evidence" + _quoted(d.get("evidence"))


def _approved(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    conflicts = len(_names(d.get("conflicts")))
    rule = approval_rule(n.policy, n.classification, n.risk, conflicts)
    if d.get("retrospective"):
        sentence = f"{who(e.actor)} approved it in retrospect, after break-glass, under {rule}"
    else:
        sentence = f"{who(e.actor)} approved it under {rule}"
    if stands_for := _names(d.get("stands_for")):
        sentence += f"; the approval stands for the compressed {' and '.join(stands_for)}"
    if counts_for := _names(d.get("counts_for")):
        sentence += f"; it counts toward {' and '.join(counts_for)}"
    return Part.APPROVAL, sentence + _quoted(d.get("comment"))


def _authorised(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    approvers = _names(d.get("approvers"))
    by = f" with the approval of {', '.join(approvers)}" if approvers else ""
    return Part.APPROVAL, f"Authorised{by}: its approvals met the rule; deployment may start."


def _rejected(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    sentence = f"{who(e.actor)} rejected it in {_stage(e.from_stage)}{_quoted(d.get('reason'))}"
    if withdrawn := _names(d.get("approvals_withdrawn")):
        sentence += f" The approvals of {', '.join(withdrawn)} were set aside."
    return Part.APPROVAL, sentence + " It went back to Request."


def _satisfied(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    procedure_id = _text(d.get("procedure"))
    procedure = n.policy.procedure(procedure_id)
    version = _text(d.get("version"))
    name = procedure.name if procedure else procedure_id or "of the catalog"
    label = f"{name} (v{version})" if version else name
    satisfies = _text(d.get("satisfies"))
    part = {"review": Part.REVIEW, "test": Part.TEST}.get(satisfies, Part.APPROVAL)
    what = {"approval": "approval", "review": "review", "test": "testing"}.get(satisfies, "step")
    return part, f"The pre-approved procedure {label} satisfies the {what}."


def _what(d: Mapping[str, Any]) -> str:
    """What a pipeline deployed: "api to production (run-9)"; "" when a person deployed."""
    service, environment = _text(d.get("service")), _text(d.get("environment"))
    if not service:
        return ""
    deployment = _text(d.get("deployment"))
    return f"{service} to {environment}" + (f" ({deployment})" if deployment else "")


def _target(d: Mapping[str, Any]) -> str:
    what = _what(d)
    return f" of {what}" if what else ""


def _deployment_started(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    sentence = f"{who(e.actor)} started the deployment{_target(d)}"
    if triggered := _text(d.get("triggered_by")):
        sentence += f" for {who(triggered)}"
    return Part.DEPLOYMENT, sentence + "."


def _pipeline_finished(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    outcome = _text(d.get("outcome")).replace("_", " ") or "ended"
    running = d.get("running")
    more = f" {running} more still running." if isinstance(running, int) and running else ""
    return Part.DEPLOYMENT, f"{who(e.actor)}'s deployment{_target(d)} ended: {outcome}.{more}"


def _ungated(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    reason = _text(d.get("reason"))
    sentence = f"{who(e.actor)} deployed {_what(d) or 'it'} without an allowed gate decision" + (
        f": {reason}" if reason else "."
    )
    return Part.DEPLOYMENT, sentence, Mark.UNGATED


def _gate_decided(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    if d.get("news") is False:
        return None  # the same answer to a pipeline asking again
    status = _text(d.get("status"))
    what = f"{_text(d.get('service'))} to {_text(d.get('environment'))}"
    if repository := _text(d.get("repository")):
        commit = _text(d.get("commit"))[:7]
        what += f" ({repository}{'@' + commit if commit else ''})"
    reasons = _names(d.get("reasons"))
    because = f": {reasons[0]}" if reasons else "."
    sentences = {
        "allowed": f"The gate allowed {who(e.actor)} to deploy {what}.",
        "awaiting": f"The gate held {who(e.actor)} waiting to deploy {what}{because}",
        "prevented": f"The gate stopped {who(e.actor)} deploying {what}{because}",
    }
    fallback = f"The gate could not answer {who(e.actor)} about {what}{because}"
    return Part.GATE, sentences.get(status, fallback)


def _outcome(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    raw = _text(d.get("outcome"))
    try:
        outcome = Outcome(raw).label
    except ValueError:
        outcome = raw.replace("_", " ") or "recorded"
    sentence = f"{who(e.actor)} recorded the outcome: {outcome}.{_quoted(d.get('notes'), '')}"
    n.review_due = moment_in(d.get("review_due_at"))
    if d.get("review_owed"):
        due = f" by {when(n.review_due)}" if n.review_due else ""
        sentence += f" A post-change review is owed{due}."
        if owed := _names(d.get("owed_documents")):
            sentence += f" Documentation owed: {', '.join(o.replace('_', ' ') for o in owed)}."
    return Part.OUTCOME, sentence


def _post_change_review(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    justified = "yes" if d.get("classification_justified") else "no"
    contributed = "yes" if d.get("contributed_to_incident") else "no"
    sentence = (
        f"{who(e.actor)} submitted the post-change review. Classification justified: "
        f"{justified}. Contributed to an incident: {contributed}."
    )
    if documentation := _names(d.get("documentation")):
        sentence += f" It supplies the {', '.join(x.replace('_', ' ') for x in documentation)}."
    due = n.review_due
    if due is not None and e.at > due:
        late = format_duration(e.at - due)
        return Part.POST_CHANGE_REVIEW, f"{sentence} It was {late} late.", Mark.REVIEW_LATE
    return Part.POST_CHANGE_REVIEW, sentence


def _closed(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    by = "" if e.actor == SYSTEM else f" by {who(e.actor)}"
    return Part.CHANGE, f"Closed{by}."


def _closed_without_review(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    sentence = f"{who(e.actor)} closed it without its post-change review{_quoted(d.get('reason'))}"
    return Part.POST_CHANGE_REVIEW, sentence, Mark.CLOSED_WITHOUT_REVIEW


def _edited(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    fields = [f.replace("_", " ") for f in _names(d.get("fields"))]
    sentence = f"{who(e.actor)} edited the {', '.join(fields) or 'request'}."
    if words := in_words(d):
        # The answers are the floor: a review's higher rating still stands (Change.risk).
        scored = _level(d.get("risk"), n.risk)
        reviewed = n.reviewed_risk
        n.risk = reviewed if reviewed and reviewed.rank > scored.rank else scored
        sentence += f" The risk questionnaire then rated it {scored.value}, {words}."
    return Part.CHANGE, sentence


def _withdrawn(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    withdrawn = ", ".join(_names(d.get("withdrawn"))) or "its approvers"
    because = [b.replace("_", " ") for b in _names(d.get("because"))]
    why = f" because the {', '.join(because)} changed" if because else ""
    sentence = f"The approvals of {withdrawn} were withdrawn{why}: it needed approving again."
    return Part.APPROVAL, sentence, Mark.APPROVALS_WITHDRAWN


def _returned(stage: str) -> Sentence:
    def build(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
        because = [b.replace("_", " ") for b in _names(d.get("because"))]
        after = f" after the {', '.join(because)} changed" if because else ""
        return Part.CHANGE, f"Back in {stage}{after}."

    return build


def _cancelled(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    return Part.CHANGE, f"{who(e.actor)} cancelled it{_quoted(d.get('reason'))}"


def _break_glass(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    seconds = d.get("waited_seconds")
    waited = format_duration(timedelta(seconds=seconds)) if isinstance(seconds, int) else "a while"
    reason = _text(d.get("reason"))
    sentence = (
        f"{who(e.actor)} broke glass: deployed without approval after no approver acted within "
        f"{waited}{f' (“{reason}”)' if reason else ''}. An approval was owed in retrospect."
    )
    return Part.APPROVAL, sentence, Mark.BREAK_GLASS


def _reminder(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    owed = _text(d.get("kind")).replace("_", " ") or "post-change review"
    owner = _text(d.get("owner"))
    due = moment_in(d.get("due"))
    escalated = e.action == Happened.REMINDER_ESCALATED
    verb = "escalated" if escalated else "reminded"
    sentence = f"changebot {verb}{f' {owner}' if owner else ''}: the {owed} is due"
    return Part.REMINDER, sentence + (f" {when(due)}." if due else ".")


def _snoozed(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    until = moment_in(d.get("until"))
    later = f" until {when(until)}" if until else ""
    return Part.REMINDER, f"{who(e.actor)} snoozed the reminders{later}."


def _policy_review(n: Narrator, e: AuditEntry, d: Mapping[str, Any]) -> Built:
    return Part.POST_CHANGE_REVIEW, "It contributed to an incident: the policy is due for review."


_SENTENCES: Mapping[str, Sentence] = {
    Happened.REQUESTED: _requested,
    Happened.SUBMITTED: _submitted,
    Happened.REVIEWED: _reviewed,
    Happened.TESTED: _tested,
    Happened.APPROVED: _approved,
    Happened.AUTHORISED: _authorised,
    Happened.REJECTED: _rejected,
    Happened.SATISFIED_BY_PROCEDURE: _satisfied,
    Happened.DEPLOYMENT_STARTED: _deployment_started,
    Happened.PIPELINE_DEPLOYMENT_STARTED: _deployment_started,
    Happened.PIPELINE_DEPLOYMENT_FINISHED: _pipeline_finished,
    Happened.UNGATED_DEPLOYMENT: _ungated,
    Happened.GATE_DECIDED: _gate_decided,
    Happened.OUTCOME_RECORDED: _outcome,
    Happened.POST_CHANGE_REVIEW_SUBMITTED: _post_change_review,
    Happened.CLOSED: _closed,
    Happened.CLOSED_WITHOUT_REVIEW: _closed_without_review,
    Happened.EDITED: _edited,
    Happened.APPROVALS_WITHDRAWN: _withdrawn,
    Happened.RETURNED_TO_REQUEST: _returned("Request"),
    Happened.RETURNED_TO_APPROVE: _returned("Approve"),
    Happened.CANCELLED: _cancelled,
    Happened.BREAK_GLASS: _break_glass,
    Happened.REMINDER_SENT: _reminder,
    Happened.REMINDER_ESCALATED: _reminder,
    Happened.REMINDER_SNOOZED: _snoozed,
    Happened.POLICY_REVIEW_TRIGGERED: _policy_review,
}


# -- reading details ---------------------------------------------------------------------------


def _approvals(count: int) -> str:
    return f"{count} approval{'' if count == 1 else 's'} needed"


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _names(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | tuple):
        return [str(item) for item in value if item]
    return []


def _join(names: list[str]) -> str:
    return " and ".join(", ".join(names).rsplit(", ", 1)) if names else ""


def _quoted(value: object, empty: str = ".") -> str:
    said = _text(value)
    return f": “{said}”" if said and empty == "." else (f" “{said}”" if said else empty)


def _level(value: object, otherwise: Level) -> Level:
    try:
        return Level(_text(value))
    except ValueError:
        return otherwise


def _stage(value: str) -> str:
    try:
        return Stage(value).label
    except ValueError:
        return value or "its stage"


def _moment_text(value: object) -> str:
    moment = moment_in(value)
    return when(moment) if moment else "an unknown time"

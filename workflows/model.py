"""The change itself: what it is, who asked, what was decided, and where it stands."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum, StrEnum


class Classification(StrEnum):
    STANDARD = "standard"
    NORMAL = "normal"
    EMERGENCY = "emergency"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Stage(StrEnum):
    REQUEST = "request"
    REVIEW = "review"
    TEST = "test"
    APPROVE = "approve"
    DEPLOY = "deploy"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return _STAGE_LABELS[self]

    @property
    def is_final(self) -> bool:
        return self in (Stage.CLOSED, Stage.CANCELLED)


_STAGE_LABELS = {
    Stage.REQUEST: "Request",
    Stage.REVIEW: "Review",
    Stage.TEST: "Test",
    Stage.APPROVE: "Approve",
    Stage.DEPLOY: "Deploy and verify",
    Stage.CLOSED: "Closed",
    Stage.CANCELLED: "Cancelled",
}

#: The five stages of the policy, in order.
FIVE_STAGES = (Stage.REQUEST, Stage.REVIEW, Stage.TEST, Stage.APPROVE, Stage.DEPLOY)


class Level(StrEnum):
    """Risk and impact are both rated low, medium or high."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return list(Level).index(self)


class Outcome(StrEnum):
    SUCCESSFUL = "successful"
    SUCCESSFUL_WITH_ISSUES = "successful_with_issues"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()

    @property
    def owes_review(self) -> bool:
        return self in (Outcome.FAILED, Outcome.ROLLED_BACK)

    @property
    def severity(self) -> int:
        """How bad it went: several deployments of one change end as the worst of them. A
        failure left in place is worse than one rolled back."""
        return _SEVERITY[self]


#: The outcomes as a pipeline names them (`--outcome`, the API's "outcome").
OUTCOME_NAMES: dict[str, Outcome] = {
    "successful": Outcome.SUCCESSFUL,
    "with-issues": Outcome.SUCCESSFUL_WITH_ISSUES,
    "failed": Outcome.FAILED,
    "rolled-back": Outcome.ROLLED_BACK,
}


def outcome_named(name: str) -> Outcome | None:
    """The outcome a pipeline named: as above, or as stored ("successful_with_issues"), in any
    case, with "-", "_" or spaces; None if it names none."""
    key = "-".join(name.strip().lower().replace("_", " ").replace("-", " ").split())
    return OUTCOME_NAMES.get("with-issues" if key == "successful-with-issues" else key)


_SEVERITY = {
    Outcome.SUCCESSFUL: 0,
    Outcome.SUCCESSFUL_WITH_ISSUES: 1,
    Outcome.ROLLED_BACK: 2,
    Outcome.FAILED: 3,
}


class GateStatus(StrEnum):
    """The deploy gate's four answers (those of Jira's deployment gating)."""

    ALLOWED = "allowed"
    AWAITING = "awaiting"
    PREVENTED = "prevented"
    INVALID = "invalid"


@dataclass(frozen=True)
class Actor:
    """A named person acting in Slack, with the Slack user groups they belong to."""

    user_id: str
    groups: frozenset[str] = frozenset()


SYSTEM = "system"
#: Actors that are pipelines, not people: `pipeline:<the name of its API token>`.
PIPELINE_PREFIX = "pipeline:"
#: The pipeline name under which GitHub's deployment protection rule asks the gate.
GITHUB_PIPELINE = "github"


def pipeline_actor(name: str) -> Actor:
    """A pipeline acting through its API token, named after the token."""
    return Actor(f"{PIPELINE_PREFIX}{name}")


def is_pipeline(actor_id: str) -> bool:
    return actor_id.startswith(PIPELINE_PREFIX)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Rollback:
    """A rollback plan, or an explicit reason why the change cannot be reversed."""

    plan: str = ""
    not_reversible_reason: str = ""

    @property
    def is_given(self) -> bool:
        return bool(self.plan.strip() or self.not_reversible_reason.strip())


@dataclass(frozen=True)
class Links:
    pull_request: str = ""
    ticket: str = ""
    incident: str = ""


@dataclass(frozen=True)
class Approval:
    by: str
    at: datetime
    comment: str = ""
    #: "approver" for a person's approval; "procedure" when a Standard procedure stands for it.
    kind: str = "approver"
    #: The policy's user groups the approver was in when approving: which approval rules the
    #: approval counts toward (workflows/approval_rules.py). None: recorded before the rules.
    groups: frozenset[str] | None = None


@dataclass(frozen=True)
class Rejection:
    by: str
    at: datetime
    reason: str
    stage: Stage


@dataclass(frozen=True)
class PeerReview:
    by: str
    at: datetime
    assessment: str
    risk: Level
    #: How the review was satisfied: "peer", "procedure" (Standard) or "compressed" (Emergency).
    kind: str = "peer"


@dataclass(frozen=True)
class TestEvidence:
    by: str
    at: datetime
    evidence: str
    kind: str = "staging"


@dataclass(frozen=True)
class PostChangeReview:
    by: str
    at: datetime
    what_was_done: str
    why_it_could_not_wait: str
    root_cause: str
    classification_justified: bool
    follow_ups: str
    contributed_to_incident: bool
    documentation: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GateCheck:
    """A pipeline's question to the deploy gate about this change, as last answered: one per
    pipeline, service and environment, so the card shows what each is waiting for."""

    pipeline: str
    service: str
    environment: str
    status: GateStatus
    #: When the gate first gave this answer to this question.
    at: datetime
    repository: str = ""
    commit: str = ""
    #: A link to the pipeline's run, when it gave one.
    run: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return gate_key(self.pipeline, self.service, self.environment)


def gate_key(pipeline: str, service: str, environment: str) -> tuple[str, str, str]:
    """One question to the gate, whoever asks it how: the card keeps the latest of each."""
    return (pipeline, service.lower(), environment.lower())


@dataclass(frozen=True)
class PipelineDeployment:
    """A deployment a pipeline reported, by the id the pipeline gave it."""

    id: str
    pipeline: str
    service: str
    environment: str
    started_at: datetime
    triggered_by: str = ""
    #: Whether an `allowed` gate decision covered it when it started.
    gated: bool = True
    outcome: Outcome | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class Answer:
    """One answer to the policy's risk questionnaire, as the request recorded it: the question
    and the answer as they were worded, and the weight the answer carried then, so the record
    explains its risk even after the policy changes."""

    question: str
    choice: str
    weight: float = 0
    #: The question as it was asked ("" until the questionnaire has read the answer).
    asked: str = ""


@dataclass(frozen=True)
class ChangeDetails:
    """What the requester writes: the material fields of a change."""

    title: str
    classification: Classification
    scope: str
    description: str = ""
    services: tuple[str, ...] = ()
    risk: Level = Level.LOW
    impact: Level = Level.LOW
    rollback: Rollback = Rollback()
    window: Window | None = None
    links: Links = Links()
    procedure_id: str = ""
    implementer: str = ""
    #: The risk questionnaire's answers, when the policy asks one of this classification;
    #: `risk` is then their result.
    answers: tuple[Answer, ...] = ()
    #: The version of the catalog procedure a Standard change follows, recorded when the
    #: procedure stands for its review, test and approval ("" before, and on older records).
    procedure_version: str = ""

    def with_changes(self, **fields: object) -> ChangeDetails:
        return replace(self, **fields)  # type: ignore[arg-type]


#: Fields whose edit after approval withdraws the approvals given.
MATERIAL_FIELDS = (
    "title",
    "description",
    "scope",
    "services",
    "window",
    "rollback",
    "classification",
    "procedure_id",
    # Who deploys is part of what was approved, and an approver may not implement.
    "implementer",
    # What the requester says of its risk is what the approvers weighed.
    "answers",
    # The pull request a GitHub deployment is tied to its change by (workflows.gate).
    "links",
)

#: Documentation an emergency change may skip at first; it is owed, not waived.
OWED_DOCUMENTS = ("description", "rollback", "test_evidence")


@dataclass
class Change:
    """One change, from request to closure. Mutated only by the stage machine."""

    number: int
    details: ChangeDetails
    requester: str
    created_at: datetime
    stage: Stage = Stage.REQUEST
    version: int = 0
    updated_at: datetime | None = None
    review: PeerReview | None = None
    test_evidence: tuple[TestEvidence, ...] = ()
    approvals: tuple[Approval, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    deployment_started_at: datetime | None = None
    deployed_by: str = ""
    outcome: Outcome | None = None
    outcome_notes: str = ""
    outcome_at: datetime | None = None
    post_change_review: PostChangeReview | None = None
    review_owed: bool = False
    review_due_at: datetime | None = None
    owed_documents: tuple[str, ...] = ()
    cancel_reason: str = ""
    closed_at: datetime | None = None
    #: Where the request was made (a Slack channel ID, opaque to the process).
    requested_in: str = ""
    submitted_at: datetime | None = None
    #: When an edit last withdrew its approvals: the approvers are asked anew from then.
    approvals_withdrawn_at: datetime | None = None
    #: Break-glass: the requester went ahead alone; an approval is owed in retrospect.
    break_glass_at: datetime | None = None
    break_glass_reason: str = ""
    #: Who broke glass (the requester or the implementer): never the one to approve it after.
    break_glass_by: str = ""
    retro_approval_owed: bool = False
    #: An approver closed the change without its post-change review, and why.
    closed_without_review: str = ""
    #: What the deploy gate answered each pipeline, and the deployments pipelines reported.
    gate_checks: tuple[GateCheck, ...] = ()
    #: The gate's first `allowed` answer: from then on a pipeline may have deployed it. Kept
    #: when later answers replace it among `gate_checks`.
    first_allowed: GateCheck | None = None
    deployments: tuple[PipelineDeployment, ...] = ()

    @property
    def ref(self) -> str:
        return format_ref(self.number)

    @property
    def classification(self) -> Classification:
        return self.details.classification

    @property
    def title(self) -> str:
        return self.details.title

    @property
    def risk(self) -> Level:
        """The reviewer's assessment, never below what the request says (a review may not
        lower it; an edit after the review, of the risk or of the questionnaire's answers,
        may raise it)."""
        if self.review is None:
            return self.details.risk
        if self.details.risk.rank > self.review.risk.rank:
            return self.details.risk
        return self.review.risk

    @property
    def owner(self) -> str:
        """Who answers for the change after deployment: the implementer, else the requester."""
        return self.details.implementer or self.requester

    def people_in_charge(self) -> frozenset[str]:
        return frozenset(p for p in (self.requester, self.details.implementer) if p)

    @property
    def approvers_asked_at(self) -> datetime:
        """Since when the approvers have been asked: its last submission, or the edit that
        last withdrew their approvals, whichever came later (break-glass waits for them from
        then: a change resubmitted after a withdrawal asks them afresh)."""
        asked = [t for t in (self.submitted_at, self.approvals_withdrawn_at) if t is not None]
        return max(asked) if asked else self.created_at

    def approvers(self) -> tuple[str, ...]:
        return tuple(a.by for a in self.approvals if a.kind == "approver")


@functools.lru_cache(maxsize=4096)
def seen_digest(details: ChangeDetails) -> str:
    """A short fingerprint of what a change says, for the buttons and forms that show it: a
    step taken from one drawn before an edit is refused (errors.EditedSince), not taken on
    what the person never saw.

    Remembered for the latest few thousand: details are immutable all the way down, and
    equal details say the same (a card is drawn for every answer a pipeline had not had: its
    buttons carry this, and working it out again was a fifth of drawing the card)."""
    # What it says, not how it is held: a change read from the database and the same change
    # kept in memory after a save hold their times in different zones.
    said = json.dumps(asdict(details), sort_keys=True, default=_canonical)
    return hashlib.sha256(said.encode("utf-8")).hexdigest()[:12]


def _canonical(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(map(str, value))
    return str(value)


REF_PREFIX = "CHG-"
#: The highest number a change can have: its column is a 32-bit integer on PostgreSQL. A
#: larger one names no change, so it is no reference (and never reaches the database).
MAX_NUMBER = 2**31 - 1
_REF_IN_TEXT = re.compile(r"(?<![A-Za-z0-9])CHG-?0*([1-9][0-9]{0,11})(?![0-9])", re.IGNORECASE)
_PULL_REQUEST = re.compile(r"^https?://[^/\s]+/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)/pulls?/([0-9]+)")


def ref_in(text: str) -> int | None:
    """The first change reference written in a branch or tag name (`release/CHG-42-fix`)."""
    for found in _REF_IN_TEXT.finditer(text):
        number = int(found.group(1))
        if number <= MAX_NUMBER:
            return number
    return None


def pull_request_key(url: str) -> str:
    """`https://github.com/Acme/api/pull/7` -> `acme/api#7`, the form a pull request is matched
    by (GitHub Enterprise addresses alike); "" for anything else."""
    found = _PULL_REQUEST.match(url.strip())
    if not found:
        return ""
    owner, repository, number = found.groups()
    return f"{owner}/{repository}#{int(number)}".lower()


def format_ref(number: int) -> str:
    return f"{REF_PREFIX}{number:04d}"


def parse_ref(text: str) -> int | None:
    """`CHG-0042`, `chg-42` or `42` -> 42; anything else -> None."""
    cleaned = text.strip().upper()
    if cleaned.startswith(REF_PREFIX):
        cleaned = cleaned[len(REF_PREFIX) :]
    # ASCII digits only: "²" and "①" are digits to str.isdigit(), not to int().
    if not (cleaned.isascii() and cleaned.isdigit()) or len(cleaned) > 12:
        return None
    number = int(cleaned)
    return number if 0 < number <= MAX_NUMBER else None

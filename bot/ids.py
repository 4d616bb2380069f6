"""Every Slack ID the bot uses (action_id, callback_id, block_id), in one place.

Card buttons carry `{"n": <change number>, "s": <stage seen>}` as their value, so a click on
a stale card is recognised and refused without changing anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from workflows.model import Change, Stage, seen_digest
from workflows.risk import ANSWER_FIELD
from workflows.stages import Action

COMMAND = "/change"

# -- modals (callback_id) ----------------------------------------------------------------
REQUEST_MODAL = "change_request"  # new change
EDIT_MODAL = "change_edit"  # edit an existing change (private_metadata carries the button)
REVIEW_MODAL = "change_review"
EVIDENCE_MODAL = "change_test_evidence"
REJECT_MODAL = "change_reject"
OUTCOME_MODAL = "change_outcome"
CANCEL_MODAL = "change_cancel"
PCR_MODAL = "change_post_change_review"
PROPOSE_MODAL = "catalog_propose"  # a catalog proposal (private_metadata: Proposing)
PROPOSAL_REJECT_MODAL = "catalog_reject"  # private_metadata: {"p": number}
PROPOSAL_WITHDRAW_MODAL = "catalog_withdraw"
MODALS = (
    REQUEST_MODAL,
    EDIT_MODAL,
    REVIEW_MODAL,
    EVIDENCE_MODAL,
    REJECT_MODAL,
    OUTCOME_MODAL,
    CANCEL_MODAL,
    PCR_MODAL,
    PROPOSE_MODAL,
    PROPOSAL_REJECT_MODAL,
    PROPOSAL_WITHDRAW_MODAL,
)

# -- card buttons (action_id "change.<action>") ------------------------------------------
CARD_ACTION_PREFIX = "change."


def card_action_id(action: Action) -> str:
    return CARD_ACTION_PREFIX + action.value


# -- catalog proposal buttons (action_id "proposal.<action>", value {"p": number}) ---------
PROPOSAL_ACTION_PREFIX = "proposal."
PROPOSE_VERB = "propose-standard"  # /change propose-standard [revise|retire <procedure id>]


def proposal_action_id(action: Action) -> str:
    return PROPOSAL_ACTION_PREFIX + action.value


# -- other actions --------------------------------------------------------------------------
NEW_CHANGE = "home.new_change"  # App Home button
WRITE_REVIEW = "chase.write_review"  # in a reminder: opens the post-change review
POLICY_REVIEWED = "chase.policy_reviewed"  # in a policy review reminder
SNOOZE_PREFIX = "chase.snooze."  # + "1h" or "1d"; value {"k": kind, "n": number, "c": choice}
CLOSE_WITHOUT_REVIEW_MODAL = "change_close_without_review"
CLASSIFICATION_PICKED = "classification"  # dispatch_action select in the request modal

# -- request modal inputs: block_id == action_id == the form field name ---------------------
TITLE = "title"
CLASSIFICATION = "classification"
SCOPE = "scope"
PROCEDURE = "procedure"
DESCRIPTION = "description"
SERVICES = "services"
RISK = "risk"
IMPACT = "impact"
ROLLBACK_PLAN = "rollback_plan"
NOT_REVERSIBLE_REASON = "not_reversible_reason"
WINDOW_START = "window_start"
WINDOW_END = "window_end"
PULL_REQUEST = "pull_request"
TICKET = "ticket"
INCIDENT = "incident"
IMPLEMENTER = "implementer"
#: + a risk question's id: one input per question of the policy's questionnaire (its answer's
#: field name in workflows.risk, so a problem with it lands on it).
ANSWER_PREFIX = ANSWER_FIELD

# -- other modal inputs ----------------------------------------------------------------------
ASSESSMENT = "assessment"
REVIEW_RISK = "review_risk"
EVIDENCE = "evidence"
REASON = "reason"
OUTCOME = "outcome"
NOTES = "notes"
WHAT_WAS_DONE = "what_was_done"
WHY_IT_COULD_NOT_WAIT = "why_it_could_not_wait"
ROOT_CAUSE = "root_cause"
CLASSIFICATION_JUSTIFIED = "classification_justified"
FOLLOW_UPS = "follow_ups"
CONTRIBUTED_TO_INCIDENT = "contributed_to_incident"
OWED_PREFIX = "owed_"

# -- catalog proposal inputs (services, scope, reason and evidence as above) ------------------
PROCEDURE_ID = "procedure_id"
PROCEDURE_NAME = "procedure_name"
RUNBOOK = "runbook"
WHY_ROUTINE = "why_routine"  # + the owed document's name (description, rollback, test_evidence)


@dataclass(frozen=True, slots=True)
class Target:
    """The change a button or modal is about, and the stage the person saw."""

    number: int
    seen: Stage | None = None
    #: What the change said when shown (workflows.model.seen_digest); "" if not known.
    details: str = ""

    def encode(self) -> str:
        value: dict[str, object] = {"n": self.number, "s": self.seen.value if self.seen else None}
        if self.details:
            value["d"] = self.details
        return json.dumps(value)

    @property
    def as_seen(self) -> tuple[int, str] | None:
        """(number, details digest) for Services.run_as_seen; None if what was shown is not
        known (a button drawn before buttons carried it)."""
        return (self.number, self.details) if self.details else None

    @classmethod
    def decode(cls, value: str) -> Target:
        """Parse a button value or private_metadata; ValueError if it is not ours."""
        data = json.loads(value)
        if not isinstance(data, dict) or not isinstance(data.get("n"), int):
            raise ValueError("not a change target")
        seen, details = data.get("s"), data.get("d")
        return cls(
            data["n"], Stage(seen) if seen else None, details if isinstance(details, str) else ""
        )


def target_of(change: Change) -> Target:
    """What a card's button or a step's form carries: the change, its stage and what it said."""
    return Target(change.number, change.stage, seen_digest(change.details))


def encode_proposal(number: int) -> str:
    return json.dumps({"p": number})


def decode_proposal(value: str) -> int:
    """A proposal button's value or a proposal form's private_metadata; ValueError if not ours."""
    data = json.loads(value)
    if not isinstance(data, dict) or not isinstance(data.get("p"), int):
        raise ValueError("not a catalog proposal")
    return int(data["p"])

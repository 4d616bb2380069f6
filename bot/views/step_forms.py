"""The small forms a card's buttons open (review, test evidence, reject, outcome, cancel,
post-change review) and their parsers. Each form carries its change and the stage the person
saw in private_metadata, so a submission against a change that moved on is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from slack_sdk.models.views import View

from bot import ids, text
from bot.views import inputs
from bot.views.common import AnyBlock, document_label, section
from bot.views.inputs import Values
from bot.views.request_form import LEVEL_LABELS
from workflows.errors import ValidationFailed
from workflows.model import Change, Classification, Level, Outcome, PostChangeReview
from workflows.risk import format_number, score
from workflows.validation import LIMITS

#: Who and when of a parsed post-change review; the use case fills in the real ones.
PLACEHOLDER_TIME = datetime(1970, 1, 1, tzinfo=UTC)


class ReviewInput(NamedTuple):
    assessment: str
    risk: Level


class OutcomeInput(NamedTuple):
    outcome: Outcome
    notes: str


def _modal(
    callback_id: str, title: str, change: Change, blocks: list[AnyBlock], *, submit: str
) -> dict[str, Any]:
    about = text.render_macro("forms.j2", "about", ref=change.ref, title=change.title)
    view = View(
        type="modal",
        callback_id=callback_id,
        title=title,
        submit=submit,
        close="Back",
        blocks=[section(about), *blocks],
        private_metadata=ids.target_of(change).encode(),
    )
    return view.to_dict()


def _prose(name: str, **context: Any) -> AnyBlock:
    return section(text.render_macro("forms.j2", name, **context))


# -- review and test -------------------------------------------------------------------------


def review_modal(change: Change) -> dict[str, Any]:
    levels = [inputs.option(level.value, label) for level, label in LEVEL_LABELS.items()]
    blocks: list[AnyBlock] = [
        inputs.text_input(
            ids.ASSESSMENT,
            "Your assessment",
            limit=LIMITS["assessment"],
            multiline=True,
            hint="Is it safe, complete and reversible? What would you watch?",
        ),
        inputs.select(
            ids.REVIEW_RISK,
            "Risk",
            levels,
            initial=change.risk.value,
            hint=_risk_hint(change),
        ),
    ]
    return _modal(ids.REVIEW_MODAL, "Record review", change, blocks, submit="Record review")


def _risk_hint(change: Change) -> str:
    details = change.details
    if details.answers:
        total = format_number(score(details.answers))
        return (
            f"The risk questionnaire scored it {total}: {details.risk.value}. Confirm that or "
            "raise it; reject the change if its answers are wrong."
        )
    return f"Confirm the requested risk ({details.risk.value}) or raise it."


def parse_review(values: Values) -> ReviewInput:
    risk = inputs.read_choice(values, ids.REVIEW_RISK, Level, "risk")
    if risk is None:
        raise ValidationFailed("risk", "choose the risk you assess.")
    return ReviewInput(inputs.read_text(values, ids.ASSESSMENT), risk)


def evidence_modal(change: Change) -> dict[str, Any]:
    blocks: list[AnyBlock] = [
        inputs.text_input(
            ids.EVIDENCE,
            "Test evidence",
            limit=LIMITS["evidence"],
            multiline=True,
            hint="What was tested where, and what showed it works (links welcome).",
        )
    ]
    return _modal(ids.EVIDENCE_MODAL, "Add test evidence", change, blocks, submit="Add evidence")


def parse_evidence(values: Values) -> str:
    return inputs.read_text(values, ids.EVIDENCE)


# -- reject and cancel ---------------------------------------------------------------------


def reject_modal(change: Change) -> dict[str, Any]:
    blocks: list[AnyBlock] = [
        _prose("reject_note"),
        inputs.text_input(
            ids.REASON, "Why", limit=LIMITS["reason"], multiline=True, hint="What must change."
        ),
    ]
    return _modal(ids.REJECT_MODAL, "Reject change", change, blocks, submit="Reject")


def cancel_modal(change: Change) -> dict[str, Any]:
    blocks: list[AnyBlock] = [
        _prose("cancel_note"),
        inputs.text_input(ids.REASON, "Why", limit=LIMITS["reason"], multiline=True),
    ]
    return _modal(ids.CANCEL_MODAL, "Cancel change", change, blocks, submit="Cancel change")


def close_without_review_modal(change: Change) -> dict[str, Any]:
    blocks: list[AnyBlock] = [
        inputs.text_input(
            ids.REASON,
            "Why will its review never come?",
            limit=LIMITS["reason"],
            multiline=True,
        ),
    ]
    return _modal(
        ids.CLOSE_WITHOUT_REVIEW_MODAL, "Close without review", change, blocks, submit="Close it"
    )


def parse_reason(values: Values) -> str:
    return inputs.read_text(values, ids.REASON)


# -- deploy and verify -------------------------------------------------------------------------


def outcome_modal(change: Change) -> dict[str, Any]:
    options = [inputs.option(o.value, o.label) for o in Outcome]
    blocks: list[AnyBlock] = [
        inputs.select(ids.OUTCOME, "Outcome", options),
        inputs.text_input(
            ids.NOTES,
            "Notes",
            limit=LIMITS["notes"],
            multiline=True,
            optional=True,
            hint="Required unless it was successful: what happened, and what was verified.",
        ),
        _prose("outcome_note", emergency=change.classification is Classification.EMERGENCY),
    ]
    return _modal(ids.OUTCOME_MODAL, "Record outcome", change, blocks, submit="Record")


def parse_outcome(values: Values) -> OutcomeInput:
    outcome = inputs.read_choice(values, ids.OUTCOME, Outcome, "outcome")
    if outcome is None:
        raise ValidationFailed("outcome", "choose how the deployment went.")
    return OutcomeInput(outcome, inputs.read_text(values, ids.NOTES))


def post_change_review_modal(change: Change) -> dict[str, Any]:
    limit = LIMITS["review_text"]
    emergency = change.classification is Classification.EMERGENCY
    blocks: list[AnyBlock] = [
        _prose(
            "outcome_so_far",
            outcome=change.outcome.label if change.outcome else "not recorded",
            notes=change.outcome_notes,
        ),
        inputs.text_input(ids.WHAT_WAS_DONE, "What was done", limit=limit, multiline=True),
        inputs.text_input(
            ids.WHY_IT_COULD_NOT_WAIT,
            "Why it could not wait" if emergency else "Why it went this way",
            limit=limit,
            multiline=True,
            optional=True,
        ),
        inputs.text_input(
            ids.ROOT_CAUSE,
            "Root cause, or a link to the incident",
            limit=limit,
            multiline=True,
            optional=True,
        ),
        inputs.yes_no(
            ids.CLASSIFICATION_JUSTIFIED,
            f"Was {change.classification.label} the right classification?",
        ),
        inputs.text_input(
            ids.FOLLOW_UPS, "Follow-up actions", limit=limit, multiline=True, optional=True
        ),
    ]
    for name in change.owed_documents:
        label = document_label(name)
        blocks.append(
            inputs.text_input(
                ids.OWED_PREFIX + name,
                f"{label[:1].upper()}{label[1:]} (owed)",
                limit=limit,
                multiline=True,
                hint=f"The {label} the change skipped at the time.",
            )
        )
    blocks.append(
        inputs.yes_no(
            ids.CONTRIBUTED_TO_INCIDENT,
            "Did an uncontrolled or poorly managed change contribute to an incident?",
        )
    )
    return _modal(ids.PCR_MODAL, "Post-change review", change, blocks, submit="Submit review")


def parse_post_change_review(values: Values) -> PostChangeReview:
    """The review as written; `by` and `at` are placeholders the use case fills in."""
    justified = inputs.read_yes_no(values, ids.CLASSIFICATION_JUSTIFIED)
    if justified is None:
        raise ValidationFailed("classification_justified", "choose yes or no.")
    contributed = inputs.read_yes_no(values, ids.CONTRIBUTED_TO_INCIDENT)
    if contributed is None:
        raise ValidationFailed("contributed_to_incident", "choose yes or no.")
    documentation = {
        block_id.removeprefix(ids.OWED_PREFIX): inputs.read_text(values, block_id)
        for block_id in values
        if isinstance(block_id, str) and block_id.startswith(ids.OWED_PREFIX)
    }
    return PostChangeReview(
        by="",
        at=PLACEHOLDER_TIME,
        what_was_done=inputs.read_text(values, ids.WHAT_WAS_DONE),
        why_it_could_not_wait=inputs.read_text(values, ids.WHY_IT_COULD_NOT_WAIT),
        root_cause=inputs.read_text(values, ids.ROOT_CAUSE),
        classification_justified=justified,
        follow_ups=inputs.read_text(values, ids.FOLLOW_UPS),
        contributed_to_incident=contributed,
        documentation=documentation,
    )

"""The change request form (new or edit) and its parser.

The form follows the classification: Standard picks a catalog procedure, Normal asks for
everything, Emergency only for what is needed now (the rest is owed after deployment).
Picking a classification redraws the form (its input block has `dispatch_action`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, Option
from slack_sdk.models.views import View

from bot import ids
from bot.views import inputs
from bot.views.common import AnyBlock
from bot.views.inputs import Values
from workflows.errors import PolicyViolation, ValidationFailed
from workflows.model import (
    Answer,
    ChangeDetails,
    Classification,
    Level,
    Links,
    Rollback,
    Window,
)
from workflows.policy import Policy
from workflows.risk import Questionnaire
from workflows.validation import LIMITS, MAX_SERVICES, check_details, requires

T = TypeVar("T")

CLASSIFICATION_OPTIONS = {
    Classification.STANDARD: "Pre-approved catalog procedure: no review or approval",
    Classification.NORMAL: "Reviewed, tested and approved before it is deployed",
    Classification.EMERGENCY: "Fix now: one approval, review and document afterwards",
}
LEVEL_LABELS = {Level.LOW: "Low", Level.MEDIUM: "Medium", Level.HIGH: "High"}
#: A services field long enough for the most services of the longest names the domain accepts.
SERVICES_LIMIT = MAX_SERVICES * (LIMITS["service"] + 2)
_SERVICE_SEPARATORS = re.compile(r"[,\n]")
EMERGENCY_NOTE = (
    "🚨 Only a title and a scope are needed now. What you leave out is owed in the "
    "post-change review after deployment."
)
QUESTIONNAIRE_NOTE = (
    "📋 *Risk:* answer the questions below; the change's risk is worked out from your answers "
    "(a reviewer may raise it, not lower it)."
)
TITLES = {ids.REQUEST_MODAL: "New change", ids.EDIT_MODAL: "Edit change"}
SUBMITS = {ids.REQUEST_MODAL: "Submit", ids.EDIT_MODAL: "Save"}


def request_modal(
    policy: Policy,
    *,
    callback_id: str = ids.REQUEST_MODAL,
    classification: Classification = Classification.NORMAL,
    details: ChangeDetails | None = None,
    private_metadata: str = "",
) -> dict[str, Any]:
    """The request form for `classification`, prefilled from `details` when editing."""
    if details is None:  # the same for everyone: built once (each `/change` opens one)
        blank = _blank(policy, callback_id, classification)
        return {**blank, "private_metadata": private_metadata} if private_metadata else dict(blank)
    return _modal(policy, callback_id, classification, details, private_metadata)


def blank_request_json(policy: Policy, private_metadata: str) -> str:
    """The blank new-change form as JSON, ready to send: each `/change` opens one, and
    serialising the whole form was a good part of a views.open's cost."""
    head = _blank_json_head(policy)
    return f'{head}, "private_metadata": {json.dumps(private_metadata)}}}'


@functools.lru_cache(maxsize=16)
def _blank_json_head(policy: Policy) -> str:
    blank = _blank(policy, ids.REQUEST_MODAL, Classification.NORMAL)
    return json.dumps({k: v for k, v in blank.items() if k != "private_metadata"})[:-1]


@functools.lru_cache(maxsize=16)
def _blank(policy: Policy, callback_id: str, classification: Classification) -> dict[str, Any]:
    return _modal(policy, callback_id, classification, None, "")


def _modal(
    policy: Policy,
    callback_id: str,
    classification: Classification,
    details: ChangeDetails | None,
    private_metadata: str,
) -> dict[str, Any]:
    blocks = request_blocks(policy, classification, details)
    view = View(
        type="modal",
        callback_id=callback_id,
        title=TITLES.get(callback_id, "Change request"),
        submit=SUBMITS.get(callback_id, "Submit"),
        close="Cancel",
        blocks=blocks,
        private_metadata=private_metadata,
    )
    return view.to_dict()


def request_blocks(
    policy: Policy, classification: Classification, details: ChangeDetails | None
) -> list[AnyBlock]:
    d = details or ChangeDetails(title="", classification=classification, scope="")
    standard = classification is Classification.STANDARD
    emergency = classification is Classification.EMERGENCY
    blocks: list[AnyBlock] = [
        inputs.text_input(ids.TITLE, "Title", limit=LIMITS["title"], initial=d.title),
        _classification(policy, classification),
    ]
    if emergency:
        blocks.append(_note(EMERGENCY_NOTE))
    if standard:
        blocks.append(_procedure(policy, d.procedure_id))
    else:
        blocks.append(_scope(policy, d.scope))
    blocks += [
        inputs.text_input(
            ids.DESCRIPTION,
            "Description",
            limit=LIMITS["description"],
            multiline=True,
            optional=not requires(classification, "description"),
            initial=d.description,
            hint="What changes and why.",
        ),
        inputs.text_input(
            ids.SERVICES,
            "Affected services",
            limit=SERVICES_LIMIT,
            optional=not requires(classification, "services"),
            initial=", ".join(d.services),
            hint=f"Comma-separated, at most {MAX_SERVICES} services.",
            placeholder="api, billing-worker",
        ),
    ]
    if policy.risk.asks(classification):
        blocks += _questionnaire(policy.risk, d.answers)
    elif not standard:
        blocks.append(inputs.select(ids.RISK, "Risk", _levels(), initial=d.risk.value))
    if not standard:
        blocks += [
            inputs.select(ids.IMPACT, "Impact", _levels(), initial=d.impact.value),
            inputs.text_input(
                ids.ROLLBACK_PLAN,
                "Rollback plan",
                limit=LIMITS["rollback"],
                multiline=True,
                optional=True,
                initial=d.rollback.plan,
                hint="How to undo it. If it cannot be undone, say why below instead.",
            ),
            inputs.text_input(
                ids.NOT_REVERSIBLE_REASON,
                "Why it cannot be reversed",
                limit=LIMITS["rollback"],
                multiline=True,
                optional=True,
                initial=d.rollback.not_reversible_reason,
            ),
        ]
    if not emergency:
        window = d.window
        blocks += [
            inputs.date_time(
                ids.WINDOW_START, "Window starts", initial=window.start if window else None
            ),
            inputs.date_time(ids.WINDOW_END, "Window ends", initial=window.end if window else None),
        ]
    blocks += [
        inputs.url_input(
            ids.PULL_REQUEST, "Pull request", limit=LIMITS["link"], initial=d.links.pull_request
        ),
        inputs.url_input(ids.TICKET, "Ticket", limit=LIMITS["link"], initial=d.links.ticket),
        inputs.url_input(ids.INCIDENT, "Incident", limit=LIMITS["link"], initial=d.links.incident),
        inputs.user_select(
            ids.IMPLEMENTER,
            "Implementer",
            initial=d.implementer,
            hint="Who deploys it, if not you. An approver of the change may not implement it.",
        ),
    ]
    return blocks


def _note(mrkdwn: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=mrkdwn)])


def _classification(policy: Policy, current: Classification) -> AnyBlock:
    offered = [
        c
        for c in Classification
        # Without a catalog there is nothing a Standard change could follow.
        if c is not Classification.STANDARD or policy.catalog or current is c
    ]
    options = [inputs.option(c.value, c.label, CLASSIFICATION_OPTIONS[c]) for c in offered]
    return inputs.select(
        ids.CLASSIFICATION, "Classification", options, initial=current.value, dispatch_action=True
    )


def _procedure(policy: Policy, current: str) -> AnyBlock:
    if not policy.catalog:
        return _note("⚠️ The Standard change catalog is empty: choose Normal.")
    options = [
        inputs.option(p.id, p.label, f"Scope: {_scope_label(policy, p.scope)}")
        for p in policy.catalog
    ]
    return inputs.select(
        ids.PROCEDURE,
        "Catalog procedure",
        options,
        initial=current or None,
        hint="The pre-approved, tested procedure this change follows.",
    )


def _scope(policy: Policy, current: str) -> AnyBlock:
    options = [inputs.option(s.id, s.name) for s in policy.scope]
    return inputs.select(ids.SCOPE, "Scope", options, initial=current or None)


def _scope_label(policy: Policy, scope_id: str) -> str:
    scope = policy.scope_named(scope_id)
    return scope.name if scope else scope_id


def _questionnaire(questionnaire: Questionnaire, answers: Sequence[Answer]) -> list[AnyBlock]:
    """The policy's risk questions in place of a risk to pick, prefilled with the answers
    given (an answer the policy no longer offers is asked again)."""
    given = {a.question: a.choice for a in answers}
    blocks: list[AnyBlock] = [_note(QUESTIONNAIRE_NOTE)]
    for question in questionnaire.question:
        options = [inputs.option(c.label, c.label) for c in question.answers]
        blocks.append(
            inputs.radio(
                ids.ANSWER_PREFIX + question.id,
                question.text,
                options,
                initial=given.get(question.id),
                hint=question.hint,
            )
        )
    return blocks


def _levels() -> list[Option]:
    return [inputs.option(level.value, label) for level, label in LEVEL_LABELS.items()]


# -- reading a submission ------------------------------------------------------------------


def parse_request(values: Values, policy: Policy) -> ChangeDetails:
    """The request as the form holds it, or ValidationFailed naming every input that is
    wrong at once: what cannot be read, what is missing, and what breaks the policy's rules
    (workflows.validation). A Standard change whose procedure is not in the catalog is a
    PolicyViolation (its scope, which the form does not ask for, would be the procedure's)."""
    details, problems = _read(values, policy, strict=True)
    if problems:
        raise ValidationFailed.of(_with_rules(details, problems, policy, values))
    return details


def parse_request_leniently(values: Values, policy: Policy) -> ChangeDetails:
    """What can be read of a half-filled form, to redraw it; never raises."""
    return _read(values, policy, strict=False)[0]


def _with_rules(
    details: ChangeDetails, problems: list[tuple[str, str]], policy: Policy, values: Values
) -> list[tuple[str, str]]:
    """What could not be read, then what the rules say of the rest, one problem a field."""
    if any(field == "classification" for field, _ in problems):
        return problems  # the rules depend on it: they would only confuse
    _, rules = check_details(details, policy, None)
    named = {field for field, _ in problems}
    return problems + [(field, reason) for field, reason in rules if field not in named]


def classification_of(action: dict[str, Any]) -> Classification | None:
    """The classification picked in a block_actions payload's action, if it is one."""
    selected = action.get("selected_option") if isinstance(action, dict) else None
    value = selected.get("value") if isinstance(selected, dict) else None
    try:
        return Classification(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _read(
    values: Values, policy: Policy, *, strict: bool
) -> tuple[ChangeDetails, list[tuple[str, str]]]:
    """The request as far as it can be read, and what could not be (with `strict`, what is
    missing too: an input the classification requires that the submission lacks)."""
    problems: list[tuple[str, str]] = []

    def read(how: Callable[[], T], default: T) -> T:
        try:
            return how()
        except ValidationFailed as failed:
            problems.extend(failed.problems)
            return default

    classification = read(lambda: _required_classification(values), Classification.NORMAL)
    procedure_id = inputs.read_option(values, ids.PROCEDURE) or ""
    scope = inputs.read_option(values, ids.SCOPE) or ""
    if not scope and classification is Classification.STANDARD:
        # A Standard change's scope is its procedure's; the form does not ask for it.
        procedure = policy.procedure(procedure_id)
        if procedure is None and strict:
            # Without one there is no scope to check, and "choose a scope" would be asked of
            # a form that has no scope input: say what is really wrong instead.
            raise _outside_catalog(procedure_id)
        scope = procedure.scope if procedure else ""
    questionnaire = policy.risk.asks(classification)
    levels = {}
    for block_id, field in ((ids.RISK, "risk"), (ids.IMPACT, "impact")):
        level = read(lambda b=block_id, f=field: inputs.read_choice(values, b, Level, f), None)  # type: ignore[misc]
        # With a questionnaire the answers decide the risk: the form asks no risk to pick.
        asked = requires(classification, field) and not (questionnaire and field == "risk")
        if level is None and asked and field not in dict(problems):
            problems.append((field, f"choose the {field}: low, medium or high."))
        levels[field] = level or Level.LOW
    details = ChangeDetails(
        title=inputs.read_text(values, ids.TITLE),
        classification=classification,
        scope=scope,
        description=inputs.read_text(values, ids.DESCRIPTION),
        services=split_services(inputs.read_text(values, ids.SERVICES)),
        risk=levels["risk"],
        impact=levels["impact"],
        rollback=Rollback(
            plan=inputs.read_text(values, ids.ROLLBACK_PLAN),
            not_reversible_reason=inputs.read_text(values, ids.NOT_REVERSIBLE_REASON),
        ),
        window=read(lambda: _window(values), None),
        links=Links(
            pull_request=inputs.read_text(values, ids.PULL_REQUEST).strip(),
            ticket=inputs.read_text(values, ids.TICKET).strip(),
            incident=inputs.read_text(values, ids.INCIDENT).strip(),
        ),
        procedure_id=procedure_id,
        implementer=inputs.read_user(values, ids.IMPLEMENTER),
        answers=_answers(values, policy.risk) if questionnaire else (),
    )
    return details, problems if strict else []


def _answers(values: Values, questionnaire: Questionnaire) -> tuple[Answer, ...]:
    """The answers picked, as given; workflows.risk judges and weighs them."""
    picked = (
        (question.id, inputs.read_option(values, ids.ANSWER_PREFIX + question.id))
        for question in questionnaire.question
    )
    return tuple(Answer(question, choice) for question, choice in picked if choice)


def _outside_catalog(procedure_id: str) -> PolicyViolation:
    return PolicyViolation(
        f"{procedure_id or 'This change'} is not a pre-approved procedure in the Standard "
        "change catalog: choose Normal, so it is reviewed, tested and approved."
    )


def _required_classification(values: Values) -> Classification:
    picked = inputs.read_choice(values, ids.CLASSIFICATION, Classification, "classification")
    if picked is None:
        raise ValidationFailed("classification", "choose Standard, Normal or Emergency.")
    return picked


def _window(values: Values) -> Window | None:
    start = inputs.read_date_time(values, ids.WINDOW_START, "window_start")
    end = inputs.read_date_time(values, ids.WINDOW_END, "window")
    if start is None and end is None:
        return None
    if start is None:
        raise ValidationFailed("window_start", "give the planned start as well as the end.")
    if end is None:
        raise ValidationFailed("window", "give the planned end as well as the start.")
    return Window(start, end)


def split_services(raw: str) -> tuple[str, ...]:
    """`api, web\nworker` -> ("api", "web", "worker"): trimmed, no empties, no repeats."""
    names = (name.strip() for name in _SERVICE_SEPARATORS.split(raw))
    return tuple(dict.fromkeys(name for name in names if name))

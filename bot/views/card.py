"""A change's card: the message in the changes channel that shows where the change stands,
with one button for each move the stage machine allows now."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot import ids, text
from bot.views.common import (
    CLASSIFICATION_EMOJI,
    AnyBlock,
    Plain,
    context,
    document_label,
    header,
    markdown,
    plain_text,
    scope_name,
    section,
    to_dicts,
)
from workflows import emergency
from workflows.approval_rules import RuleProgress
from workflows.model import FIVE_STAGES, Change, Classification, Stage
from workflows.policy import Policy
from workflows.risk import drivers, format_number, score
from workflows.schedule import Conflict
from workflows.stages import Action
from workflows.standing import Standing, standing

#: Slack's limit on the elements of one actions block.
ACTIONS_PER_BLOCK = 25

LABELS = {
    # A change is back in Request only after a rejection or a reclassification.
    Action.SUBMIT: "Resubmit",
    Action.RECORD_REVIEW: "Record review",
    Action.ADD_TEST_EVIDENCE: "Add test evidence",
    Action.APPROVE: "Approve",
    Action.REJECT: "Reject",
    Action.START_DEPLOYMENT: "Start deployment",
    Action.RECORD_OUTCOME: "Record outcome",
    Action.SUBMIT_POST_CHANGE_REVIEW: "Write post-change review",
    Action.CLOSE: "Close change",
    Action.EDIT: "Edit",
    Action.CANCEL: "Cancel change",
    Action.BREAK_GLASS: "Break glass: deploy unapproved",
    Action.CLOSE_WITHOUT_REVIEW: "Close without review",
}
STYLES = {
    Action.APPROVE: "primary",
    Action.REJECT: "danger",
    Action.CANCEL: "danger",
    Action.BREAK_GLASS: "danger",
}

DONE, CURRENT, PENDING = "✅", "▶️", "▫️"


def card(change: Change, policy: Policy, now: datetime | None = None) -> dict[str, Any]:
    """The card as chat.postMessage / chat.update arguments, as it is at `now`: `text` and
    `blocks`. (Without `now`, no move that waits for a time is offered.)"""
    return card_message(standing(change, policy, now), policy)


def card_message(
    shown: Standing, policy: Policy, links: Mapping[int, str] | None = None
) -> dict[str, Any]:
    """The card of a change as it stands; `links`: the cards of the changes it conflicts
    with, by number."""
    blocks = card_blocks(shown, policy, links=links or {})
    return {"text": fallback_text(shown.change), "blocks": to_dicts(blocks)}


def fallback_text(change: Change) -> str:
    """The notification text: escaped like any mrkdwn, since Slack parses it too."""
    line = text.render_macro(
        "card.j2",
        "fallback",
        ref=change.ref,
        title=text.plain_label(change.title, 200),
        classification=change.classification.label,
        stage=change.stage.label,
    )
    return text.truncate(line, text.MESSAGE_TEXT_LIMIT)


def card_blocks(
    shown: Standing,
    policy: Policy,
    *,
    buttons: bool = True,
    links: Mapping[int, str] | None = None,
) -> list[AnyBlock]:
    change = shown.change
    blocks: list[AnyBlock] = [
        header(f"{change.ref} · {change.title}"),
        context(_kind(change)),
        section(progress(shown)),
        section("", fields=_facts(change, policy)),
    ]
    if change.details.answers:
        blocks.append(section(questionnaire_line(change)))
    if change.details.description.strip():
        blocks.append(section("*Description*\n" + text.escape(change.details.description)))
    if (rollback := _rollback(change)) is not None:
        blocks.append(section(rollback))
    if decisions := _decisions(change):
        blocks.append(section("\n".join(decisions)))
    blocks.append(section("\n".join(status_lines(shown, policy, links))))
    if pipelines := deployment_lines(change):
        blocks.append(section("\n".join(pipelines)))
    if linked := _links(change):
        blocks.append(context(linked))
    if buttons:
        blocks.extend(action_blocks(shown))
    return blocks


# -- where it stands ---------------------------------------------------------------------


def progress(shown: Standing) -> str:
    """The five stages, each done, current or pending, then Closed or Cancelled."""
    stage, done = shown.change.stage, shown.stages_done
    marks = [
        DONE if i < done else CURRENT if stage is s else PENDING for i, s in enumerate(FIVE_STAGES)
    ]
    steps = [f"{mark} {s.label}" for mark, s in zip(marks, FIVE_STAGES, strict=True)]
    if stage is Stage.CLOSED:
        steps.append("🏁 Closed")
    elif stage is Stage.CANCELLED:
        steps.append("⛔ Cancelled")
    return " → ".join(steps)


def _kind(change: Change) -> str:
    return text.render_macro(
        "card.j2",
        "kind",
        emoji=CLASSIFICATION_EMOJI[change.classification],
        classification=change.classification.label,
        stage=change.stage.label,
        created_at=change.created_at,
    )


def _facts(change: Change, policy: Policy) -> list[str]:
    details = change.details
    window = details.window
    when = (
        f"{text.slack_date(window.start)} – {text.slack_date(window.end)}"
        if window
        else "_not planned_"
    )
    risk = change.risk.value.capitalize()
    if change.review and change.risk is not details.risk:
        risk += f" (raised in review from {details.risk.value.capitalize()})"
    services = text.escape(", ".join(details.services)) if details.services else "_none named_"
    implementer = text.mention(details.implementer) if details.implementer else "_the requester_"
    return [
        f"*Requester*\n{text.mention(change.requester)}",
        f"*Implementer*\n{implementer}",
        f"*Window*\n{when}",
        f"*Services*\n{services}",
        f"*Scope*\n{text.escape(scope_name(policy, details.scope))}",
        f"*Risk / impact*\n{risk} / {details.impact.value.capitalize()}",
    ]


def questionnaire_line(change: Change) -> str:
    """The questionnaire's score and level, and the answers that drove it."""
    answers = change.details.answers
    return text.render_macro(
        "card.j2",
        "questionnaire",
        score=format_number(score(answers)),
        level=change.details.risk.value.capitalize(),
        drivers=[
            (a.asked or a.question, a.choice, format_number(a.weight)) for a in drivers(answers)
        ],
    )


def _rollback(change: Change) -> str | None:
    rollback = change.details.rollback
    if rollback.plan.strip():
        return "*Rollback plan*\n" + text.escape(rollback.plan)
    if rollback.not_reversible_reason.strip():
        return "*Not reversible*\n" + text.escape(rollback.not_reversible_reason)
    if change.classification is Classification.NORMAL:
        return "*Rollback plan*\n_none given_"
    return None


def _decisions(change: Change) -> list[str]:
    lines = []
    if change.review and change.review.kind != "procedure":
        review = change.review
        lines.append(
            text.render_macro(
                "card.j2", "review", by=review.by, assessment=review.assessment, kind=review.kind
            )
        )
    evidence = [e for e in change.test_evidence if e.kind != "procedure"]
    if evidence:
        latest = evidence[-1]
        lines.append(
            text.render_macro(
                "card.j2", "evidence", by=latest.by, text=latest.evidence, kind=latest.kind
            )
        )
    return lines


def status_lines(
    shown: Standing, policy: Policy, links: Mapping[int, str] | None = None
) -> list[str]:
    """Approvals, what is owed, the outcome, a cancellation or rejection: one line each."""
    change = shown.change
    lines = [_approvals(shown, policy)]
    lines.extend(_freeze_lines(shown))
    lines.extend(conflict_lines(shown.conflicts, links))
    if (opens := shown.break_glass_opens) is not None:
        lines.append(
            text.render_macro("card.j2", "break_glass_opens", at=opens, open=shown.break_glass_open)
        )
    if change.rejections:
        latest = change.rejections[-1]
        lines.append(
            text.render_macro(
                "card.j2",
                "rejection",
                count=len(change.rejections),
                by=latest.by,
                stage=latest.stage.label,
                reason=latest.reason,
            )
        )
    if change.break_glass_at is not None:
        lines.append(
            text.render_macro(
                "card.j2",
                "break_glass",
                at=change.break_glass_at,
                by=change.break_glass_by or change.deployed_by or change.requester,
                retrospect=emergency.retrospect(change),
                approved=emergency.approved_in_retrospect(change),
            )
        )
    if change.closed_without_review:
        lines.append(
            text.render_macro(
                "card.j2", "closed_without_review", reason=change.closed_without_review
            )
        )
    if change.deployment_started_at is not None:
        lines.append(
            text.render_macro(
                "card.j2",
                "deployment",
                started_at=change.deployment_started_at,
                by=change.deployed_by,
            )
        )
    if change.outcome is not None:
        lines.append(
            text.render_macro(
                "card.j2", "outcome", label=change.outcome.label, notes=change.outcome_notes
            )
        )
    lines.extend(_owed(shown))
    if (review := change.post_change_review) is not None:
        lines.append(
            text.render_macro(
                "card.j2",
                "post_change_review",
                by=review.by,
                justified=review.classification_justified,
                contributed=review.contributed_to_incident,
            )
        )
    if change.stage is Stage.CANCELLED:
        lines.append(text.render_macro("card.j2", "cancelled", reason=change.cancel_reason))
    elif change.stage is Stage.CLOSED and change.closed_at is not None:
        lines.append(text.render_macro("card.j2", "closed", at=change.closed_at))
    return lines


#: Lines about the gate and pipelines on one card; the audit trail keeps every one.
DEPLOYMENT_LINES = 12


def deployment_lines(change: Change) -> list[str]:
    """What the gate answered each pipeline, then the deployments pipelines reported."""
    lines = [
        text.render_macro(
            "card.j2",
            "gate_check",
            status=check.status.value,
            pipeline=check.pipeline,
            service=check.service,
            environment=check.environment,
            at=check.at,
            run=check.run,
            repository=check.repository,
            commit=check.commit,
        )
        for check in change.gate_checks
    ]
    lines += [
        text.render_macro(
            "card.j2",
            "pipeline_deployment",
            id=d.id,
            pipeline=d.pipeline,
            service=d.service,
            environment=d.environment,
            started_at=d.started_at,
            triggered_by=d.triggered_by,
            gated=d.gated,
            outcome=d.outcome.label.lower() if d.outcome else "",
            finished_at=d.finished_at,
        )
        for d in change.deployments
    ]
    return _latest(lines)


def _latest(lines: list[str]) -> list[str]:
    """The newest lines that fit one section, after a line counting the older ones left out."""
    if len(lines) <= DEPLOYMENT_LINES and sum(len(line) + 1 for line in lines) <= text.MRKDWN_LIMIT:
        return lines
    room = text.MRKDWN_LIMIT - 100  # for that line
    kept: list[str] = []
    for line in reversed(lines):
        if len(kept) == DEPLOYMENT_LINES - 1 or room < len(line) + 1:
            break
        kept.insert(0, line)
        room -= len(line) + 1
    if len(kept) < len(lines):
        count = len(lines) - len(kept)
        kept.insert(0, text.render_macro("card.j2", "more_deployments", count=count))
    return kept


def _freeze_lines(shown: Standing) -> list[str]:
    """A freeze over the change: an emergency goes ahead in one that allows it; any other
    change is held by it (a freeze added after its approval)."""
    held = shown.frozen
    return [
        text.render_macro(
            "card.j2",
            "freeze",
            freeze=one.freeze.name,
            reason=one.freeze.reason,
            until=one.end,
            held=one in held,
        )
        for one in shown.freezes
    ]


def conflict_lines(
    conflicts: Sequence[Conflict], links: Mapping[int, str] | None = None
) -> list[str]:
    """Each open change in the same place at the same time, linked to its card."""
    links = links or {}
    return [
        text.render_macro(
            "card.j2",
            "conflict",
            ref=one.other.ref,
            title=one.other.title,
            link=links.get(one.other.number, ""),
            services=one.services,
            start=one.overlap.start,
            end=one.overlap.end,
        )
        for one in conflicts
    ]


def _owed(shown: Standing) -> list[str]:
    """The post-change review owed, or the documentation an emergency will owe after it."""
    change = shown.change
    docs = [document_label(d) for d in shown.documents_owed]
    if change.review_owed:
        return [
            text.render_macro("card.j2", "review_owed", due_at=change.review_due_at, documents=docs)
        ]
    return [text.render_macro("card.j2", "documentation_to_owe", documents=docs)] if docs else []


def _approvals(shown: Standing, policy: Policy) -> str:
    change = shown.change
    if change.classification is Classification.STANDARD:
        procedure = policy.procedure(change.details.procedure_id)
        # The version the change followed, as recorded; before it is submitted, the current.
        followed = change.details.procedure_version
        if procedure is None:
            return text.render_macro(
                "card.j2",
                "procedure_missing",
                procedure_id=change.details.procedure_id,
                version=followed,
            )
        return text.render_macro(
            "card.j2", "pre_approved", procedure=procedure, version=followed or procedure.version
        )
    rules = shown.rules
    # One rule is shown as it always was, unless only people in charge of the change are in
    # it (a policy naming nobody at all is `changebot policy check`'s to say, not each card's).
    if len(rules) > 1 or any(rule.stuck and not rule.rule.approvers.is_empty for rule in rules):
        return _rules(rules)
    name = (
        "emergency_approvals" if change.classification is Classification.EMERGENCY else "approvals"
    )
    return text.render_macro(
        "card.j2",
        name,
        have=len(shown.approvers),
        needed=shown.approvals_needed,
        approvers=list(shown.approvers),
    )


def _rules(rules: Sequence[RuleProgress]) -> str:
    """Each approval rule on a line of its own, met or not, and one nobody else can meet."""
    met = sum(rule.met for rule in rules)
    lines = [text.render_macro("card.j2", "approval_rules", met=met, count=len(rules))]
    lines += [
        text.render_macro(
            "card.j2",
            "approval_rule",
            rule=rule.rule.name,
            services=list(rule.rule.services),
            have=len(rule.approved_by),
            needed=rule.needed,
            approved_by=list(rule.approved_by),
            met=rule.met,
            stuck=rule.stuck,
        )
        for rule in rules
    ]
    return "\n".join(lines)


def _links(change: Change) -> str:
    """Links the bot builds only for web addresses; anything else is shown as written."""
    links = change.details.links
    named = (
        ("Pull request", links.pull_request),
        ("Ticket", links.ticket),
        ("Incident", links.incident),
    )
    shown = [
        text.link(url, label) if text.is_web_address(url) else f"{label}: {text.escape(url)}"
        for label, url in named
        if url.strip()
    ]
    return "🔗 " + " · ".join(shown) if shown else ""


# -- the buttons -------------------------------------------------------------------------


def action_blocks(shown: Standing) -> list[Plain]:
    """One button per move available now; no block at all when there is none."""
    value = ids.target_of(shown.change).encode()  # the same on every button of the card
    buttons = [button(shown.change, action, value) for action in shown.moves]
    return [
        {"type": "actions", "elements": buttons[i : i + ACTIONS_PER_BLOCK]}
        for i in range(0, len(buttons), ACTIONS_PER_BLOCK)
    ]


def button(change: Change, action: Action, value: str) -> Plain:
    label = LABELS.get(action, action.verb.capitalize())
    if action is Action.EDIT and change.classification is Classification.EMERGENCY:
        label = "Add details"
    element: Plain = {
        "type": "button",
        "text": plain_text(text.plain_label(label, text.BUTTON_LIMIT)),
        "action_id": ids.card_action_id(action),
        "value": value,
    }
    if (style := STYLES.get(action)) is not None:
        element["style"] = style
    if (confirm := _confirm(change, action)) is not None:
        element["confirm"] = confirm
    return element


def _confirm(change: Change, action: Action) -> Plain | None:
    if action is Action.START_DEPLOYMENT:
        return _confirmation(
            title=f"Start deploying {change.ref}?",
            body=(
                "Everyone following the change will see that its deployment has started. "
                "From then on it can no longer be edited or cancelled: record its outcome."
            ),
            confirm="Start deployment",
            deny="Not yet",
        )
    if action is Action.BREAK_GLASS:
        return _confirmation(
            title="Deploy without approval?",
            body=(
                f"No approver has acted on {change.ref}. Break-glass lets you deploy now; it is "
                "recorded loudly, shown on the card, and an approval is owed in retrospect."
            ),
            confirm="Break glass",
            deny="Wait",
            style="danger",
        )
    if action is Action.CANCEL:
        return _confirmation(
            title=f"Cancel {change.ref}?",
            body="You will be asked for a reason. A cancelled change cannot be reopened.",
            confirm="Cancel change",
            deny="Keep it",
            style="danger",
        )
    return None


def _confirmation(*, title: str, body: str, confirm: str, deny: str, style: str = "") -> Plain:
    """A confirmation dialog, within Slack's limits (title 100, text 300, buttons 30)."""
    assert len(title) <= 100 and len(body) <= 300 and max(len(confirm), len(deny)) <= 30
    dialog: Plain = {
        "title": _emoji_text(title),
        "text": markdown(body),
        "confirm": _emoji_text(confirm),
        "deny": _emoji_text(deny),
    }
    if style:
        dialog["style"] = style
    return dialog


def _emoji_text(plain: str) -> Plain:
    return {**plain_text(plain), "emoji": True}

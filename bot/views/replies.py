"""What the bot says in a change's thread, and to its requester, about each audit entry.

Each audit action has a macro of the same name in `replies.j2` (and, for the decisions a
requester hears about, in `notices.j2`); what the macro needs is read from the entry here,
defensively, because stored entries are JSON and may predate a field. An action with no
macro gets a generic line, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import text
from bot.views.common import document_label, scope_name
from workflows import approval_rules
from workflows.approval_rules import RuleKind
from workflows.audit import AuditEntry, moment_in
from workflows.chase import Owed
from workflows.durations import format_duration
from workflows.events import NOTICED, Happened
from workflows.model import Change, Classification, GateStatus, Stage
from workflows.policy import Approvers, Policy
from workflows.risk import format_number

Context = dict[str, Any]

#: How the audit trail's field names read in a sentence.
FIELD_LABELS = {
    "procedure_id": "procedure",
    "rollback": "rollback plan",
    "answers": "risk questionnaire answers",
}


def thread_reply(entry: AuditEntry, change: Change, policy: Policy) -> str | None:
    """One line for the change's thread, or None when there is nothing to say."""
    action = entry.action
    if not (action.isidentifier() and text.has_macro("replies.j2", action)):
        what = action.replace("_", " ").strip() or "did something"
        line = text.render_macro("replies.j2", "unknown_action", who=entry.actor, what=what)
    else:
        build = _REPLY_CONTEXT.get(action, _nothing)
        line = text.render_macro(
            "replies.j2", action, who=entry.actor, **build(entry, change, policy)
        )
    return text.truncate(line, text.MESSAGE_TEXT_LIMIT)


def requester_notice(entry: AuditEntry, change: Change) -> str | None:
    """The direct message the requester gets about a decision on their change, if any."""
    action = entry.action
    if action not in NOTICED or entry.actor == change.requester:
        return None
    if action == Happened.SATISFIED_BY_PROCEDURE and entry.details.get("satisfies") != "approval":
        return None
    window = change.details.window
    context: Context = {"who": entry.actor, "ref": change.ref, "title": change.title}
    if action == Happened.REJECTED:
        context["reason"] = _text(entry.details.get("reason"))
    elif action == Happened.APPROVALS_WITHDRAWN:
        context["withdrawn"] = _names(entry.details.get("withdrawn"))
        context["because"] = _field_labels(entry.details.get("because"))
    elif action in (Happened.AUTHORISED, Happened.SATISFIED_BY_PROCEDURE):
        context["window_start"] = window.start if window else None
        if action == Happened.SATISFIED_BY_PROCEDURE:
            context["procedure"] = _text(entry.details.get("procedure")) or "its procedure"
    return text.truncate(
        text.render_macro("notices.j2", action, **context), text.MESSAGE_TEXT_LIMIT
    )


def ungated_notice(entry: AuditEntry, change: Change) -> str:
    """What the policy owner is told of a deployment that skipped the gate."""
    d = entry.details
    line = text.render_macro(
        "notices.j2",
        "ungated_deployment",
        who=entry.actor,
        ref=change.ref,
        title=change.title,
        deployment=_text(d.get("deployment")),
        service=_text(d.get("service")),
        environment=_text(d.get("environment")),
        reason=_text(d.get("reason")),
    )
    return text.truncate(line, text.MESSAGE_TEXT_LIMIT)


def approval_wanted(policy: Policy, change: Change) -> str:
    """Who to ask for approval of the change, and the line asking them: the policy's approvers
    (as `approvers_mention`), and for each of its owner and high-risk rules not yet met, only
    the people of that rule; "" when the policy names nobody to ask."""
    rules = approval_rules.progress(change, policy)
    if len(rules) <= 1:
        mention = approvers_mention(policy, change.classification)
        return f"{mention} this change is waiting for your approval." if mention else ""
    lines = []
    for one in rules:
        who = _mention_all(one.rule.approvers)
        if one.met or not who:
            continue
        general = one.rule.kind is RuleKind.GENERAL
        lines.append(
            text.render_macro(
                "replies.j2",
                "approval_wanted",
                who=who,
                rule="" if general else one.rule.name,
                services=list(one.rule.services),
                needed=one.missing,
            )
        )
    return "\n".join(lines)


def _mention_all(approvers: Approvers) -> text.Mrkdwn:
    groups = [text.group_mention(group) for group in approvers.groups]
    users = [text.mention(user) for user in approvers.users]
    return text.Mrkdwn(" ".join([*groups, *users]))


def approvers_mention(policy: Policy, classification: Classification) -> str:
    """Who to ask for approval: `<!subteam^S…>` groups, then `<@U…>` users; "" for Standard."""
    if classification is Classification.STANDARD:
        return ""
    approvers = (
        policy.emergency_approvers
        if classification is Classification.EMERGENCY
        else policy.approvers
    )
    groups = [text.group_mention(group) for group in approvers.groups]
    users = [text.mention(user) for user in approvers.users]
    return " ".join([*groups, *users])


# -- reading entries ----------------------------------------------------------------------


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _names(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | tuple):
        return [str(item) for item in value if item]
    return []


def _field_labels(value: object) -> list[str]:
    return [FIELD_LABELS.get(name, name.replace("_", " ")) for name in _names(value)]


def _stage_label(value: str) -> str:
    try:
        return Stage(value).label
    except ValueError:
        return value


# -- what each line needs ------------------------------------------------------------------

Builder = Callable[[AuditEntry, Change, Policy], Context]


def _nothing(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    return {}


def _requested(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    d = entry.details
    try:
        classification = Classification(_text(d.get("classification"))).label
    except ValueError:
        classification = change.classification.label
    return {
        "classification": classification,
        "scope": scope_name(policy, _text(d.get("scope")) or change.details.scope),
    }


def _submitted(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    return {"standard": change.classification is Classification.STANDARD}


def _reviewed(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    d = entry.details
    return {
        "risk": _text(d.get("risk")) or change.risk.value,
        "risk_raised": bool(d.get("risk_raised")),
        "assessment": _text(d.get("assessment")),
    }


def _tested(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    return {"evidence": _text(entry.details.get("evidence"))}


def _approved(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    approvers = list(change.approvers())
    # Counted on the change as it is now; an approval since withdrawn is shown without one.
    count = approvers.index(entry.actor) + 1 if entry.actor in approvers else None
    rules = approval_rules.progress(change, policy)
    several = len(rules) > 1 and not entry.details.get("retrospective")
    return {
        "count": count,
        "needed": policy.required_approvals(change.classification, change.risk),
        # With several rules, what counts is which of them the approval is for.
        "counts_for": [r.rule.name for r in rules if entry.actor in r.approved_by]
        if several
        else [],
        "rules_met": sum(r.met for r in rules),
        "rules": len(rules),
        "stands_for": _names(entry.details.get("stands_for")),
        "comment": _text(entry.details.get("comment")),
        "retrospective": bool(entry.details.get("retrospective")),
    }


def _authorised(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    return {"approvers": _names(entry.details.get("approvers"))}


def _rejected(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    return {
        "stage": _stage_label(entry.from_stage),
        "reason": _text(entry.details.get("reason")),
        "withdrawn": _names(entry.details.get("approvals_withdrawn")),
    }


def _satisfied(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    d = entry.details
    procedure_id = _text(d.get("procedure"))
    procedure = policy.procedure(procedure_id)
    version = _text(d.get("version"))
    label = f"{procedure.name} (v{version})" if procedure and version else procedure_id
    satisfies = {"approval": "approval", "review": "review", "test": "testing"}
    return {
        "satisfies": satisfies.get(_text(d.get("satisfies")), "step"),
        "procedure": label or "of the catalog",
        "runbook": _text(d.get("runbook")),
    }


def _outcome(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    d = entry.details
    raw = _text(d.get("outcome"))
    return {
        "outcome": raw.replace("_", " ").capitalize() or "recorded",
        "notes": _text(d.get("notes")),
        "review_owed": bool(d.get("review_owed")),
        "due_at": moment_in(d.get("review_due_at")),
        "owed": [document_label(doc) for doc in _names(d.get("owed_documents"))],
    }


def _post_change_review(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    d = entry.details
    return {
        "justified": bool(d.get("classification_justified")),
        "contributed": bool(d.get("contributed_to_incident")),
        "documentation": [document_label(doc) for doc in _names(d.get("documentation"))],
    }


def _edited(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    d = entry.details
    rescored = ""
    if isinstance(score := d.get("score"), int | float) and not isinstance(score, bool):
        rescored = f"{format_number(score)}: {_text(d.get('risk')).capitalize()}"
    return {"fields": _field_labels(d.get("fields")), "rescored": rescored}


def _withdrawn(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    return {
        "withdrawn": _names(entry.details.get("withdrawn")),
        "because": _field_labels(entry.details.get("because")),
    }


def _because(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    return {"because": _field_labels(entry.details.get("because"))}


def _cancelled(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    return {"reason": _text(entry.details.get("reason"))}


def _break_glass(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    seconds = entry.details.get("waited_seconds")
    waited = format_duration(timedelta(seconds=seconds)) if isinstance(seconds, int) else "time"
    return {"waited": waited, "reason": _text(entry.details.get("reason"))}


def _reminder(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    owed = Owed(entry.details.get("kind", Owed.POST_CHANGE_REVIEW.value))
    due = _parse_time(entry.details.get("due"))
    seconds = entry.details.get("overdue_seconds")
    overdue = format_duration(timedelta(seconds=seconds)) if isinstance(seconds, int) else ""
    return {
        "owner": _text(entry.details.get("owner")),
        "owed": owed.label,
        "due": due,
        # At the deadline itself the first escalation is overdue by nothing yet.
        "overdue": overdue if overdue and overdue != "0s" else "",
        "approvers": approvers_mention(policy, change.classification),
        "approval": owed is Owed.RETROSPECTIVE_APPROVAL,
        "unreached": _text(entry.details.get("slack_error"))
        if entry.details.get("delivery") == "unreachable"
        else "",
    }


def _snoozed(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    owed = Owed(entry.details.get("kind", Owed.POST_CHANGE_REVIEW.value))
    return {"owed": owed.label, "until": _parse_time(entry.details.get("until"))}


def _deployment(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    """A deployment's start, by a person (no details) or a pipeline (what it deploys)."""
    d = entry.details
    return {
        "deployment": _text(d.get("deployment")),
        "service": _text(d.get("service")),
        "environment": _text(d.get("environment")),
        "triggered_by": _text(d.get("triggered_by")),
    }


def _pipeline_finished(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    running = entry.details.get("running")
    return {
        **_deployment(entry, change, policy),
        "outcome": _text(entry.details.get("outcome")).replace("_", " ") or "ended",
        "running": running if isinstance(running, int) else 0,
    }


def _ungated(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    d = entry.details
    return {
        "deployment": _text(d.get("deployment")),
        "service": _text(d.get("service")),
        "environment": _text(d.get("environment")),
        "reason": _text(d.get("reason")),
        "owner": _text(d.get("owner")),
    }


def _gate_decided(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    d = entry.details
    status = _text(d.get("status"))
    reasons = _names(d.get("reasons"))
    return {
        "status": status,
        "service": _text(d.get("service")),
        "environment": _text(d.get("environment")),
        "repository": _text(d.get("repository")),
        "commit": _text(d.get("commit")),
        "run": _text(d.get("run")),
        "reason": reasons[0] if reasons else "",
        "requester": change.requester if status == GateStatus.AWAITING.value else "",
    }


def _triggered(entry: AuditEntry, change: Change, policy: Policy) -> Context:
    return {"owner": _text(entry.details.get("owner"))}


def _parse_time(value: object) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return datetime.now(UTC)


_REPLY_CONTEXT: Mapping[str, Builder] = {
    Happened.DEPLOYMENT_STARTED: _deployment,
    Happened.PIPELINE_DEPLOYMENT_STARTED: _deployment,
    Happened.PIPELINE_DEPLOYMENT_FINISHED: _pipeline_finished,
    Happened.UNGATED_DEPLOYMENT: _ungated,
    Happened.GATE_DECIDED: _gate_decided,
    Happened.BREAK_GLASS: _break_glass,
    Happened.CLOSED_WITHOUT_REVIEW: _cancelled,
    Happened.REMINDER_SENT: _reminder,
    Happened.REMINDER_ESCALATED: _reminder,
    Happened.REMINDER_SNOOZED: _snoozed,
    Happened.POLICY_REVIEW_TRIGGERED: _triggered,
    Happened.REQUESTED: _requested,
    Happened.SUBMITTED: _submitted,
    Happened.REVIEWED: _reviewed,
    Happened.TESTED: _tested,
    Happened.APPROVED: _approved,
    Happened.AUTHORISED: _authorised,
    Happened.REJECTED: _rejected,
    Happened.SATISFIED_BY_PROCEDURE: _satisfied,
    Happened.OUTCOME_RECORDED: _outcome,
    Happened.POST_CHANGE_REVIEW_SUBMITTED: _post_change_review,
    Happened.EDITED: _edited,
    Happened.APPROVALS_WITHDRAWN: _withdrawn,
    Happened.RETURNED_TO_REQUEST: _because,
    Happened.RETURNED_TO_APPROVE: _because,
    Happened.CANCELLED: _cancelled,
}


def confirmation(change: Change, permalink: str) -> str:
    """The requester's confirmation, with a link to the change's thread."""
    line = text.render_macro(
        "notices.j2", "confirmation", ref=change.ref, title=change.title, permalink=permalink
    )
    return text.truncate(line, text.MESSAGE_TEXT_LIMIT)


def mirror_refused(change: Change, channel: str, permalink: str) -> str:
    """Told to the requester when an emergency's card cannot be posted where it was declared."""
    line = text.render_macro(
        "notices.j2", "mirror_refused", ref=change.ref, channel=channel, permalink=permalink
    )
    return text.truncate(line, text.MESSAGE_TEXT_LIMIT)


def cannot_show(change: Change, what_to_do: str) -> str:
    """Told to a requester when Slack refuses to show their change for a reason only a person
    can fix."""
    line = text.render_macro(
        "notices.j2", "cannot_show", ref=change.ref, title=change.title, what_to_do=what_to_do
    )
    return text.truncate(line, text.MESSAGE_TEXT_LIMIT)

"""A reminder of what is owed, as its owner reads it in a direct message, and the policy
owner's copy of an escalation."""

from __future__ import annotations

import json
from typing import Any

from bot import ids
from bot.text import escape, slack_date
from workflows.chase import Owed, Reminder, may_snooze
from workflows.durations import format_duration
from workflows.model import Change


def _what(reminder: Reminder, change: Change | None) -> str:
    label = reminder.obligation.kind.label
    return f"the {label} of {change.ref} “{change.title}”" if change else f"the {label}"


def reminder_text(reminder: Reminder, change: Change | None) -> str:
    what = escape(_what(reminder, change))
    # Only an approver can give a retrospective approval: its owner, the requester, is told
    # that the approvers have been asked in the change's thread, not to write it.
    approval = reminder.obligation.kind is Owed.RETROSPECTIVE_APPROVAL
    if reminder.escalated:
        overdue = _overdue(reminder)
        if approval:
            return f"🚨 {overdue}: {what}. The approvers are asked again in its thread."
        return f"🚨 {overdue}: {what}. Please write it now."
    due = slack_date(reminder.obligation.deadline)
    if approval:
        return (
            f"⏰ Reminder: {what} is owed, due {due}. Only an approver can give it; they have "
            "been asked in its thread."
        )
    return f"⏰ Reminder: {what} is owed. It is due {due}."


def escalation_text(reminder: Reminder, change: Change | None) -> str:
    owner = f"<@{reminder.obligation.owner}>" if reminder.obligation.owner else "nobody"
    whose = "requested by" if reminder.obligation.kind is Owed.RETROSPECTIVE_APPROVAL else "by"
    overdue = _overdue(reminder)
    return (
        f"🚨 As the owner of the change policy: {escape(_what(reminder, change))} {whose} "
        f"{owner}: {overdue[0].lower()}{overdue[1:]}."
    )


def _overdue(reminder: Reminder) -> str:
    """ "Overdue by 4h", or, at the deadline itself, "Due now and overdue from now on"."""
    seconds = int(reminder.overdue_by.total_seconds())
    if seconds < 1:
        return "Due now and overdue from now on"
    return f"Overdue by {format_duration(reminder.overdue_by)}"


def reminder_blocks(reminder: Reminder, change: Change | None) -> list[dict[str, Any]]:
    obligation = reminder.obligation
    buttons: list[dict[str, Any]] = []
    if obligation.kind is Owed.POST_CHANGE_REVIEW and change is not None:
        buttons.append(
            _button(
                "Write the review",
                ids.WRITE_REVIEW,
                ids.Target(change.number, change.stage).encode(),
                "primary",
            )
        )
    if obligation.kind is Owed.POLICY_REVIEW:
        buttons.append(_button("Record the policy review", ids.POLICY_REVIEWED, "{}", "primary"))
    # An escalation is not the owner's to put off (workflows.chase.may_snooze).
    if may_snooze(obligation, reminder.sent_at) is None:
        for choice, label in (("1h", "Snooze 1 hour"), ("1d", "Snooze 1 day")):
            value = json.dumps({"k": obligation.kind.value, "n": obligation.number, "c": choice})
            buttons.append(_button(label, f"{ids.SNOOZE_PREFIX}{choice}", value))
    section = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": reminder_text(reminder, change)},
    }
    return [section, {"type": "actions", "elements": buttons}]


def _button(label: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button

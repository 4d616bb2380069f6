"""What Slack must show for each event of the audit trail: a reply in the change's thread,
and the people who must hear of it directly. Pure: the publisher delivers them in order."""

from __future__ import annotations

from dataclasses import dataclass

from bot.views import replies
from workflows.audit import AuditEntry
from workflows.events import Happened, calls_approvers
from workflows.model import Change
from workflows.policy import Policy


@dataclass(frozen=True)
class Effect:
    """One message: in the change's thread (`to` empty) or to one person (`to` a user ID)."""

    text: str
    to: str = ""


def effects_for(entry: AuditEntry, change: Change, policy: Policy) -> list[Effect]:
    if entry.action == Happened.GATE_DECIDED and not entry.details.get("news"):
        return []  # a pipeline asking again and hearing the same: recorded, nothing to show
    if entry.action == Happened.FREEZE_REFUSED:
        return []  # the person was told on the form; the thread would hear of it late
    found: list[Effect] = []
    reply = replies.thread_reply(entry, change, policy)
    if reply:
        if calls_approvers(entry, change.classification):
            asking = replies.approval_wanted(policy, change)
            if asking:
                reply = f"{reply}\n{asking}"
        found.append(Effect(reply))
    notice = replies.requester_notice(entry, change)
    if notice and entry.actor != change.requester:
        found.append(Effect(notice, to=change.requester))
    owner = policy.policy.owner
    if entry.action == Happened.UNGATED_DEPLOYMENT and owner:
        found.append(Effect(replies.ungated_notice(entry, change), to=owner))
    return found

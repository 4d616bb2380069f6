"""What Slack must show for each event of the audit trail: a reply in the change's thread,
and the people who must hear of it directly. Pure: the publisher delivers them in order."""

from __future__ import annotations

from dataclasses import dataclass

from bot.views import replies
from workflows.audit import AuditEntry
from workflows.deployments import UNGATED
from workflows.gate import DECIDED
from workflows.model import Change, Classification, Stage
from workflows.policy import Policy


@dataclass(frozen=True)
class Effect:
    """One message: in the change's thread (`to` empty) or to one person (`to` a user ID)."""

    text: str
    to: str = ""


def effects_for(entry: AuditEntry, change: Change, policy: Policy) -> list[Effect]:
    if entry.action == DECIDED and not entry.details.get("news"):
        return []  # a pipeline asking again and hearing the same: recorded, nothing to show
    found: list[Effect] = []
    reply = replies.thread_reply(entry, change, policy)
    if reply:
        if _calls_approvers(entry, change):
            mention = replies.approvers_mention(policy, change.classification)
            if mention:
                reply = f"{reply}\n{mention} this change is waiting for your approval."
        found.append(Effect(reply))
    notice = replies.requester_notice(entry, change)
    if notice and entry.actor != change.requester:
        found.append(Effect(notice, to=change.requester))
    owner = policy.policy.owner
    if entry.action == UNGATED and owner:
        found.append(Effect(replies.ungated_notice(entry, change), to=owner))
    return found


def _calls_approvers(entry: AuditEntry, change: Change) -> bool:
    """Approvers are called when a change reaches Approve, and at once for an emergency."""
    reached_approve = entry.to_stage == Stage.APPROVE.value != entry.from_stage
    if reached_approve and entry.action != "approved":
        return change.classification is not Classification.STANDARD
    return (
        change.classification is Classification.EMERGENCY
        and entry.action == "submitted"
        and entry.to_stage == Stage.REVIEW.value
    )

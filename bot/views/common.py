"""Small pieces every surface shares: text blocks cut to Slack's limits, and the words for
the domain's names."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from slack_sdk.models.blocks import Block

from bot import text
from workflows.model import Classification, Stage
from workflows.policy import Policy
from workflows.standing import Standing

#: Most blocks Slack accepts in one message, and in one modal or App Home.
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
#: Most fields Slack shows in one section.
SECTION_FIELDS = 10

CLASSIFICATION_EMOJI = {
    Classification.STANDARD: "🟩",
    Classification.NORMAL: "🟦",
    Classification.EMERGENCY: "🟥",
}

DOCUMENT_LABELS = {
    "description": "description",
    "rollback": "rollback plan",
    "test_evidence": "test evidence",
}


def document_label(name: str) -> str:
    return DOCUMENT_LABELS.get(name, name.replace("_", " "))


def scope_name(policy: Policy, scope_id: str) -> str:
    scope = policy.scope_named(scope_id)
    return scope.name if scope else scope_id


#: A block as Slack takes it, built as a plain dict: the surfaces drawn often (a change's card
#: is drawn again for every step and every pipeline's first answer) skip slack_sdk's objects,
#: whose to_dict() was three quarters of drawing a card. Either kind goes in `to_dicts`.
Plain = dict[str, Any]
#: What the views put in a message or a view: slack_sdk's objects, or plain dicts.
AnyBlock = Block | Plain


def header(plain: str) -> Plain:
    return {"type": "header", "text": plain_text(text.plain_label(plain, text.HEADER_LIMIT))}


def section(mrkdwn: str, *, fields: Sequence[str] = ()) -> Plain:
    """A section of mrkdwn (already escaped), cut to Slack's limits."""
    # What slack_sdk's objects checked before they were dropped here (Slack would refuse it).
    if not mrkdwn and not fields:
        raise ValueError("a section needs text or fields")
    if len(fields) > SECTION_FIELDS:
        raise ValueError(f"a section holds at most {SECTION_FIELDS} fields, not {len(fields)}")
    block: Plain = {"type": "section"}
    if mrkdwn:
        block["text"] = markdown(text.truncate(mrkdwn, text.MRKDWN_LIMIT))
    if fields:
        block["fields"] = [markdown(text.truncate(field, text.FIELD_LIMIT)) for field in fields]
    return block


def context(*mrkdwn: str) -> Plain:
    return {
        "type": "context",
        "elements": [markdown(text.truncate(m, text.MRKDWN_LIMIT)) for m in mrkdwn],
    }


def divider() -> Plain:
    return {"type": "divider"}


def markdown(mrkdwn: str) -> Plain:
    return {"type": "mrkdwn", "text": mrkdwn}


def plain_text(plain: str) -> Plain:
    return {"type": "plain_text", "text": plain}


def to_dicts(blocks: Iterable[AnyBlock]) -> list[Plain]:
    return [block if isinstance(block, dict) else block.to_dict() for block in blocks]


def change_line(shown: Standing) -> str:
    """One change on one line: reference, title, stage, classification, the approvals it
    still waits for, and a review owed."""
    change = shown.change
    # With owners or high-risk approvers to hear from, a count of approvals would mislead.
    rules = len(shown.rules) > 1
    have = sum(rule.met for rule in shown.rules) if rules else len(shown.approvers)
    return text.render_macro(
        "lists.j2",
        "change_line",
        ref=change.ref,
        title=change.title,
        stage=change.stage.label,
        classification=change.classification.label,
        emoji=CLASSIFICATION_EMOJI[change.classification],
        approvals=have if change.stage is Stage.APPROVE else None,
        needed=len(shown.rules) if rules else shown.approvals_needed,
        rules=rules,
        review_owed=change.review_owed,
        due_at=change.review_due_at,
        overdue=shown.review_overdue,
        overlaps=[conflict.other.ref for conflict in shown.conflicts],
    )


def list_sections(shown: Sequence[Standing], *, room: int, empty: str) -> list[AnyBlock]:
    """One section per change, in at most `room` blocks; the rest counted in a last line."""
    if not shown:
        return [context(empty)]
    room = max(room, 1)
    listed = shown if len(shown) <= room else shown[: room - 1]
    blocks: list[AnyBlock] = [section(change_line(one)) for one in listed]
    if len(listed) < len(shown):
        more = text.render_macro("lists.j2", "more", count=len(shown) - len(listed))
        blocks.append(context(more))
    return blocks

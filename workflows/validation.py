"""Field-by-field checks of what a person writes, with the limits the forms show."""

from __future__ import annotations

import re
from datetime import datetime

from workflows.errors import PolicyViolation, ValidationFailed
from workflows.model import ChangeDetails, Classification
from workflows.policy import Policy

#: Longest text each field accepts; the Slack forms show the same limits.
LIMITS = {
    "title": 150,
    "description": 3000,
    "service": 80,
    "rollback": 3000,
    "link": 500,
    "assessment": 3000,
    "evidence": 3000,
    "reason": 1000,
    "comment": 1000,
    "notes": 3000,
    "review_text": 3000,
}
MAX_SERVICES = 20
_URL = re.compile(r"^https?://[^\s<>|]+$")


def check_text(field: str, value: str, limit_key: str, *, required: bool = False) -> str:
    """Trimmed text within its limit, or ValidationFailed naming the field."""
    text = value.strip()
    if "\x00" in text:
        raise ValidationFailed(field, "contains a NUL character; remove it and try again.")
    if required and not text:
        raise ValidationFailed(field, "this field is required.")
    limit = LIMITS[limit_key]
    if len(text) > limit:
        raise ValidationFailed(field, f"at most {limit} characters (this has {len(text)}).")
    return text


def check_line(field: str, value: str, limit: int, *, required: bool = False) -> str:
    """One line a machine wrote (a service, an environment, an id): trimmed, within `limit`,
    without control characters."""
    text = value.strip()
    if _CONTROL.search(text):
        raise ValidationFailed(field, "contains a control character or a line break.")
    if required and not text:
        raise ValidationFailed(field, "this field is required.")
    if len(text) > limit:
        raise ValidationFailed(field, f"at most {limit} characters (this has {len(text)}).")
    return text


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_link(field: str, value: str) -> str:
    text = check_text(field, value, "link")
    if text and not _URL.match(text):
        raise ValidationFailed(field, "write a web address starting with https:// or http://.")
    return text


def validate_details(details: ChangeDetails, policy: Policy, now: datetime | None) -> ChangeDetails:
    """Check a change request against the policy; return it trimmed, or raise naming the field.

    Emergency changes need only a title and a scope: the rest becomes owed, not waived.
    `now` is None when the window is not being changed, so an old window is not re-judged.
    """
    kind = details.classification
    full = kind is not Classification.EMERGENCY
    title = check_text("title", details.title, "title", required=True)
    description = check_text(
        "description", details.description, "description", required=kind is Classification.NORMAL
    )
    if kind is Classification.STANDARD:
        # The catalog procedure decides the scope; name the real problem first.
        procedure = policy.procedure(details.procedure_id.strip())
        if procedure is not None:
            details = details.with_changes(scope=procedure.scope)
        else:
            _refuse_outside_catalog(details.procedure_id.strip())
    if policy.scope_named(details.scope) is None:
        names = ", ".join(s.id for s in policy.scope)
        raise ValidationFailed("scope", f"choose one of the policy's scope categories ({names}).")
    services = tuple(s.strip() for s in details.services if s.strip())
    if full and not services:
        raise ValidationFailed("services", "name at least one affected service.")
    if len(services) > MAX_SERVICES:
        raise ValidationFailed("services", f"at most {MAX_SERVICES} services.")
    for service in services:
        check_text("services", service, "service")
    rollback = details.rollback
    check_text("rollback", rollback.plan, "rollback")
    check_text("rollback", rollback.not_reversible_reason, "rollback")
    if kind is Classification.NORMAL and not rollback.is_given:
        raise ValidationFailed(
            "rollback", "give a rollback plan, or say why this change cannot be reversed."
        )
    window = details.window
    if kind is not Classification.EMERGENCY and window is None:
        raise ValidationFailed("window", "give the planned start and end.")
    if window is not None:
        if window.start.tzinfo is None or window.end.tzinfo is None:
            raise ValidationFailed("window", "the start and end need a time zone.")
        if window.end <= window.start:
            raise ValidationFailed("window", "the window ends before it starts.")
        if now is not None and window.end <= now:
            raise ValidationFailed("window", "the window lies in the past.")
    links = details.links
    for name in ("pull_request", "ticket", "incident"):
        check_link(name, getattr(links, name))
    procedure_id = details.procedure_id.strip()
    scope = details.scope
    if kind is Classification.STANDARD:
        procedure = policy.procedure(procedure_id)
        if procedure is None:
            _refuse_outside_catalog(procedure_id)
        else:
            scope = procedure.scope
    elif procedure_id:
        raise ValidationFailed("procedure", "only a Standard change names a catalog procedure.")
    return details.with_changes(
        title=title,
        description=description,
        services=services,
        scope=scope,
        procedure_id=procedure_id,
    )


def _refuse_outside_catalog(procedure_id: str) -> None:
    raise PolicyViolation(
        f"{procedure_id or 'This change'} is not a pre-approved procedure in the Standard "
        "change catalog: choose Normal, so it is reviewed, tested and approved."
    )

"""Field-by-field checks of what a person writes, with the limits the forms show."""

from __future__ import annotations

import re
from datetime import datetime

from workflows.errors import PolicyViolation, ValidationFailed
from workflows.freezes import Allows, blocking, described
from workflows.model import Answer, ChangeDetails, Classification
from workflows.policy import Policy
from workflows.risk import assess

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


#: What each classification's request must say; the form marks the rest optional. An
#: emergency needs only what identifies it now: the rest is owed, not waived.
REQUIRED: dict[Classification, frozenset[str]] = {
    Classification.NORMAL: frozenset(
        {"title", "scope", "description", "services", "risk", "impact", "rollback", "window"}
    ),
    Classification.STANDARD: frozenset({"title", "procedure", "services", "window"}),
    Classification.EMERGENCY: frozenset({"title", "scope"}),
}


def requires(classification: Classification, field: str) -> bool:
    return field in REQUIRED[classification]


def validate_details(
    details: ChangeDetails, policy: Policy, now: datetime | None, *, freezes: bool | None = None
) -> ChangeDetails:
    """Check a change request against the policy; return it trimmed, or raise naming every
    field that is wrong at once (ValidationFailed.problems), so it is fixed in one go.

    `now` is None when the window is not being changed, so an old window is not re-judged.
    `freezes`: whether to refuse a window in a freeze (by default, when the window is judged:
    an edit of what the freezes look at, its services or its class, asks it alone).
    """
    found = _Problems()
    checked = _check(details, policy, now, found, freezes=freezes)
    if found.problems:
        failed = ValidationFailed.of(found.problems)
        failed.freezes = found.freezes
        raise failed
    return checked


def check_details(
    details: ChangeDetails, policy: Policy, now: datetime | None
) -> tuple[ChangeDetails, list[tuple[str, str]]]:
    """The request trimmed, and what is wrong with it, field by field (one problem a field).
    A Standard change outside the catalog is a PolicyViolation, raised at once: nothing else
    matters then."""
    found = _Problems()
    checked = _check(details, policy, now, found)
    return checked, found.problems


def _check(
    details: ChangeDetails,
    policy: Policy,
    now: datetime | None,
    found: _Problems,
    *,
    freezes: bool | None = None,
) -> ChangeDetails:
    kind = details.classification
    title = found.text("title", details.title, "title", required=True)
    description = found.text(
        "description", details.description, "description", required=requires(kind, "description")
    )
    procedure_id = details.procedure_id.strip()
    scope = details.scope
    if kind is Classification.STANDARD:
        # The catalog procedure decides the scope; name the real problem first.
        procedure = policy.procedure(procedure_id)
        if procedure is None:
            _refuse_outside_catalog(procedure_id)
        else:
            scope = procedure.scope
    elif procedure_id:
        found.add("procedure", "only a Standard change names a catalog procedure.")
    if policy.scope_named(scope) is None:
        names = ", ".join(s.id for s in policy.scope)
        found.add("scope", f"choose one of the policy's scope categories ({names}).")
    try:
        services = _services(details, kind)
    except ValidationFailed as failed:
        found.note(failed)
        services = ()
    rollback = details.rollback
    found.text("rollback", rollback.plan, "rollback")
    found.text("rollback", rollback.not_reversible_reason, "rollback")
    if requires(kind, "rollback") and not rollback.is_given:
        found.add("rollback", "give a rollback plan, or say why this change cannot be reversed.")
    try:
        _window(details, kind, now)
    except ValidationFailed as failed:
        found.note(failed)
    else:
        if (now is not None if freezes is None else freezes) and details.window is not None:
            _not_frozen(found, policy, details.window.start, details.window.end, services, kind)
    for name in ("pull_request", "ticket", "incident"):
        try:
            check_link(name, getattr(details.links, name))
        except ValidationFailed as failed:
            found.note(failed)
    risk = details.risk
    answers: tuple[Answer, ...] = ()
    if policy.risk.asks(kind):
        # The questionnaire decides the risk; what the request said of it does not count.
        try:
            assessment = assess(policy.risk, details.answers)
        except ValidationFailed as failed:
            found.note(failed)
        else:
            risk, answers = assessment.level, assessment.answers
    checked = details.with_changes(
        title=title,
        description=description,
        services=services,
        scope=scope,
        procedure_id=procedure_id,
        risk=risk,
        answers=answers,
    )
    return checked


class _Problems:
    """What is wrong, one problem a field, in the order the form asks."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []
        #: The freezes the window falls in, named for the audit trail.
        self.freezes: tuple[str, ...] = ()

    def add(self, field: str, reason: str) -> None:
        if all(field != known for known, _ in self.problems):
            self.problems.append((field, reason))

    def note(self, failed: ValidationFailed) -> None:
        for field, reason in failed.problems:
            self.add(field, reason)

    def text(self, field: str, value: str, limit_key: str, *, required: bool = False) -> str:
        try:
            return check_text(field, value, limit_key, required=required)
        except ValidationFailed as failed:
            self.note(failed)
            return value.strip()


def _services(details: ChangeDetails, kind: Classification) -> tuple[str, ...]:
    services = tuple(s.strip() for s in details.services if s.strip())
    if requires(kind, "services") and not services:
        raise ValidationFailed("services", "name at least one affected service.")
    if len(services) > MAX_SERVICES:
        raise ValidationFailed("services", f"at most {MAX_SERVICES} services.")
    for service in services:
        check_text("services", service, "service")
    return services


def _window(details: ChangeDetails, kind: Classification, now: datetime | None) -> None:
    window = details.window
    if requires(kind, "window") and window is None:
        raise ValidationFailed("window", "give the planned start and end.")
    if window is None:
        return
    if window.start.tzinfo is None or window.end.tzinfo is None:
        raise ValidationFailed("window", "the start and end need a time zone.")
    if window.end <= window.start:
        raise ValidationFailed("window", "the window ends before it starts.")
    if now is not None and window.end <= now:
        raise ValidationFailed("window", "the window lies in the past.")


def _not_frozen(
    found: _Problems,
    policy: Policy,
    start: datetime,
    end: datetime,
    services: tuple[str, ...],
    kind: Classification,
) -> None:
    """A window that overlaps a freeze forbidding this change is refused on the window."""
    frozen = blocking(policy.freeze, start, end, services, kind)
    if frozen:
        found.freezes = tuple(one.freeze.name for one in frozen)
        first = frozen[0]
        reason = described(first)
        emergencies = first.freeze.allows is Allows.EMERGENCY
        found.add(
            "window",
            f"{reason[0].upper()}{reason[1:]}; choose a window outside it"
            + (" (only an emergency change may go ahead in it)." if emergencies else "."),
        )


def _refuse_outside_catalog(procedure_id: str) -> None:
    raise PolicyViolation(
        f"{procedure_id or 'This change'} is not a pre-approved procedure in the Standard "
        "change catalog: choose Normal, so it is reviewed, tested and approved."
    )

"""What can go wrong in the change process: each error carries data and a readable sentence."""

from __future__ import annotations

from collections.abc import Sequence


class ChangeError(Exception):
    """Something in the change process that a person must hear about."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(ChangeError):
    """The change (or another thing asked for) does not exist."""

    def __init__(self, what: str, key: str) -> None:
        super().__init__(f"There is no {what} {key}.")
        self.what = what
        self.key = key


class NotAllowed(ChangeError):
    """This person may not do this (separation of duties, least privilege)."""

    def __init__(self, actor: str, action: str, reason: str) -> None:
        super().__init__(reason)
        self.actor = actor
        self.action = action
        self.reason = reason


class TransitionNotAllowed(ChangeError):
    """The stage machine has no such move from the change's current stage."""

    def __init__(self, action: str, stage: str, reason: str = "", *, what: str = "change") -> None:
        text = f"Can't {action} a {what} that is in {stage}"
        super().__init__(f"{text}: {reason}" if reason else f"{text}.")
        self.action = action
        self.stage = stage
        self.reason = reason


class PolicyViolation(ChangeError):
    """The request breaks the change policy (e.g. a Standard change outside the catalog)."""


class Conflict(ChangeError):
    """The request contradicts what is already recorded (a deployment id reused, say)."""


class ValidationFailed(ChangeError):
    """Fields of the request are missing or wrong: the first, and every other found with it."""

    def __init__(self, field: str, message: str, *, more: Sequence[tuple[str, str]] = ()) -> None:
        problems = ((field, message), *more)
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))
        self.field = field
        self.reason = message
        #: (field, what is wrong with it), the first one first.
        self.problems: tuple[tuple[str, str], ...] = problems
        #: The freezes the window falls in, if that is one of the problems: a refusal the
        #: audit trail records (workflows.process).
        self.freezes: tuple[str, ...] = ()

    @classmethod
    def of(cls, problems: Sequence[tuple[str, str]]) -> ValidationFailed:
        (field, message), *more = problems
        return cls(field, message, more=more)


class StaleChange(ChangeError):
    """Someone else changed this change first; the action was based on an older version."""

    def __init__(self, ref: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{ref} changed while you were looking at it (version {expected}, now {actual}). "
            "Look at the latest card and try again."
        )
        self.ref = ref
        self.expected = expected
        self.actual = actual


class AlreadyRequested(ChangeError):
    """The request form was submitted before (Slack sent it again): its change stands."""

    def __init__(self, number: int) -> None:
        super().__init__(f"This form was submitted already: it is change {number}.")
        self.number = number


class StaleAction(ChangeError):
    """The button clicked belongs to an older stage of the change."""

    def __init__(self, ref: str, seen: str, now: str) -> None:
        super().__init__(
            f"That button is from an older card: {ref} was in {seen} and is now in {now}. "
            "Nothing was changed."
        )
        self.ref = ref
        self.seen = seen
        self.now = now


class EditedSince(ChangeError):
    """The button clicked or the form submitted shows the change as it was before an edit."""

    def __init__(self, ref: str) -> None:
        super().__init__(
            f"{ref} was edited since this was shown to you: look at its card again, as it is "
            "now. Nothing was changed."
        )
        self.ref = ref


class PolicyError(Exception):
    """A policy file is unreadable or invalid; names the file, the key and what is wrong."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        where = f"{source}: {key}" if key else source
        super().__init__(f"Bad change policy in {where}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem

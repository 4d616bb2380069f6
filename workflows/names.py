"""People, user groups and channels as people write them: `@handle` and `#name` in the policy.

Any policy field typed `UserId`, `GroupId` or `ChannelId` (wherever it is: a table, a list, a
table in a list of tables) may hold an ID or a name. `references` finds them all by the mark
their type carries; `resolve` swaps the names for the IDs the workspace has for them, and checks
that user group IDs exist, from what Slack said about the workspace (`Workspace`); the bot reads
that from the Web API at start-up and again now and then (bot.names).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from workflows.errors import PolicyError
from workflows.policy import Policy, SlackKind, SlackRef


@dataclass(frozen=True)
class Reference:
    """One Slack user, user group or channel the policy names: where, and as written."""

    key: str
    kind: SlackKind
    written: str

    @property
    def is_name(self) -> bool:
        return self.written.startswith(self.kind.sigil)


def references(policy: BaseModel) -> tuple[Reference, ...]:
    """Every user, user group and channel the policy (or a part of it) names, in order."""
    found: list[Reference] = []

    def note(reference: Reference) -> str:
        found.append(reference)
        return reference.written

    _rewrite(policy, type(policy), (), "", note)
    return tuple(found)


def kinds_to_read(policy: Policy) -> frozenset[SlackKind]:
    """What Slack must be asked about: the kinds named by name, and user groups whenever the
    policy names one (one call tells whether its IDs exist, and who is in them)."""
    kinds = {r.kind for r in references(policy) if r.is_name}
    if any(r.kind is SlackKind.GROUP for r in references(policy)):
        kinds.add(SlackKind.GROUP)
    return frozenset(kinds)


# -- what Slack says about the workspace ---------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: str
    #: The unique username (users.list's `name`) and the display name people see.
    name: str
    display_name: str = ""


@dataclass(frozen=True)
class Group:
    id: str
    handle: str
    members: frozenset[str] = frozenset()
    disabled: bool = False


@dataclass(frozen=True)
class Channel:
    id: str
    name: str


@dataclass(frozen=True)
class Workspace:
    """The workspace's people, user groups and channels; None for a kind Slack was not asked."""

    people: Sequence[Person] | None = None
    groups: Sequence[Group] | None = None
    channels: Sequence[Channel] | None = None

    def members(self, group_id: str) -> frozenset[str] | None:
        """Who is in the user group, or None when Slack was not asked."""
        if self.groups is None:
            return None
        return next((g.members for g in self.groups if g.id == group_id), frozenset())


# -- resolving ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    """The policy with IDs where it had names, and each name with the ID it stands for."""

    policy: Policy
    names: tuple[tuple[Reference, str], ...] = ()


def resolve(policy: Policy, workspace: Workspace, source: str = "<policy>") -> Resolution:
    """The policy as the bot uses it: every name replaced by its ID. PolicyError names each key
    whose name the workspace does not know (all of them, so one round of fixes is enough), and
    each user group ID that does not exist or is disabled."""
    lookup = _Lookup(workspace)
    problems: list[tuple[str, str]] = []
    names: list[tuple[Reference, str]] = []

    def swap(reference: Reference) -> str:
        found, problem = lookup.find(reference)
        if problem:
            problems.append((reference.key, problem))
            return reference.written
        if reference.is_name:
            names.append((reference, found))
        return reference.written if found == reference.written else found

    resolved = _rewrite(policy, type(policy), (), "", swap)
    if problems:
        (key, first), *more = problems
        raise PolicyError(source, key, "; ".join([first, *(f"{k}: {p}" for k, p in more)]))
    assert isinstance(resolved, Policy)
    return Resolution(resolved, tuple(names))


class _Lookup:
    """Slack's names, matched as Slack matches them: case-insensitively, deleted people left out."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def find(self, reference: Reference) -> tuple[str, str]:
        """(the ID, "") or ("", what is wrong)."""
        if reference.kind is SlackKind.USER:
            return self._person(reference.written) if reference.is_name else (reference.written, "")
        if reference.kind is SlackKind.GROUP:
            return self._group(reference.written)
        if reference.is_name:
            return self._channel(reference.written)
        return reference.written, ""

    def _person(self, written: str) -> tuple[str, str]:
        name = written[1:].casefold()
        people = self.workspace.people or ()
        by_name = [p.id for p in people if p.name.casefold() == name]
        by_display = [p.id for p in people if p.display_name.casefold() == name]
        found = by_name or by_display
        if len(found) == 1:
            return found[0], ""
        if found:
            return "", (
                f"{written} is the display name of {len(found)} people ({', '.join(found)}); "
                "write the user ID of the one you mean instead"
            )
        return "", f"no user {written} in this workspace{self._hint(written, SlackKind.GROUP)}"

    def _group(self, written: str) -> tuple[str, str]:
        groups = self.workspace.groups
        if groups is None:  # Slack was not asked: an ID is used as written
            return written, ""
        if written.startswith("@"):
            handle = written[1:].casefold()
            group = next((g for g in groups if g.handle.casefold() == handle), None)
            if group is None:
                hint = self._hint(written, SlackKind.USER)
                return "", f"no user group {written} in this workspace{hint}"
        else:
            group = next((g for g in groups if g.id == written), None)
            if group is None:
                return "", (
                    f"no user group {written} in this workspace (check the ID in Slack, or "
                    "write the group's @handle)"
                )
        if group.disabled:
            return "", (
                f"the user group @{group.handle} ({group.id}) is disabled in Slack; enable it "
                "or name another"
            )
        return group.id, ""

    def _channel(self, written: str) -> tuple[str, str]:
        name = written[1:].casefold()
        found = next((c.id for c in self.workspace.channels or () if c.name.casefold() == name), "")
        if found:
            return found, ""
        return "", (
            f"no channel {written} in this workspace that changebot can see (a private channel "
            "must invite changebot first; an archived one cannot be used)"
        )

    def _hint(self, written: str, other: SlackKind) -> str:
        """A person named where a user group belongs, or the reverse, is a common slip."""
        name = written[1:].casefold()
        groups = self.workspace.groups or ()
        people = self.workspace.people or ()
        if other is SlackKind.GROUP and any(g.handle.casefold() == name for g in groups):
            return f" ({written} is a user group: name it where user groups belong)"
        names = {n.casefold() for p in people for n in (p.name, p.display_name)}
        if other is SlackKind.USER and name in names:
            return f" ({written} is a person: name them where users belong)"
        return ""


# -- who can approve -------------------------------------------------------------------------------


def nobody_approves(policy: Policy, workspace: Workspace) -> list[str]:
    """A sentence for each kind of change nobody can approve under this (resolved) policy,
    naming the policy keys to fill; user groups Slack says are empty count as nobody."""
    found: list[str] = []
    normal = _approvers_missing(
        policy.approvers.users, policy.approvers.groups, "approvers", workspace
    )
    if normal:
        found.append(f"Nobody can approve a Normal change: {normal}.")
    e = policy.emergency
    if e.approver_users or e.approver_groups:
        own = _approvers_missing(
            e.approver_users, e.approver_groups, "emergency.approver", workspace, joiner="_"
        )
        if own:
            found.append(f"Nobody can approve an emergency change: {own}.")
    elif normal:
        found.append(
            "Nobody can approve an emergency change: emergency.approver_users and "
            "emergency.approver_groups are empty, so the approvers of Normal changes approve "
            "emergencies too, and there are none."
        )
    return found


def _approvers_missing(
    users: Sequence[str],
    groups: Sequence[str],
    prefix: str,
    workspace: Workspace,
    joiner: str = ".",
) -> str:
    users_key, groups_key = f"{prefix}{joiner}users", f"{prefix}{joiner}groups"
    if not users and not groups:
        return (
            f"{users_key} and {groups_key} are empty; name the people or the user groups who "
            "approve in the policy"
        )
    if users:
        return ""
    sizes = [workspace.members(g) for g in groups]
    if any(size is None or size for size in sizes):
        return ""
    return (
        f"the user groups in {groups_key} have no members in Slack; add people to them, or "
        f"name people in {users_key}"
    )


# -- walking the policy ----------------------------------------------------------------------------

Swap = Callable[[Reference], str]


def _rewrite(value: Any, annotation: Any, metadata: Iterable[Any], key: str, swap: Swap) -> Any:
    """`value` (of type `annotation`) with `swap` applied to every Slack reference in it: the
    same object where nothing changed, so an untouched policy stays the very same policy."""
    ref = next((m for m in metadata if isinstance(m, SlackRef)), None)
    if ref is not None and isinstance(value, str):
        return swap(Reference(key, ref.kind, value)) if value else value
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *extra = get_args(annotation)
        return _rewrite(value, inner, [*metadata, *extra], key, swap)
    if isinstance(value, BaseModel):
        return _rewrite_model(value, key, swap)
    if origin in (Union, types.UnionType):
        arg = next((a for a in get_args(annotation) if _fits(a, value)), None)
        return value if arg is None else _rewrite(value, arg, (), key, swap)
    if isinstance(value, tuple | list) and origin in (tuple, list):
        args = get_args(annotation)
        items = [
            _rewrite(item, _item_type(args, i), (), f"{key}[{i}]", swap)
            for i, item in enumerate(value)
        ]
        same = all(new is old for new, old in zip(items, value, strict=True))
        return value if same else type(value)(items)
    if isinstance(value, Mapping) and origin is not None:
        args = get_args(annotation)
        entries = {k: _rewrite(v, args[-1], (), f"{key}.{k}", swap) for k, v in value.items()}
        same = all(entries[k] is v for k, v in value.items())
        return value if same else entries
    return value


def _rewrite_model(model: BaseModel, key: str, swap: Swap) -> BaseModel:
    changed: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        old = getattr(model, name)
        new = _rewrite(
            old, field.annotation, field.metadata, f"{key}.{name}" if key else name, swap
        )
        if new is not old:
            changed[name] = new
    return model.model_copy(update=changed) if changed else model


def _item_type(args: tuple[Any, ...], index: int) -> Any:
    """The type of a tuple's (or list's) item: `tuple[X, ...]` and `list[X]` have one for all."""
    if len(args) == 1 or (len(args) == 2 and args[1] is ...):
        return args[0]
    return args[index] if index < len(args) else Any


def _fits(annotation: Any, value: Any) -> bool:
    """Whether `value` is of the union member `annotation` (a policy has no ambiguous unions)."""
    if annotation is type(None):
        return value is None
    bare = get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation
    origin = get_origin(bare) or bare
    return isinstance(origin, type) and isinstance(value, origin)

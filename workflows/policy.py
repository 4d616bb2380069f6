"""The change policy: shipped as TOML, overridable per company, validated before anything runs."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from workflows.durations import Duration
from workflows.errors import PolicyError
from workflows.freezes import Freeze
from workflows.model import Actor, Classification, Level
from workflows.risk import Questionnaire, check_questionnaire

DEFAULT_POLICY = "default_policy.toml"


class SlackKind(StrEnum):
    """What a Slack reference in the policy names; its value reads in a sentence."""

    USER = "user"
    GROUP = "user group"
    CHANNEL = "channel"

    @property
    def sigil(self) -> str:
        """How people write its name: @handle for people and user groups, #name for channels."""
        return "#" if self is SlackKind.CHANNEL else "@"


@dataclass(frozen=True)
class SlackRef:
    """Marks a policy field as naming Slack users, user groups or channels, by ID or by name:
    `workflows.names` finds every such field, wherever it is in the policy, by this mark."""

    kind: SlackKind
    #: The first letters of the kind's IDs.
    prefixes: str

    def is_name(self, value: str) -> bool:
        return value.startswith(self.kind.sigil)


#: A name after its @ or #: letters and digits first, then also `.`, `-` and `_`, as in Slack.
_NAME = re.compile(r"^[^\W_][\w.\-]{0,79}$")


def _slack_id(ref: SlackRef) -> Any:
    pattern = re.compile(rf"^[{ref.prefixes}][A-Z0-9]{{2,}}$")
    kind, sigil = ref.kind, ref.kind.sigil
    form = "a #channel-name" if kind is SlackKind.CHANNEL else "an @handle"

    def check(value: str) -> str:
        if not value:
            return value
        if ref.is_name(value):
            if not _NAME.match(value[1:]):
                raise ValueError(
                    f'"{value}" is not a Slack {kind} name: after {sigil} come letters and '
                    "digits, then also dots, hyphens or underscores"
                )
        elif not pattern.match(value):
            raise ValueError(
                f'"{value}" is not a Slack {kind} ID (it starts with '
                f"{' or '.join(ref.prefixes)}, then capital letters and digits) nor {form}"
            )
        return value

    return AfterValidator(check)


_USER = SlackRef(SlackKind.USER, "UW")
_GROUP = SlackRef(SlackKind.GROUP, "S")
_CHANNEL = SlackRef(SlackKind.CHANNEL, "CG")
#: Slack users, user groups and channels, by ID (U…, S…, C…) or by name (@handle, #channel):
#: names are resolved to IDs at start-up (workflows.names, bot.names).
UserId = Annotated[str, _slack_id(_USER), _USER]
GroupId = Annotated[str, _slack_id(_GROUP), _GROUP]
ChannelId = Annotated[str, _slack_id(_CHANNEL), _CHANNEL]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class About(_Strict):
    name: str = "Change-management policy"
    owner: UserId = ""
    last_reviewed: date
    review_every: Duration = timedelta(days=365)

    @model_validator(mode="after")
    def _review_dates(self) -> About:
        # The next review is worked out from these two; dates near the calendar's end
        # (9999-12-31) would overflow it.
        if self.last_reviewed.year > 9000:
            raise ValueError(f"last_reviewed: {self.last_reviewed} is not a date it was reviewed")
        return self


class Channels(_Strict):
    changes: ChannelId = ""


class Approvers(_Strict):
    users: tuple[UserId, ...] = ()
    groups: tuple[GroupId, ...] = ()

    def includes(self, actor: Actor) -> bool:
        return actor.user_id in self.users or bool(actor.groups & set(self.groups))

    @property
    def is_empty(self) -> bool:
        return not (self.users or self.groups)


class Approvals(_Strict):
    normal: int = Field(1, ge=1, le=10)
    normal_high_risk: int = Field(2, ge=1, le=10)
    emergency: int = Field(1, ge=1, le=10)
    high_risk_levels: tuple[Level, ...] = (Level.HIGH,)
    #: Approvals a Normal change needs beyond its rule while its window overlaps another
    #: open change's on a common service.
    conflict_extra: int = Field(0, ge=0, le=5)
    #: A named group (or users) whose approval a high-risk Normal change also needs, as a rule
    #: of its own (workflows/approval_rules.py); empty: none.
    high_risk_groups: tuple[GroupId, ...] = ()
    high_risk_users: tuple[UserId, ...] = ()

    @property
    def high_risk_approvers(self) -> Approvers:
        return Approvers(users=self.high_risk_users, groups=self.high_risk_groups)


class Owners(_Strict):
    """Who owns some services: a Normal change on any of them also needs their approval."""

    #: Service names or glob patterns (`payments-*`), matched without regard to case.
    services: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] = Field(min_length=1)
    groups: tuple[GroupId, ...] = ()
    users: tuple[UserId, ...] = ()
    #: How many of them must approve.
    approvals: int = Field(1, ge=1, le=10)
    #: How the card names the rule; empty: "Owners of" the services above.
    name: str = Field("", max_length=80)

    @model_validator(mode="after")
    def _someone(self) -> Owners:
        if not (self.groups or self.users):
            raise ValueError(
                "groups: name at least one Slack user group (or, under users, a user) that "
                "owns these services; an entry nobody owns would hold every change on them"
            )
        return self

    @property
    def approvers(self) -> Approvers:
        return Approvers(users=self.users, groups=self.groups)

    @property
    def label(self) -> str:
        return self.name or f"Owners of {', '.join(self.services)}"

    def owns(self, service: str) -> bool:
        return any(fnmatchcase(service.lower(), p.lower()) for p in self.services)


class Emergency(_Strict):
    approver_users: tuple[UserId, ...] = ()
    approver_groups: tuple[GroupId, ...] = ()
    review_deadline: Duration = timedelta(hours=48)
    reminder_every: Duration = timedelta(hours=12)
    escalation_every: Duration = timedelta(hours=4)
    break_glass_allowed: bool = True
    break_glass_after: Duration = timedelta(minutes=15)
    #: The scope recorded for `/change emergency` until someone adds details.
    default_scope: str = ""


class Scope(_Strict):
    id: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str = Field(min_length=1, max_length=150)


class Procedure(_Strict):
    """A Standard change procedure from the catalog: pre-approved, documented and tested."""

    id: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    name: str = Field(min_length=1, max_length=150)
    version: str = Field(min_length=1, max_length=20)
    runbook: str = Field(pattern=r"^https?://\S+$")
    scope: str
    owner: UserId = ""

    @property
    def label(self) -> str:
        return f"{self.name} (v{self.version})"


class GithubTarget(_Strict):
    """What a GitHub repository's environment deploys: the services a change must name."""

    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    environment: str = Field(min_length=1, max_length=255)
    services: tuple[str, ...] = Field(min_length=1)


class Gate(_Strict):
    """The deploy gate: which environments only an authorised change may deploy to."""

    environments: tuple[str, ...] = Field(("production",), min_length=1)
    github: tuple[GithubTarget, ...] = ()

    def gates(self, environment: str) -> bool:
        return environment.strip().lower() in {e.lower() for e in self.environments}

    def github_services(self, repository: str, environment: str) -> tuple[str, ...] | None:
        """The services a GitHub deployment to `environment` of `repository` deploys."""
        for target in self.github:
            if (target.repository.lower(), target.environment.lower()) == (
                repository.lower(),
                environment.lower(),
            ):
                return target.services
        return None


class Policy(_Strict):
    policy: About
    channels: Channels = Channels()
    approvers: Approvers = Approvers()
    approvals: Approvals = Approvals()
    emergency: Emergency = Emergency()
    scope: tuple[Scope, ...] = Field(min_length=1)
    catalog: tuple[Procedure, ...] = ()
    #: Who decides proposals to add, revise or retire catalog procedures, besides the owner.
    catalog_approvers: Approvers = Approvers()
    gate: Gate = Gate()
    freeze: tuple[Freeze, ...] = ()
    risk: Questionnaire = Questionnaire()
    #: Who owns which services (workflows/approval_rules.py); none: the approvers above alone.
    owners: tuple[Owners, ...] = ()

    @model_validator(mode="after")
    def _cross_check(self) -> Policy:
        scope_ids = [s.id for s in self.scope]
        _unique(scope_ids, "scope")
        _unique([p.id for p in self.catalog], "catalog")
        default = self.emergency.default_scope
        if default and default not in scope_ids:
            raise ValueError(
                f"emergency.default_scope: {default!r} is not one of the scope ids "
                f"({', '.join(scope_ids)})"
            )
        for index, procedure in enumerate(self.catalog):
            if procedure.scope not in scope_ids:
                raise ValueError(
                    f"catalog[{index}].scope: {procedure.scope!r} is not one of the scope ids "
                    f"({', '.join(scope_ids)})"
                )
        _check_gate(self.gate)
        _unique([f.name for f in self.freeze], "freeze", "name")
        check_questionnaire(self.risk)
        return self

    # -- questions the process asks of the policy -------------------------------------------

    def required_approvals(
        self, classification: Classification, risk: Level, *, conflicts: int = 0
    ) -> int:
        if classification is Classification.STANDARD:
            return 0
        if classification is Classification.EMERGENCY:
            return self.approvals.emergency
        extra = self.approvals.conflict_extra if conflicts else 0
        if risk in self.approvals.high_risk_levels:
            return self.approvals.normal_high_risk + extra
        return self.approvals.normal + extra

    def may_approve(self, actor: Actor, classification: Classification) -> bool:
        """Whether the person may approve some changes of this classification: for Normal
        changes, the approvers, the owners of any service and the high-risk approvers (which
        changes each may approve is workflows.approval_rules.may_approve's answer)."""
        if classification is Classification.EMERGENCY:
            return self.emergency_approvers.includes(actor)
        return any(approvers.includes(actor) for approvers in self.normal_approvers)

    @property
    def normal_approvers(self) -> tuple[Approvers, ...]:
        """Everyone named for Normal changes, rule by rule."""
        return (
            self.approvers,
            *(owners.approvers for owners in self.owners),
            self.approvals.high_risk_approvers,
        )

    def owners_of(self, services: Iterable[str]) -> list[tuple[Owners, tuple[str, ...]]]:
        """The owner entries whose patterns match any of `services`, each with the services
        it matches, in the policy's order."""
        named = tuple(services)
        found = []
        for owners in self.owners:
            matched = tuple(s for s in named if owners.owns(s))
            if matched:
                found.append((owners, matched))
        return found

    @property
    def emergency_approvers(self) -> Approvers:
        own = Approvers(users=self.emergency.approver_users, groups=self.emergency.approver_groups)
        return self.approvers if own.is_empty else own

    def may_decide_catalog(self, actor: Actor) -> bool:
        """The policy owner, and the users and groups `catalog_approvers` names, decide what
        the Standard change catalog holds."""
        owner = self.policy.owner
        return (bool(owner) and actor.user_id == owner) or self.catalog_approvers.includes(actor)

    @property
    def catalog_decided(self) -> bool:
        """Whether anyone may decide a catalog proposal."""
        return bool(self.policy.owner) or not self.catalog_approvers.is_empty

    def known_services(self) -> frozenset[str]:
        """The services the policy names (the deploy gate's), in lower case; empty when it
        names none, and then any service is accepted."""
        return frozenset(s.lower() for target in self.gate.github for s in target.services)

    def with_catalog(self, catalog: tuple[Procedure, ...]) -> Policy:
        """This policy with `catalog` as its Standard change catalog (the file's, with the
        procedures approved in Slack applied)."""
        return self.model_copy(update={"catalog": catalog})

    def procedure(self, procedure_id: str) -> Procedure | None:
        return next((p for p in self.catalog if p.id == procedure_id), None)

    def scope_named(self, scope_id: str) -> Scope | None:
        return next((s for s in self.scope if s.id == scope_id), None)

    def policy_review_due(self) -> datetime:
        reviewed = datetime.combine(self.policy.last_reviewed, time(0, tzinfo=UTC))
        return reviewed + self.policy.review_every


def _check_gate(gate: Gate) -> None:
    seen: set[tuple[str, str]] = set()
    for index, target in enumerate(gate.github):
        if not gate.gates(target.environment):
            raise ValueError(
                f"gate.github[{index}].environment: {target.environment!r} is not one of "
                f"gate.environments ({', '.join(gate.environments)}); add it there, so the gate "
                "knows to hold deployments to it"
            )
        key = (target.repository.lower(), target.environment.lower())
        if key in seen:
            raise ValueError(
                f"gate.github[{index}]: {target.repository} {target.environment} is mapped twice"
            )
        seen.add(key)


def _unique(ids: list[str], key: str, field: str = "id") -> None:
    seen: set[str] = set()
    for index, item in enumerate(ids):
        if item in seen:
            raise ValueError(f"{key}[{index}].{field}: {item!r} appears twice")
        seen.add(item)


def load_policy(path: str | Path | None = None) -> Policy:
    """Read the company's policy file, or the default one shipped with changebot."""
    if path is None or str(path) == "":
        source = f"the default policy ({DEFAULT_POLICY})"
        text = resources.files("workflows").joinpath(DEFAULT_POLICY).read_text(encoding="utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise PolicyError(source, "", f"cannot read it ({error.strerror})") from error
        except UnicodeDecodeError as error:
            raise PolicyError(source, "", "it is not text (UTF-8), so not a TOML file") from error
    return parse_policy(text, source)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(source, "", f"it is not valid TOML ({error})") from error
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        problem = first["msg"].removeprefix("Value error, ")
        if first["type"] == "missing":
            problem = "this key is required"
        elif first["type"] == "extra_forbidden":
            problem = "unknown key (check its spelling against the default policy)"
        if not key and ": " in problem:
            key, problem = problem.split(": ", 1)
        elif (field := re.match(r"^([a-z_]+): ", problem)) is not None:
            # A table's own check names the field it is about: freeze.0 + timezone.
            key, problem = f"{key}.{field.group(1)}", problem[field.end() :]
        raise PolicyError(source, key, problem) from error

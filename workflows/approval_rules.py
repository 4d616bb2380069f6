"""Who must approve a change: its approval rules, each met or not (GitLab's approval rules).

A Normal change has the policy's general rule ("2 from the approvers" when high risk, one
more in a conflict), one rule for each `[[owners]]` entry owning any of its services ("1 from
the owners of payments-*"), and, when high risk, the high-risk approvers' rule. An Emergency
change has its emergency approvers' rule; a Standard change none (its procedure approves it).

One person's approval counts toward every rule they are eligible for, and whoever is in any
rule may approve. Separation of duties holds per rule: the requester and the implementer never
approve, so a rule whose only eligible people are in charge of the change can never be met,
and says so (when the members of its groups are known).

An approval counts for a rule by the person's user ID or by the groups they were in when they
approved (recorded on the approval). One recorded before rules existed (no groups) counts
toward the general rule alone, as it did then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from workflows.model import Actor, Approval, Change, Classification
from workflows.policy import Approvers, Policy


class RuleKind(StrEnum):
    GENERAL = "general"
    EMERGENCY = "emergency"
    OWNERS = "owners"
    HIGH_RISK = "high_risk"


@dataclass(frozen=True)
class Rule:
    """How many approvals a change needs from whom."""

    kind: RuleKind
    name: str
    needed: int
    approvers: Approvers
    #: The change's services the rule is there for (an owners rule).
    services: tuple[str, ...] = ()

    def includes(self, actor: Actor) -> bool:
        return self.approvers.includes(actor)

    def counts(self, approval: Approval) -> bool:
        """Whether the approval counts toward this rule."""
        if approval.kind != "approver":
            return False
        if approval.groups is None:
            return self.kind in (RuleKind.GENERAL, RuleKind.EMERGENCY)
        return self.approvers.includes(Actor(approval.by, approval.groups))


@dataclass(frozen=True)
class RuleProgress:
    """One rule on one change: who has met it so far, and whether anyone else can."""

    rule: Rule
    approved_by: tuple[str, ...]
    #: Who else could still approve toward it: None when the members of its groups are not
    #: known (the question is left open rather than guessed).
    could_approve: frozenset[str] | None = None

    @property
    def needed(self) -> int:
        return self.rule.needed

    @property
    def met(self) -> bool:
        return len(self.approved_by) >= self.rule.needed

    @property
    def missing(self) -> int:
        return max(0, self.rule.needed - len(self.approved_by))

    @property
    def stuck(self) -> bool:
        """Unmet, and too few people may still approve toward it: the people named in it are
        (apart from those who approved) the requester or the implementer, or nobody."""
        could = self.could_approve
        return not self.met and could is not None and len(could) < self.missing


def rules_for(change: Change, policy: Policy, *, conflicts: int = 0) -> tuple[Rule, ...]:
    """The rules the change must meet under the policy, the general one first."""
    classification = change.classification
    if classification is Classification.STANDARD:
        return ()
    needed = policy.required_approvals(classification, change.risk, conflicts=conflicts)
    if classification is Classification.EMERGENCY:
        emergency = policy.emergency_approvers
        return (Rule(RuleKind.EMERGENCY, "Emergency approvers", needed, emergency),)
    found = [Rule(RuleKind.GENERAL, "Approvers", needed, policy.approvers)]
    for owners, services in policy.owners_of(change.details.services):
        rule = Rule(RuleKind.OWNERS, owners.label, owners.approvals, owners.approvers, services)
        found.append(rule)
    high_risk = policy.approvals.high_risk_approvers
    if change.risk in policy.approvals.high_risk_levels and not high_risk.is_empty:
        found.append(Rule(RuleKind.HIGH_RISK, "High-risk approvers", 1, high_risk))
    return tuple(found)


def progress(
    change: Change,
    policy: Policy,
    *,
    conflicts: int = 0,
    members: Mapping[str, frozenset[str]] | None = None,
) -> tuple[RuleProgress, ...]:
    """Each rule of the change and how far it is met. `members`: the people in each Slack
    user group, for those known (a rule with a group not in it is never called stuck)."""
    return tuple(
        _progress(rule, change, members) for rule in rules_for(change, policy, conflicts=conflicts)
    )


def _progress(
    rule: Rule, change: Change, members: Mapping[str, frozenset[str]] | None
) -> RuleProgress:
    approved_by = tuple(dict.fromkeys(a.by for a in change.approvals if rule.counts(a)))
    could: frozenset[str] | None = None
    known = members or {}
    if all(group in known for group in rule.approvers.groups):
        named = set(rule.approvers.users).union(*(known[g] for g in rule.approvers.groups))
        could = frozenset(named - change.people_in_charge() - set(change.approvers()))
    return RuleProgress(rule, approved_by, could)


def met(change: Change, policy: Policy, *, conflicts: int = 0) -> bool:
    """Whether every rule of the change is met: it may be authorised."""
    return all(one.met for one in progress(change, policy, conflicts=conflicts))


def unmet(change: Change, policy: Policy, *, conflicts: int = 0) -> tuple[RuleProgress, ...]:
    """The rules the change still waits for, in order (none: it may be authorised)."""
    return tuple(one for one in progress(change, policy, conflicts=conflicts) if not one.met)


def may_approve(actor: Actor, change: Change, policy: Policy) -> bool:
    """Whether the person is in any rule of this change (least privilege: someone in none may
    not approve it, whatever else they may approve). A Standard change has no rule (its
    procedure approved it); what an approver still decides of it, the approvers decide."""
    rules = rules_for(change, policy)
    if not rules:
        return policy.approvers.includes(actor)
    return any(rule.includes(actor) for rule in rules)


def owed(unmet: tuple[RuleProgress, ...]) -> str:
    """What the unmet rules still need, as a sentence says it: "approvals: 1 from Approvers
    and 1 from Owners of payments-* (payments-api)"."""
    parts = [
        f"{one.missing} from {one.rule.name}"
        + (f" ({', '.join(one.rule.services)})" if one.rule.services else "")
        for one in unmet
    ]
    listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    return f"approvals: {listed}"


def groups_named(policy: Policy) -> tuple[str, ...]:
    """Every Slack user group a rule may name, once each: whose members the bot must know."""
    groups = [
        *policy.approvers.groups,
        *policy.emergency.approver_groups,
        *(g for owners in policy.owners for g in owners.groups),
        *policy.approvals.high_risk_groups,
    ]
    return tuple(dict.fromkeys(groups))

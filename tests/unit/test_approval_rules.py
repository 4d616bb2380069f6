"""Approvers by service: a Normal change also needs an approval from the owners of each
service it touches (and, when high risk, from the high-risk group), GitLab-style rules each
met or not, with separation of duties in every one."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from tests.unit.builders import (
    ALICE,
    ANNA,
    ARTHUR,
    BOB,
    EMMA,
    GRACE,
    POLICY_TOML,
    TOMORROW,
    Desk,
    a_change,
    emergency_details,
    normal_details,
    standard_details,
)
from workflows import approval_rules
from workflows.approval_rules import RuleKind
from workflows.errors import NotAllowed, PolicyError
from workflows.events import Happened
from workflows.evidence import Narrator
from workflows.gate import Target, decide
from workflows.model import (
    Actor,
    Approval,
    Change,
    ChangeDetails,
    Classification,
    GateStatus,
    Level,
    Stage,
)
from workflows.policy import Policy, load_policy, parse_policy
from workflows.stages import Action, allowed_actions
from workflows.standing import standing

PAULA = Actor("UPAULA", frozenset({"SPAYMENTS"}))  # owns payments-*, approves nothing else
FIONA = Actor("UFIONA", frozenset({"SFINANCE"}))  # owns the ledger
SAM = Actor("USAM", frozenset({"SSECURITY"}))  # the security group: high-risk approvals
SEARCHER = Actor("USEARCH")  # owns search, by name
PAYMASTER = Actor("UPAYMASTER", frozenset({"SCAB", "SPAYMENTS"}))  # an approver and an owner

OWNERS = """
[[owners]]
services = ["payments-*"]
groups = ["SPAYMENTS"]

[[owners]]
name = "Finance"
services = ["payments-ledger"]
groups = ["SFINANCE"]

[[owners]]
services = ["search", "search-indexer"]
users = ["USEARCH"]
"""


def owners_policy(extra: str = OWNERS, approvals: str = "") -> Policy:
    text = POLICY_TOML + extra
    if approvals:
        text = text.replace("emergency = 1\n", f"emergency = 1\n{approvals}\n", 1)
    return parse_policy(text, "test policy")


@pytest.fixture
def policy() -> Policy:
    return owners_policy(approvals='high_risk_groups = ["SSECURITY"]')


def on(*services: str, **fields: object) -> ChangeDetails:
    return normal_details(services=services, **fields)


def rules_of(desk: Desk, change: Change) -> list[tuple[str, int, tuple[str, ...], bool]]:
    stored = desk.stored(change)
    return [
        (one.rule.name, one.needed, one.approved_by, one.met)
        for one in approval_rules.progress(stored, desk.policy)
    ]


def in_approve(desk: Desk, *services: str, **fields: object) -> Change:
    return desk.normal_change_in(Stage.APPROVE, on(*services, **fields))


# -- which rules a change has ----------------------------------------------------------------


def test_a_normal_change_on_an_owned_service_has_the_owners_rule_after_the_general_one(
    desk: Desk,
) -> None:
    change = in_approve(desk, "payments-api")

    assert rules_of(desk, change) == [
        ("Approvers", 1, (), False),
        ("Owners of payments-*", 1, (), False),
    ]


def test_a_service_nobody_owns_adds_no_rule(desk: Desk) -> None:
    change = in_approve(desk, "api")

    assert [name for name, *_ in rules_of(desk, change)] == ["Approvers"]


def test_each_owned_service_adds_the_rule_of_its_owners_once(desk: Desk) -> None:
    change = in_approve(desk, "payments-api", "payments-worker", "search", "api")

    rules = approval_rules.rules_for(desk.stored(change), desk.policy)
    assert [(r.name, r.services) for r in rules[1:]] == [
        ("Owners of payments-*", ("payments-api", "payments-worker")),
        ("Owners of search, search-indexer", ("search",)),
    ]


def test_a_service_matching_several_entries_needs_an_approval_from_each(desk: Desk) -> None:
    change = in_approve(desk, "Payments-Ledger")  # patterns match whatever the case

    assert [name for name, *_ in rules_of(desk, change)] == [
        "Approvers",
        "Owners of payments-*",
        "Finance",
    ]


def test_a_pattern_that_matches_no_service_is_fine(desk: Desk) -> None:
    policy = owners_policy('[[owners]]\nservices = ["nothing-*"]\ngroups = ["SNOBODY"]\n')

    change = a_change(Classification.NORMAL, Stage.APPROVE)

    assert [r.kind for r in approval_rules.rules_for(change, policy)] == [RuleKind.GENERAL]


def test_a_high_risk_change_also_needs_the_high_risk_group(desk: Desk) -> None:
    low = in_approve(desk, "api")
    assert rules_of(desk, low) == [("Approvers", 1, (), False)]

    high = desk.normal_change_in(Stage.APPROVE, on("api", risk=Level.HIGH))

    assert rules_of(desk, high) == [
        ("Approvers", 2, (), False),
        ("High-risk approvers", 1, (), False),
    ]


def test_risk_raised_in_review_brings_in_the_high_risk_group(desk: Desk) -> None:
    change = desk.request(on("api"))
    change = desk.add_evidence(desk.review(change, risk=Level.HIGH))

    assert [name for name, *_ in rules_of(desk, change)] == ["Approvers", "High-risk approvers"]


def test_emergency_and_standard_changes_keep_their_own_rules(desk: Desk) -> None:
    emergency = desk.request(emergency_details(services=("payments-api",)))
    standard = desk.request(standard_details(services=("payments-api",)))

    assert [(r.kind, r.needed) for r in approval_rules.rules_for(emergency, desk.policy)] == [
        (RuleKind.EMERGENCY, 1)
    ]
    assert approval_rules.rules_for(standard, desk.policy) == ()
    authorised = desk.approve(emergency, by=EMMA)
    assert authorised.stage is Stage.DEPLOY


def test_a_policy_without_owners_has_the_general_rule_alone() -> None:
    policy = load_policy()
    change = a_change(Classification.NORMAL, Stage.APPROVE)

    (rule,) = approval_rules.rules_for(change, policy)

    assert (rule.kind, rule.needed, rule.approvers) == (RuleKind.GENERAL, 1, policy.approvers)


# -- who may approve, and what each approval counts for ----------------------------------------


def test_a_general_approver_alone_does_not_authorise_a_change_on_an_owned_service(
    desk: Desk,
) -> None:
    change = desk.approve(in_approve(desk, "payments-api"), by=ANNA)

    assert change.stage is Stage.APPROVE
    assert rules_of(desk, change) == [
        ("Approvers", 1, ("UANNA",), True),
        ("Owners of payments-*", 1, (), False),
    ]
    assert Happened.AUTHORISED not in desk.actions(change)


def test_an_owners_approval_completes_it(desk: Desk) -> None:
    change = desk.approve(in_approve(desk, "payments-api"), by=ANNA)

    change = desk.approve(change, by=PAULA)

    assert change.stage is Stage.DEPLOY
    authorised = desk.last_entry(change, Happened.AUTHORISED).entry
    assert authorised.details["approvers"] == ["UANNA", "UPAULA"]


def test_the_trail_records_the_rules_each_approval_counts_toward(desk: Desk) -> None:
    change = in_approve(desk, "payments-api")

    desk.approve(desk.approve(change, by=PAULA), by=PAYMASTER)

    approvals = [e.entry for e in desk.trail(change) if e.entry.action == Happened.APPROVED]
    assert [a.details["counts_for"] for a in approvals] == [
        ["Owners of payments-*"],
        ["Approvers", "Owners of payments-*"],
    ]
    told = Narrator(desk.policy, Classification.NORMAL).step(approvals[1])
    assert told is not None
    assert told.sentence == (
        "UPAYMASTER approved it under the Normal rule: 1 approval needed; it counts toward "
        "Approvers and Owners of payments-*."
    )


def test_without_owner_rules_the_trail_records_approvals_as_before(desk: Desk) -> None:
    change = desk.approve(in_approve(desk, "api"), by=ANNA)

    assert "counts_for" not in desk.last_entry(change, Happened.APPROVED).entry.details


def test_an_owner_who_is_no_approver_may_approve_for_their_rule_only(desk: Desk) -> None:
    change = desk.approve(in_approve(desk, "payments-api"), by=PAULA)

    assert change.stage is Stage.APPROVE
    assert rules_of(desk, change) == [
        ("Approvers", 1, (), False),
        ("Owners of payments-*", 1, ("UPAULA",), True),
    ]


def test_someone_in_no_rule_of_the_change_may_not_approve_it(desk: Desk) -> None:
    change = in_approve(desk, "payments-api")

    for outsider in (BOB, SEARCHER, FIONA):  # owners of other services are outsiders here
        with pytest.raises(NotAllowed, match="owners of its services"):
            desk.approve(change, by=outsider)
        assert Action.APPROVE not in allowed_actions(desk.stored(change), outsider, desk.policy)
    assert Action.APPROVE in allowed_actions(desk.stored(change), PAULA, desk.policy)


def test_an_owner_may_approve_some_normal_changes_so_their_list_offers_them() -> None:
    policy = owners_policy()

    assert policy.may_approve(PAULA, Classification.NORMAL)
    assert not policy.may_approve(PAULA, Classification.EMERGENCY)
    assert not policy.may_approve(BOB, Classification.NORMAL)


def test_one_approval_counts_toward_every_rule_its_approver_is_in(desk: Desk) -> None:
    change = desk.approve(in_approve(desk, "payments-api"), by=PAYMASTER)

    assert change.stage is Stage.DEPLOY


def test_two_services_owned_apart_need_both_owners(desk: Desk) -> None:
    change = in_approve(desk, "payments-api", "search")
    change = desk.approve(desk.approve(change, by=GRACE), by=PAULA)
    assert change.stage is Stage.APPROVE

    change = desk.approve(change, by=SEARCHER)

    assert change.stage is Stage.DEPLOY


def test_a_high_risk_change_needs_the_general_quorum_and_the_high_risk_group(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE, on("api", risk=Level.HIGH))
    change = desk.approve(desk.approve(change, by=ANNA), by=ARTHUR)
    assert change.stage is Stage.APPROVE

    change = desk.approve(change, by=SAM)

    assert change.stage is Stage.DEPLOY


def test_an_owner_rule_may_ask_for_more_than_one_owner(desk: Desk) -> None:
    desk.policy = owners_policy(
        '[[owners]]\nservices = ["payments-*"]\ngroups = ["SPAYMENTS"]\napprovals = 2\n'
    )
    change = desk.approve(in_approve(desk, "payments-api"), by=PAYMASTER)
    assert change.stage is Stage.APPROVE

    change = desk.approve(change, by=PAULA)

    assert change.stage is Stage.DEPLOY


def test_an_approval_counts_by_the_groups_its_approver_was_in_when_approving() -> None:
    policy = owners_policy()
    change = a_change(Classification.NORMAL, Stage.APPROVE)
    change.details = change.details.with_changes(services=("payments-api",))
    from_then = Approval("UPAULA", change.created_at, groups=frozenset())
    change.approvals = (from_then,)  # Paula, before she joined the payments group

    assert not approval_rules.met(change, policy)
    assert [one.approved_by for one in approval_rules.progress(change, policy)] == [(), ()]


def test_an_approval_recorded_before_the_rules_counts_toward_the_general_rule_only() -> None:
    policy = owners_policy()
    change = a_change(Classification.NORMAL, Stage.APPROVE)
    change.details = change.details.with_changes(services=("payments-api",))
    change.approvals = (Approval("UPAULA", change.created_at),)  # no groups recorded

    assert [one.approved_by for one in approval_rules.progress(change, policy)] == [
        ("UPAULA",),
        (),
    ]


# -- separation of duties, rule by rule ---------------------------------------------------------


def test_the_requester_never_counts_toward_their_own_changes_owner_rule(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE, on("payments-api"))

    with pytest.raises(NotAllowed, match="someone else must review or approve"):
        desk.approve(change, by=Actor(ALICE.user_id, frozenset({"SPAYMENTS"})))


def test_a_rule_only_the_requester_could_meet_is_stuck_and_says_so() -> None:
    policy = owners_policy()
    change = a_change(Classification.NORMAL, Stage.APPROVE)  # requested by Alice, for Ivan
    change.details = change.details.with_changes(services=("payments-api",))

    alone = approval_rules.progress(change, policy, members={"SPAYMENTS": frozenset({"UALICE"})})
    with_paula = approval_rules.progress(
        change, policy, members={"SPAYMENTS": frozenset({"UALICE", "UPAULA"})}
    )
    in_charge = approval_rules.progress(
        change, policy, members={"SPAYMENTS": frozenset({"UALICE", change.details.implementer})}
    )

    assert [one.stuck for one in alone] == [False, True]
    assert [one.stuck for one in with_paula] == [False, False]
    assert [one.stuck for one in in_charge] == [False, True]


def test_a_rule_needing_two_owners_with_one_besides_the_requester_is_stuck() -> None:
    policy = owners_policy(
        '[[owners]]\nservices = ["payments-*"]\ngroups = ["SPAYMENTS"]\napprovals = 2\n'
    )
    change = a_change(Classification.NORMAL, Stage.APPROVE)
    change.details = change.details.with_changes(services=("payments-api",))

    members = {"SPAYMENTS": frozenset({"UALICE", "UPAULA"})}

    assert [one.stuck for one in approval_rules.progress(change, policy, members=members)] == [
        False,
        True,
    ]


def test_a_rule_whose_groups_are_not_known_is_never_called_stuck() -> None:
    policy = owners_policy()
    change = a_change(Classification.NORMAL, Stage.APPROVE)
    change.details = change.details.with_changes(services=("payments-api",))

    assert not any(one.stuck for one in approval_rules.progress(change, policy))
    assert not any(one.stuck for one in approval_rules.progress(change, policy, members={}))


def test_a_rule_naming_only_the_requester_by_name_is_stuck_without_asking_slack() -> None:
    policy = owners_policy('[[owners]]\nservices = ["api"]\nusers = ["UALICE"]\n')
    change = a_change(Classification.NORMAL, Stage.APPROVE)

    assert [one.stuck for one in approval_rules.progress(change, policy)] == [False, True]


# -- what the standing, the stage machine and the gate say -------------------------------------


def test_the_standing_is_authorised_only_when_every_rule_is_met(desk: Desk) -> None:
    change = desk.approve(in_approve(desk, "payments-api"), by=ANNA)

    shown = standing(desk.stored(change), desk.policy)

    assert not shown.authorised
    assert [one.met for one in shown.rules] == [True, False]


def test_the_gate_says_whose_approval_the_change_still_waits_for(desk: Desk) -> None:
    change = desk.approve(in_approve(desk, "payments-api"), by=ANNA)
    payments = Target("payments-api", "production")

    waiting = decide(desk.stored(change), change.ref, payments, desk.policy, TOMORROW.start)
    change = desk.approve(change, by=PAULA)
    allowed = decide(desk.stored(change), change.ref, payments, desk.policy, TOMORROW.start)

    assert waiting.status is GateStatus.AWAITING
    assert waiting.reasons == (
        f"{change.ref} is not yet approved; it waits for approvals: 1 from Owners of payments-* "
        "(payments-api).",
    )
    assert allowed.status is GateStatus.ALLOWED


def test_the_gate_says_every_rule_a_change_in_review_will_need(desk: Desk) -> None:
    change = desk.request(on("payments-api"))

    decision = decide(
        change, change.ref, Target("payments-api", "production"), desk.policy, TOMORROW.start
    )

    assert decision.reasons == (
        f"{change.ref} is not yet approved; it waits for its peer review, then test evidence "
        "from staging and approvals: 1 from Approvers and 1 from Owners of payments-* "
        "(payments-api).",
    )


def test_an_edit_of_the_services_of_an_authorised_change_asks_the_new_owners(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY, on("api"))

    change = desk.edit(change, services=("payments-api",))

    assert change.stage is Stage.APPROVE
    assert rules_of(desk, change) == [
        ("Approvers", 1, (), False),
        ("Owners of payments-*", 1, (), False),
    ]


# -- the policy keys -------------------------------------------------------------------------


BAD_OWNERS = {
    "no groups and no users": (
        '[[owners]]\nservices = ["payments-*"]\ngroups = []\n',
        "owners.0.groups",
        "name at least one Slack user group",
    ),
    "no services": (
        '[[owners]]\nservices = []\ngroups = ["SPAYMENTS"]\n',
        "owners.0.services",
        "at least 1 item",
    ),
    "a user where a group belongs": (
        '[[owners]]\nservices = ["payments-*"]\ngroups = ["UPAULA"]\n',
        "owners.0.groups.0",
        '"UPAULA" is not a Slack user group ID',
    ),
    "no approvals": (
        '[[owners]]\nservices = ["payments-*"]\ngroups = ["SPAYMENTS"]\napprovals = 0\n',
        "owners.0.approvals",
        "greater than or equal to 1",
    ),
    "a misspelt key": (
        '[[owners]]\nservices = ["payments-*"]\ngroups = ["SPAYMENTS"]\napproval = 2\n',
        "owners.0.approval",
        "unknown key",
    ),
}


@pytest.mark.parametrize(("extra", "key", "problem"), BAD_OWNERS.values(), ids=BAD_OWNERS.keys())
def test_a_bad_owners_entry_is_refused_naming_the_key(
    tmp_path: Path, extra: str, key: str, problem: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML + extra, encoding="utf-8")

    with pytest.raises(PolicyError) as refused:
        load_policy(path)

    assert (refused.value.key, problem in refused.value.problem) == (key, True)


def test_a_bad_high_risk_group_is_refused_naming_the_key() -> None:
    with pytest.raises(PolicyError) as refused:
        owners_policy(approvals='high_risk_groups = ["security"]')

    assert refused.value.key == "approvals.high_risk_groups.0"


def test_the_default_policy_names_no_owners_and_no_high_risk_group() -> None:
    policy = load_policy()

    assert policy.owners == ()
    assert policy.approvals.high_risk_approvers.is_empty


def test_the_default_policys_commented_examples_are_valid_when_uncommented() -> None:
    text = resources.files("workflows").joinpath("default_policy.toml").read_text("utf-8")
    owners = text[text.index("# [[owners]]") : text.index("\n\n[emergency]")]
    examples = [*owners.splitlines(), "# high_risk_groups", "# high_risk_users"]
    lines = [
        line.removeprefix("# ") if line.startswith(tuple(examples)) else line
        for line in text.splitlines()
    ]

    policy = parse_policy("\n".join(lines), "the default policy, uncommented")

    assert policy.approvals.high_risk_groups == ("S0SECURITY",)
    assert [(o.label, o.services, o.groups) for o in policy.owners] == [
        ("Payments owners", ("payments-*",), ("S0PAYMENTS",))
    ]

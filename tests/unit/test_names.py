"""People, user groups and channels as people write them: `@handle` and `#name` in the policy,
checked as text when the policy is read, and resolved to IDs from what Slack says."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

from tests.unit.builders import POLICY_TOML, a_policy
from workflows.errors import PolicyError
from workflows.names import (
    Channel,
    Group,
    Person,
    Reference,
    Workspace,
    kinds_to_read,
    nobody_approves,
    references,
    resolve,
)
from workflows.policy import ChannelId, GroupId, Policy, SlackKind, UserId, parse_policy

USER, GROUP, CHANNEL = SlackKind.USER, SlackKind.GROUP, SlackKind.CHANNEL

#: The test policy with a name wherever the policy names someone or somewhere.
BY_NAME = (
    POLICY_TOML.replace('owner = "UOWNER"', 'owner = "@polly"')
    .replace('users = ["UANNA", "UARTHUR"]', 'users = ["@anna", "UARTHUR"]')
    .replace('groups = ["SCAB"]', 'groups = ["@cab"]')
    .replace('approver_users = ["UEMMA"]', 'approver_users = ["@Emma.Stone"]')
    .replace('approver_groups = ["SONCALL"]', 'approver_groups = ["SONCALL", "@on-call"]')
    .replace('scope = "code"\n', 'scope = "code"\nowner = "@anna"\n')
    + '\n[channels]\nchanges = "#changes"\n'
    + """
[[catalog]]
id = "rotate-secret"
name = "Rotate a secret"
version = "1"
runbook = "https://example.com/runbooks/rotate"
scope = "code"
owner = "@arthur"
"""
)

SLACK = Workspace(
    people=(
        Person("UOWNER", "polly"),
        Person("UANNA", "anna.k", display_name="anna"),
        Person("UARTHUR", "arthur"),
        Person("UEMMA", "emma.stone", display_name="Emma"),
    ),
    groups=(
        Group("SCAB", "cab", frozenset({"UGRACE"})),
        Group("SONCALL", "on-call", frozenset({"UOSCAR"})),
        Group("SOLD", "retired", disabled=True),
    ),
    channels=(Channel("C0CHANGES", "changes"), Channel("G0SECRET", "secret-ops")),
)


def by_name(**replacements: str) -> Policy:
    text = BY_NAME
    for old, new in replacements.items():
        assert text.count(old) >= 1, old
        text = text.replace(old, new)
    return parse_policy(text, "policy.toml")


def problem_of(policy: Policy, workspace: Workspace = SLACK) -> PolicyError:
    with pytest.raises(PolicyError) as raised:
        resolve(policy, workspace, "policy.toml")
    return raised.value


# -- the syntax, checked when the policy is read ---------------------------------------------------


def test_handles_and_channel_names_are_accepted_wherever_the_policy_names_someone() -> None:
    policy = by_name()

    assert policy.policy.owner == "@polly"
    assert policy.approvers.users == ("@anna", "UARTHUR")
    assert policy.approvers.groups == ("@cab",)
    assert policy.emergency.approver_groups == ("SONCALL", "@on-call")
    assert policy.channels.changes == "#changes"
    assert [p.owner for p in policy.catalog] == ["@anna", "@arthur"]


@pytest.mark.parametrize(
    ("edit", "key", "message"),
    [
        (("@cab", "@"), "approvers.groups.0", '"@" is not a Slack user group name'),
        (("@anna", "@-anna"), "approvers.users.0", '"@-anna" is not a Slack user name'),
        (("#changes", "#two words"), "channels.changes", '"#two words" is not a Slack channel'),
        (("#changes", "@changes"), "channels.changes", "nor a #channel-name"),
        (("@polly", "#polly"), "policy.owner", '"#polly" is not a Slack user ID'),
        (("@cab", "cab"), "approvers.groups.0", "nor an @handle"),
    ],
)
def test_a_name_that_slack_could_not_have_stops_the_policy_naming_the_key(
    edit: tuple[str, str], key: str, message: str
) -> None:
    with pytest.raises(PolicyError) as raised:
        by_name(**{edit[0]: edit[1]})

    assert raised.value.key == key
    assert message in raised.value.problem


# -- finding every reference -----------------------------------------------------------------------


def test_every_reference_is_found_with_its_key_in_the_files_order() -> None:
    found = [(r.key, r.kind, r.written) for r in references(by_name())]

    assert found == [
        ("policy.owner", USER, "@polly"),
        ("channels.changes", CHANNEL, "#changes"),
        ("approvers.users[0]", USER, "@anna"),
        ("approvers.users[1]", USER, "UARTHUR"),
        ("approvers.groups[0]", GROUP, "@cab"),
        ("emergency.approver_users[0]", USER, "@Emma.Stone"),
        ("emergency.approver_groups[0]", GROUP, "SONCALL"),
        ("emergency.approver_groups[1]", GROUP, "@on-call"),
        ("catalog[0].owner", USER, "@anna"),
        ("catalog[1].owner", USER, "@arthur"),
    ]


class _Service(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    owners: tuple[GroupId, ...] = ()
    lead: UserId | None = None


class _Ownership(BaseModel):
    """Shapes a future policy section may take: lists of tables, maps, optional fields."""

    model_config = ConfigDict(frozen=True)
    services: tuple[_Service, ...] = ()
    by_pattern: dict[str, tuple[GroupId, ...]] = {}
    room: ChannelId | None = None
    pair: tuple[UserId, GroupId] = ("", "")


def test_a_field_of_these_types_is_found_whatever_the_shape_around_it() -> None:
    ownership = _Ownership(
        services=(_Service(name="api", owners=("@api-owners", "SDBA"), lead="@lee"),),
        by_pattern={"payments-*": ("@payments",)},
        room="#ops",
        pair=("@ann", "@ops"),
    )

    assert references(ownership) == (
        Reference("services[0].owners[0]", GROUP, "@api-owners"),
        Reference("services[0].owners[1]", GROUP, "SDBA"),
        Reference("services[0].lead", USER, "@lee"),
        Reference("by_pattern.payments-*[0]", GROUP, "@payments"),
        Reference("room", CHANNEL, "#ops"),
        Reference("pair[0]", USER, "@ann"),
        Reference("pair[1]", GROUP, "@ops"),
    )


def test_slack_is_asked_about_what_the_policy_names_by_name_and_about_any_user_group() -> None:
    assert kinds_to_read(by_name()) == {USER, GROUP, CHANNEL}
    assert kinds_to_read(a_policy()) == {GROUP}  # to check SCAB and SONCALL exist
    assert kinds_to_read(a_policy(approvers='users = ["@anna"]', emergency="")) == {USER}
    assert kinds_to_read(a_policy(approvers="", emergency="")) == set()


# -- resolving -----------------------------------------------------------------------------------


def test_every_name_is_replaced_by_its_id_and_ids_stay_as_written() -> None:
    resolution = resolve(by_name(), SLACK, "policy.toml")
    policy = resolution.policy

    assert policy.policy.owner == "UOWNER"
    assert policy.approvers.users == ("UANNA", "UARTHUR")
    assert policy.approvers.groups == ("SCAB",)
    assert policy.emergency.approver_users == ("UEMMA",)
    assert policy.emergency.approver_groups == ("SONCALL", "SONCALL")
    assert policy.channels.changes == "C0CHANGES"
    assert [p.owner for p in policy.catalog] == ["UANNA", "UARTHUR"]
    # What is not a name is untouched: the rest of the policy is the same.
    assert policy.catalog[0].runbook == by_name().catalog[0].runbook
    assert [(r.key, r.written, found) for r, found in resolution.names][:3] == [
        ("policy.owner", "@polly", "UOWNER"),
        ("channels.changes", "#changes", "C0CHANGES"),
        ("approvers.users[0]", "@anna", "UANNA"),
    ]


def test_a_person_is_found_by_username_first_then_by_display_name_in_any_case() -> None:
    policy = resolve(by_name(), SLACK).policy

    assert policy.approvers.users[0] == "UANNA"  # @anna is Anna's display name
    assert policy.emergency.approver_users == ("UEMMA",)  # @Emma.Stone is emma.stone


def test_a_policy_without_names_is_the_same_policy() -> None:
    policy = a_policy()

    assert resolve(policy, SLACK).policy is policy
    assert resolve(policy, Workspace()).policy is policy


def test_an_unknown_user_group_stops_naming_the_key_and_the_name() -> None:
    error = problem_of(by_name(**{'"@cab"': '"@payments-oncall"'}))

    assert error.key == "approvers.groups[0]"
    assert str(error) == (
        "Bad change policy in policy.toml: approvers.groups[0]: "
        "no user group @payments-oncall in this workspace"
    )


def test_every_unknown_name_is_named_at_once() -> None:
    error = problem_of(by_name(**{"@polly": "@nobody", "#changes": "#nowhere", "@arthur": "@art"}))

    assert error.key == "policy.owner"
    assert error.problem.startswith("no user @nobody in this workspace; channels.changes: ")
    assert "no channel #nowhere in this workspace that changebot can see" in error.problem
    assert "catalog[1].owner: no user @art in this workspace" in error.problem


def test_a_user_group_id_that_does_not_exist_stops_as_a_name_does() -> None:
    error = problem_of(a_policy(approvers='groups = ["SNOPE"]'))

    assert error.key == "approvers.groups[0]"
    assert error.problem.startswith("no user group SNOPE in this workspace")


def test_a_user_group_id_is_used_as_written_when_slack_was_not_asked() -> None:
    policy = a_policy(approvers='groups = ["SNOPE"]')

    assert resolve(policy, Workspace(people=SLACK.people)).policy is policy


def test_a_disabled_user_group_stops_by_id_and_by_handle() -> None:
    for written in ("SOLD", "@retired"):
        error = problem_of(a_policy(approvers=f'groups = ["{written}"]'))

        assert "the user group @retired (SOLD) is disabled in Slack" in error.problem


def test_a_display_name_two_people_share_must_be_written_as_an_id() -> None:
    twins = Workspace(people=(Person("USAM1", "sam.a", "sam"), Person("USAM2", "sam.b", "Sam")))

    error = problem_of(a_policy(approvers='users = ["@sam"]', emergency=""), twins)

    assert error.problem == (
        "@sam is the display name of 2 people (USAM1, USAM2); write the user ID of the one you "
        "mean instead"
    )


def test_a_person_where_a_group_belongs_is_pointed_out() -> None:
    error = problem_of(by_name(**{'"@cab"': '"@arthur"'}))

    assert error.problem == (
        "no user group @arthur in this workspace (@arthur is a person: name them where users "
        "belong)"
    )


# -- who can approve -------------------------------------------------------------------------------


def test_nobody_approves_when_the_policy_names_no_approver() -> None:
    policy = a_policy(approvers="", emergency="")

    assert nobody_approves(policy, Workspace()) == [
        "Nobody can approve a Normal change: approvers.users and approvers.groups are empty; "
        "name the people or the user groups who approve in the policy.",
        "Nobody can approve an emergency change: emergency.approver_users and "
        "emergency.approver_groups are empty, so the approvers of Normal changes approve "
        "emergencies too, and there are none.",
    ]


def test_user_groups_slack_says_are_empty_count_as_nobody() -> None:
    empty = Workspace(groups=(Group("SCAB", "cab"), Group("SONCALL", "on-call")))
    policy = a_policy(approvers='groups = ["SCAB"]', emergency='approver_groups = ["SONCALL"]')

    assert nobody_approves(policy, empty) == [
        "Nobody can approve a Normal change: the user groups in approvers.groups have no "
        "members in Slack; add people to them, or name people in approvers.users.",
        "Nobody can approve an emergency change: the user groups in emergency.approver_groups "
        "have no members in Slack; add people to them, or name people in "
        "emergency.approver_users.",
    ]


def test_someone_can_approve_when_a_person_or_a_member_is_named_or_slack_was_not_asked() -> None:
    policy = a_policy(approvers='groups = ["SCAB"]', emergency='approver_users = ["UEMMA"]')

    assert nobody_approves(policy, SLACK) == []
    assert nobody_approves(policy, Workspace()) == []  # members unknown: no false alarm
    assert nobody_approves(a_policy(), Workspace(groups=())) == []  # people are named

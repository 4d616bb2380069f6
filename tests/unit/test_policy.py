"""The change policy: the default, a company's own file, and the files that must stop start-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.builders import ANNA, BOB, EMMA, GRACE, OSCAR, POLICY_TOML, a_policy
from workflows.errors import PolicyError
from workflows.model import Classification, Level
from workflows.policy import Policy, load_policy

C = Classification


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def with_edit(old: str, new: str) -> str:
    assert POLICY_TOML.count(old) == 1, old
    return POLICY_TOML.replace(old, new)


# -- loading ------------------------------------------------------------------------------


def test_the_default_policy_loads() -> None:
    policy = load_policy()
    assert [s.id for s in policy.scope] == [
        "code",
        "infrastructure",
        "database",
        "integration",
        "security",
        "dependency",
    ]
    assert [p.id for p in policy.catalog] == ["restart-service", "rotate-secret"]
    assert policy.emergency.review_deadline == timedelta(hours=48)
    assert policy.policy.review_every == timedelta(days=365)


def test_an_empty_path_means_the_default_policy() -> None:
    assert load_policy("") == load_policy(None)


def test_a_company_policy_file_replaces_the_default(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, POLICY_TOML))
    assert policy.policy.name == "Test policy"
    assert policy.approvers.users == ("UANNA", "UARTHUR")
    assert policy.approvers.groups == ("SCAB",)
    assert [s.id for s in policy.scope] == ["code", "database"]
    assert policy.procedure("restart-service") is not None
    assert policy.procedure("rotate-secret") is None


def test_unset_sections_keep_their_defaults() -> None:
    policy = a_policy(approvals="", emergency="")
    assert (policy.approvals.normal, policy.approvals.normal_high_risk) == (1, 2)
    assert policy.emergency.review_deadline == timedelta(hours=48)
    assert policy.emergency.break_glass_allowed


def test_durations_may_be_as_short_as_ten_seconds() -> None:
    policy = a_policy(emergency='review_deadline = "10s"\nreminder_every = "10s"')
    assert policy.emergency.review_deadline == timedelta(seconds=10)
    assert policy.emergency.reminder_every == timedelta(seconds=10)


def test_the_policy_review_falls_due_a_review_period_after_the_last_one() -> None:
    assert a_policy().policy_review_due() == datetime(2026, 7, 4, tzinfo=UTC)
    assert load_policy().policy_review_due() == datetime(2027, 1, 5, tzinfo=UTC)


# -- files that stop start-up ---------------------------------------------------------------

BAD_FILES = {
    "bad duration": (
        with_edit('review_deadline = "48h"', 'review_deadline = "two days"'),
        "emergency.review_deadline",
        '"two days" is not a duration',
    ),
    "zero duration": (
        with_edit('review_every = "180d"', 'review_every = "0d"'),
        "policy.review_every",
        "must be longer than that",
    ),
    "absurd duration": (
        with_edit('review_deadline = "48h"', 'review_deadline = "9999999999d"'),
        "emergency.review_deadline",
        "too long a duration",
    ),
    "duration as a number": (
        with_edit('review_deadline = "48h"', "review_deadline = 48"),
        "emergency.review_deadline",
        'write a duration as text, for example "48h"',
    ),
    "unknown key": (
        with_edit('users = ["UANNA", "UARTHUR"]', 'user = ["UANNA"]'),
        "approvers.user",
        "unknown key",
    ),
    "unknown section": (
        POLICY_TOML + "\n[approval]\nnormal = 2\n",
        "approval",
        "unknown key",
    ),
    "bad user ID": (
        with_edit('"UANNA", "UARTHUR"', '"anna", "UARTHUR"'),
        "approvers.users.0",
        '"anna" is not a Slack user ID',
    ),
    "user ID where a group belongs": (
        with_edit('groups = ["SCAB"]', 'groups = ["UCAB"]'),
        "approvers.groups.0",
        '"UCAB" is not a Slack user group ID',
    ),
    "bad owner": (
        with_edit('owner = "UOWNER"', 'owner = "owner"'),
        "policy.owner",
        "is not a Slack user ID",
    ),
    "bad channel": (
        POLICY_TOML + '\n[channels]\nchanges = "changes"\n',
        "channels.changes",
        '"changes" is not a Slack channel ID (it starts with C or G, then capital letters and '
        "digits) nor a #channel-name",
    ),
    "catalog scope not in the scope list": (
        with_edit('restart"\nscope = "code"', 'restart"\nscope = "network"'),
        "catalog[0].scope",
        "'network' is not one of the scope ids (code, database)",
    ),
    "duplicate scope id": (
        with_edit('id = "database"', 'id = "code"'),
        "scope[1].id",
        "'code' appears twice",
    ),
    "duplicate catalog id": (
        POLICY_TOML
        + '\n[[catalog]]\nid = "restart-service"\nname = "Again"\nversion = "1"\n'
        + 'runbook = "https://example.com/again"\nscope = "code"\n',
        "catalog[1].id",
        "'restart-service' appears twice",
    ),
    "missing required key": (
        with_edit("last_reviewed = 2026-01-05\n", ""),
        "policy.last_reviewed",
        "this key is required",
    ),
    "approvals out of range": (
        with_edit("normal = 1", "normal = 0"),
        "approvals.normal",
        "greater than or equal to 1",
    ),
    "unknown risk level": (
        with_edit("emergency = 1", 'emergency = 1\nhigh_risk_levels = ["critical"]'),
        "approvals.high_risk_levels.0",
        "'low', 'medium' or 'high'",
    ),
    "runbook that is not a link": (
        with_edit('"https://example.com/runbooks/restart"', '"the wiki"'),
        "catalog.0.runbook",
        "should match pattern",
    ),
    "invalid TOML": (POLICY_TOML + "\nthis is = not = toml\n", "", "it is not valid TOML"),
    "reviewed at the calendar's end": (
        with_edit("last_reviewed = 2026-01-05", "last_reviewed = 9999-12-31"),
        "policy.last_reviewed",
        "9999-12-31 is not a date it was reviewed",
    ),
    "reviewed every million years": (
        with_edit('review_every = "180d"', 'review_every = "99999999w"'),
        "policy.review_every",
        "at most 10 years",
    ),
}


@pytest.mark.parametrize(("text", "key", "problem"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_policy_file_is_refused_naming_the_file_the_key_and_the_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    error = refused.value
    assert (error.source, error.key) == (str(path), key)
    assert problem in error.problem
    where = f"{path}: {key}" if key else str(path)
    assert str(error) == f"Bad change policy in {where}: {error.problem}"


def test_a_file_that_is_not_text_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    assert refused.value.source == str(path)
    assert refused.value.problem == "it is not text (UTF-8), so not a TOML file"


def test_a_missing_policy_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    assert refused.value.source == str(path)
    assert refused.value.problem == "cannot read it (No such file or directory)"
    assert str(path) in str(refused.value)


# -- what the process asks of the policy --------------------------------------------------


@pytest.mark.parametrize(
    ("classification", "risk", "needed"),
    [
        (C.STANDARD, Level.LOW, 0),
        (C.STANDARD, Level.HIGH, 0),
        (C.NORMAL, Level.LOW, 1),
        (C.NORMAL, Level.MEDIUM, 1),
        (C.NORMAL, Level.HIGH, 2),
        (C.EMERGENCY, Level.LOW, 1),
        (C.EMERGENCY, Level.HIGH, 1),
    ],
)
def test_required_approvals_follow_classification_and_risk(
    classification: Classification, risk: Level, needed: int, policy: Policy
) -> None:
    assert policy.required_approvals(classification, risk) == needed


def test_which_risk_levels_count_as_high_is_up_to_the_company() -> None:
    policy = a_policy(
        approvals='normal = 1\nnormal_high_risk = 3\nhigh_risk_levels = ["medium", "high"]'
    )
    assert policy.required_approvals(C.NORMAL, Level.LOW) == 1
    assert policy.required_approvals(C.NORMAL, Level.MEDIUM) == 3


def test_approvers_are_named_or_belong_to_a_named_group(policy: Policy) -> None:
    assert policy.may_approve(ANNA, C.NORMAL)
    assert policy.may_approve(GRACE, C.NORMAL)
    assert not policy.may_approve(BOB, C.NORMAL)


def test_emergency_approvers_are_their_own_list_when_the_policy_names_them(
    policy: Policy,
) -> None:
    assert policy.may_approve(EMMA, C.EMERGENCY)
    assert policy.may_approve(OSCAR, C.EMERGENCY)
    assert not policy.may_approve(ANNA, C.EMERGENCY)
    assert not policy.may_approve(EMMA, C.NORMAL)


def test_emergency_approvers_fall_back_to_the_approvers() -> None:
    policy = a_policy(emergency='review_deadline = "48h"')
    assert policy.emergency_approvers == policy.approvers
    assert policy.may_approve(ANNA, C.EMERGENCY)
    assert policy.may_approve(GRACE, C.EMERGENCY)
    assert not policy.may_approve(EMMA, C.EMERGENCY)


def test_procedures_and_scopes_are_found_by_id(policy: Policy) -> None:
    procedure = policy.procedure("restart-service")
    assert procedure is not None
    assert procedure.label == "Rolling restart of a stateless service (v3)"
    assert policy.procedure("") is None
    scope = policy.scope_named("database")
    assert scope is not None and scope.name.startswith("Database")
    assert policy.scope_named("network") is None

"""`changebot audit keygen|digest|verify --digests` given bad keys and bad directories: one
sentence naming what is wrong, a non-zero exit, no traceback and no file left half-written."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.integration.command import Changebot, Finished


def _one_sentence(finished: Finished, code: int = 2) -> str:
    assert finished.code == code, finished.output
    assert "Traceback" not in finished.output
    assert finished.stderr.startswith("changebot: "), finished.stderr
    assert finished.stderr.count("\n") == 1, finished.stderr
    return finished.stderr


@pytest.fixture
def keys(changebot: Changebot, tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "digest.key", tmp_path / "digest.pub"
    made = changebot("audit", "keygen", "--private-key", str(private), "--public-key", str(public))
    assert made.code == 0, made.output
    assert "fingerprint sha256:" in made.stdout
    return private, public


@pytest.fixture
def migrated(changebot: Changebot, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A migrated SQLite database (its DATABASE_URL) and an empty digest directory."""
    database = {"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}"}
    assert changebot("db", "upgrade", env=database).code == 0
    directory = tmp_path / "digests"
    directory.mkdir()
    return database, directory


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites_one(
    changebot: Changebot, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    before = private.read_bytes()

    again = changebot(
        "audit", "keygen", "--private-key", str(private), "--public-key", str(tmp_path / "new")
    )

    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in before and b"BEGIN PUBLIC KEY" in public.read_bytes()
    assert f"{private} already exists: keygen never overwrites a key." in _one_sentence(again)
    assert private.read_bytes() == before
    assert not (tmp_path / "new").exists()


def test_keygen_that_cannot_write_the_public_key_leaves_no_private_key_behind(
    changebot: Changebot, tmp_path: Path
) -> None:
    private = tmp_path / "digest.key"

    finished = changebot(
        "audit", "keygen", "--private-key", str(private), "--public-key", "/nonexistent/d.pub"
    )

    assert "cannot write /nonexistent/d.pub: No such file or directory." in _one_sentence(finished)
    assert not private.exists()


def test_audit_digest_refuses_bad_keys_and_directories_in_a_sentence(
    changebot: Changebot,
    migrated: tuple[dict[str, str], Path],
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    database, directory = migrated
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")
    good = {"CHANGEBOT_DIGEST_DIR": str(directory), "CHANGEBOT_DIGEST_KEY": str(keys[0])}
    cases = {
        "unset": {},
        "no key": {"CHANGEBOT_DIGEST_DIR": str(directory)},
        "no directory": {"CHANGEBOT_DIGEST_KEY": str(keys[0])},
        "missing key": {**good, "CHANGEBOT_DIGEST_KEY": str(tmp_path / "missing.key")},
        "not a key": {**good, "CHANGEBOT_DIGEST_KEY": str(not_a_key)},
        "public key": {**good, "CHANGEBOT_DIGEST_KEY": str(keys[1])},
        "missing directory": {**good, "CHANGEBOT_DIGEST_DIR": str(tmp_path / "gone")},
        "file for directory": {**good, "CHANGEBOT_DIGEST_DIR": str(keys[1])},
        "bad interval": {**good, "CHANGEBOT_DIGEST_EVERY": "hourly"},
    }

    runs = changebot.side_by_side(
        *((["audit", "digest"], {**database, **e}) for e in cases.values())
    )
    said = dict(zip(cases, (_one_sentence(run) for run in runs), strict=True))

    assert "set CHANGEBOT_DIGEST_DIR and CHANGEBOT_DIGEST_KEY to write digests" in said["unset"]
    assert "CHANGEBOT_DIGEST_DIR is set but CHANGEBOT_DIGEST_KEY is not" in said["no key"]
    assert "CHANGEBOT_DIGEST_KEY is set but CHANGEBOT_DIGEST_DIR is not" in said["no directory"]
    assert "cannot read the private key (CHANGEBOT_DIGEST_KEY)" in said["missing key"]
    assert "No such file or directory." in said["missing key"]
    assert f"{not_a_key} is not an unencrypted Ed25519 private key" in said["not a key"]
    assert "is not an unencrypted Ed25519 private key" in said["public key"]
    assert "cannot read the digest directory" in said["missing directory"]
    assert "cannot read the digest directory" in said["file for directory"]
    assert 'CHANGEBOT_DIGEST_EVERY: "hourly" is not a duration' in said["bad interval"]
    assert list(directory.iterdir()) == []


def test_verify_with_digests_refuses_a_bad_key_or_directory_before_reading_the_trail(
    changebot: Changebot,
    migrated: tuple[dict[str, str], Path],
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    database, directory = migrated
    verify = ["audit", "verify", "--digests"]
    runs = changebot.side_by_side(
        ([*verify, str(directory)], database),
        ([*verify, str(directory), "--public-key", str(keys[0])], database),
        ([*verify, str(directory), "--public-key", str(tmp_path / "gone.pub")], database),
        ([*verify, str(tmp_path / "gone"), "--public-key", str(keys[1])], database),
    )
    alone, private, missing, no_directory = (_one_sentence(run) for run in runs)

    assert "--digests and --public-key go together" in alone
    assert f"{keys[0]} is not an Ed25519 public key in PEM" in private
    assert "cannot read the public key" in missing
    assert f"cannot read the digest directory {tmp_path / 'gone'}" in no_directory


def test_verify_against_an_empty_digest_directory_fails_saying_there_is_nothing_to_check(
    changebot: Changebot,
    migrated: tuple[dict[str, str], Path],
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    database, directory = migrated

    finished = changebot(
        "audit", "verify", "--digests", str(directory), "--public-key", str(keys[1]), env=database
    )

    assert finished.code == 1
    assert "holds no digests: there is nothing to check the trail against." in finished.stderr


def test_serve_with_half_a_digest_configuration_stops_naming_the_variable(
    changebot: Changebot, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "0" * 32,
        "CHANGEBOT_DIGEST_DIR": str(tmp_path),
    }

    finished = changebot("serve", env=env)

    assert "CHANGEBOT_DIGEST_DIR is set but CHANGEBOT_DIGEST_KEY is not" in _one_sentence(finished)

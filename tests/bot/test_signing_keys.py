"""A key file of another kind than Ed25519 (a curve the cryptography library does not support,
say) is a KeyProblem naming the file, like any other key that is not one of ours."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bot.signing import KeyProblem, load_private, load_public

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")


@needs_openssl
def test_a_key_on_a_curve_the_library_does_not_know_is_a_key_problem(tmp_path: Path) -> None:
    private, public = tmp_path / "ec.pem", tmp_path / "ec.pub"
    subprocess.run(
        ["openssl", "ecparam", "-name", "secp112r1", "-genkey", "-noout", "-out", str(private)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["openssl", "ec", "-in", str(private), "-pubout", "-out", str(public)],
        check=True,
        capture_output=True,
    )

    with pytest.raises(KeyProblem, match="is not an unencrypted Ed25519 private key"):
        load_private(private, source="CHANGEBOT_DIGEST_KEY")
    with pytest.raises(KeyProblem, match="is not an Ed25519 public key"):
        load_public(public)

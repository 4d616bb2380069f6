"""The Ed25519 keys that sign the audit trail's digests (the `cryptography` package).

The private key signs, on the replicas that write digests; the public key is given to
auditors, who check digests with it. Each key is a PEM file; a digest names the public key
that checks it by its fingerprint.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from workflows.digests import Digest


class KeyProblem(Exception):
    """A key that cannot be made, read or used; the message says which file and why."""

    code = 2


def fingerprint(public: Ed25519PublicKey) -> str:
    """`sha256:` and the SHA-256 of the raw 32-byte public key, in hexadecimal."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def sign(key: Ed25519PrivateKey, digest: Digest) -> Digest:
    signature = base64.b64encode(key.sign(digest.body())).decode("ascii")
    return digest.signed(signature)


def genuine(public: Ed25519PublicKey, digest: Digest) -> bool:
    """Whether `digest` carries a valid signature by `public` over its body."""
    try:
        public.verify(base64.b64decode(digest.signature, validate=True), digest.body())
    except (InvalidSignature, ValueError):
        return False
    return True


def generate(private_path: Path, public_path: Path) -> str:
    """Write a new key pair (the private key readable by its owner alone); never overwrites a
    file, never leaves half a pair behind. Returns the public key's fingerprint."""
    for path in (private_path, public_path):
        if path.exists():
            raise KeyProblem(f"{path} already exists: keygen never overwrites a key.")
    if private_path.resolve() == public_path.resolve():
        raise KeyProblem("--private-key and --public-key must be two different files.")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(private_path, private_pem, 0o600)
    try:
        _write_new(public_path, public_pem, 0o644)
    except KeyProblem:
        private_path.unlink()
        raise
    return fingerprint(key.public_key())


def _write_new(path: Path, content: bytes, mode: int) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeyProblem(f"{path} already exists: keygen never overwrites a key.") from None
    except OSError as error:
        raise KeyProblem(f"cannot write {path}: {error.strerror}.") from error
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(content)
        os.chmod(path, mode)  # whatever the umask made of it
    except OSError as error:
        with contextlib.suppress(OSError):
            path.unlink()
        raise KeyProblem(f"cannot write {path}: {error.strerror}.") from error


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise KeyProblem(f"cannot read the {what} {path}: {error.strerror}.") from error


def load_private(path: Path, *, source: str) -> Ed25519PrivateKey:
    """The private key at `path`; `source` names where the path came from, for the message."""
    pem = _read(path, f"private key ({source})")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # not PEM, encrypted, an odd curve
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyProblem(
            f"{source}: {path} is not an unencrypted Ed25519 private key in PEM; make one with "
            "`changebot audit keygen`."
        )
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    pem = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyProblem(
            f"{path} is not an Ed25519 public key in PEM (the --public-key file that "
            "`changebot audit keygen` wrote)."
        )
    return key

"""`changebot serve` writes the signed digests on its own timer: the first as it starts, and
what it wrote bears the trail out for `audit verify --digests`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bot.signing import generate
from standin import SlackStandIn
from storage import digests as store
from tests.e2e.harness import CHANGEBOT, BotProcess, eventually


async def test_serve_writes_a_signed_digest_on_its_timer_that_verify_accepts(
    slack: SlackStandIn, workdir: Path
) -> None:
    private, public = workdir / "digest.key", workdir / "digest.pub"
    generate(private, public)
    directory = workdir / "digests"
    directory.mkdir()
    env = {"CHANGEBOT_DIGEST_DIR": str(directory), "CHANGEBOT_DIGEST_KEY": str(private)}
    bot = BotProcess(slack, workdir, env=env)
    await bot.start()
    try:
        names = await eventually(lambda: store.digest_names(directory), timeout=15)
    finally:
        bot.stop()
    assert "signed digests of the audit trail go to" in bot.output()

    verified = subprocess.run(
        [CHANGEBOT, "audit", "verify", "--digests", str(directory), "--public-key", str(public)],
        env=bot.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr
    assert f"Digests: {len(names)} signed by" in verified.stdout

"""`/change metrics`: DORA's five metrics beside the period before's, a chart uploaded into the
asker's direct messages, and App Home's line of the last 30 days. The whole bot in this
process with the Slack stand-in; the changes are deployed through the real use cases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.views.metrics import metrics_message
from storage.uow import SqlUnitOfWork
from tests.bot.in_process import InProcess, in_process
from tests.e2e.harness import eventually
from tests.integration.changes import POLICY, REQUESTER, normal_details, review_test_and_approve
from workflows import followup, process
from workflows.metrics import last_days, measure
from workflows.model import Outcome, Window

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def bot(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(sqlite_template, tmp_path) as served:
        yield served


def deployed(bot: InProcess, outcome: Outcome, *, days_after_request: float) -> None:
    engine, now = bot.bot.services.engine, bot.clock.now()
    window = Window(now + timedelta(hours=1), now + timedelta(days=days_after_request, hours=1))
    uow = SqlUnitOfWork(engine)
    details = normal_details(window=window)
    change = process.request_change(uow, bot.clock, POLICY, REQUESTER, details).change
    review_test_and_approve(engine, bot.clock, change.number)
    bot.clock.advance(days=days_after_request)
    process.start_deployment(uow, bot.clock, POLICY, change.number, REQUESTER)
    notes = "" if outcome is Outcome.SUCCESSFUL else "Errors rose; rolled back."
    followup.record_outcome(
        uow, bot.clock, POLICY, change.number, REQUESTER, outcome=outcome, notes=notes
    )


def lines(body: dict[str, Any]) -> list[str]:
    return [block["text"]["text"] for block in body["blocks"] if "text" in block]


async def test_metrics_answer_with_the_period_beside_the_one_before_and_send_a_chart(
    bot: InProcess,
) -> None:
    deployed(bot, Outcome.SUCCESSFUL, days_after_request=2)  # the 30 days before
    bot.clock.advance(days=30)
    deployed(bot, Outcome.SUCCESSFUL, days_after_request=1)
    deployed(bot, Outcome.ROLLED_BACK, days_after_request=1)
    bot.clock.advance(hours=6)
    deployed(bot, Outcome.SUCCESSFUL, days_after_request=3)  # same service: recovered

    reply = await bot.driver.slash_command("U0ALICE", "/change", "metrics")

    assert reply.status == 200, reply.text
    shown = "\n".join(lines(reply.body))
    assert "*DORA metrics, the last 30 days*" in shown
    assert "*Deployment frequency*: 0.7 a week (3 deployments)" in shown
    assert "*Change lead time*: 2.0 days (median) · → was 2.0 days" in shown  # 1 and 3 days
    assert "*Change fail rate*: 33% (1 of 3) · 🔴 ↗ was 0%" in shown
    assert "*Failed deployment recovery time*: 3.2 days" in shown  # 6 h and 3 days later
    assert "*Deployment rework rate*: 0%" in shown

    dm = bot.slack.workspace.dm_with("U0ALICE").id
    (message,) = await eventually(lambda: bot.slack.messages(dm))
    (shared,) = message["files"]
    assert shared["title"].startswith("DORA metrics,") and shared["title"].endswith("(30 days)")
    image = bot.slack.state.uploads.by_id[shared["id"]].data
    assert image is not None and image.startswith(PNG) and len(image) > 10_000


async def test_a_period_it_cannot_measure_is_explained(bot: InProcess) -> None:
    for given in ("400d", "last month", "0d"):
        reply = await bot.driver.slash_command("U0ALICE", "/change", f"metrics {given}")
        assert "I measure periods of days, from `1d` to `365d`" in reply.text, reply.text
    reply = await bot.driver.slash_command("U0ALICE", "/change", "metrics 90d")
    assert "*DORA metrics, the last 90 days*" in reply.text
    assert "*Change fail rate*: n/a" in reply.text  # nothing deployed: nothing made up


async def test_app_home_shows_the_last_30_days_in_a_line(bot: InProcess) -> None:
    deployed(bot, Outcome.SUCCESSFUL, days_after_request=1)
    deployed(bot, Outcome.FAILED, days_after_request=1)

    await bot.driver.open_home("U0ALICE")

    view = await eventually(lambda: bot.slack.home_view("U0ALICE"))
    contexts = [e["text"] for b in view["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert contexts[0].startswith(
        "*Last 30 days:* 2 deployments (0.5 a week) · lead time 1.0 days · fail rate 50% · "
        "recovery n/a · rework 0%"
    ), contexts


def test_a_period_without_deployments_says_none_not_a_made_up_rate() -> None:

    trend = measure([], last_days(30, datetime(2026, 12, 6, tzinfo=UTC)))
    shown = str(metrics_message(trend)["blocks"])
    assert "*Deployment frequency*: none (0 deployments) · → was none" in shown


def test_failures_naming_no_service_are_noted_beside_recovery_as_unknown() -> None:
    period = last_days(30, datetime(2026, 12, 6, tzinfo=UTC))
    trend = measure([], period)
    now = replace(trend.now, deployments=3, failures=3, unrecovered=1, recovery_unknown=2)
    shown = str(metrics_message(replace(trend, now=now))["blocks"])
    assert "1 not recovered yet; 2 naming no service, recovery unknown" in shown

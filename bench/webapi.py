"""Slack Web API economy: the calls the bot makes for a change's whole life, per method.

Run from the repository's root:  python -m bench.webapi [--smoke]

The real `changebot serve` runs against the Slack stand-in (standin/), driven through Slack
as people use it (tests/e2e/steps.py). Three scenarios on one bot process:

- Normal: a Normal change's whole lifecycle, twice. The first change also pays the
  process's one-off calls; the second shows what a change costs once the bot is warm.
- Emergency: `/change emergency …` in an incident channel, approved, deployed, its
  post-change review left owed until three reminders have been sent, then written.
- Coalescing: two approvals of a high-risk change land while Slack refuses the card's
  update, once with a 503 and once with a 429 and its Retry-After; once Slack takes it
  again, one update must show both (a superseded card state is never sent).

The baseline is what is *needed*, read from the bot's own database: one card (and its copy
in the incident channel) per change, one chat.update per card state the change went through
after its card was posted, one thread reply or direct message per effect its audit trail
calls for (bot/effects.py), one direct message per reminder. Calls beyond that are
redundant: the normal run exits non-zero if it finds any; `--smoke` only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session

from bench.report import machine, ratio, table
from bot import ids
from bot.effects import effects_for
from standin import Call, SlackDriver, SlackStandIn
from storage.repositories import SqlChanges, read_trail
from tests.e2e.harness import (
    SIGNING_SECRET,
    BotProcess,
    audit_trail,
    engine_of,
    eventually,
    policy_toml,
    workspace,
)
from tests.e2e.steps import (
    CHANGES,
    EMERGENCY_REVIEW,
    approve_deploy_and_succeed,
    buttons,
    click,
    latest,
    request_change,
    review_and_test,
    settled,
    stage_shown,
    step_with_form,
)
from workflows.model import Change
from workflows.policy import Policy, parse_policy
from workflows.stages import Action

INCIDENT = "C0INCIDENT"
REMINDERS = 3


def bench_policy(reminder_every: int) -> str:
    """The tests' policy, its post-change review due well after the scenario, reminded of
    every `reminder_every` seconds."""
    return (
        policy_toml()
        .replace('review_deadline = "20s"', 'review_deadline = "10m"')
        .replace('reminder_every = "5s"', f'reminder_every = "{reminder_every}s"')
    )


ENV = {"CHANGEBOT_SWEEP_SECONDS": "0.25"}
REMINDER_ACTIONS = ("reminder_sent", "reminder_escalated")


@dataclass
class Needed:
    """What Slack had to be told for one scenario, per kind of call."""

    cards: int = 0
    card_updates: int = 0
    replies: int = 0
    dms: int = 0
    forms: int = 0
    links: int = 0
    states: int = 0

    def __iadd__(self, other: Needed) -> Needed:
        self.cards += other.cards
        self.card_updates += other.card_updates
        self.replies += other.replies
        self.dms += other.dms
        self.forms += other.forms
        self.links += other.links
        self.states += other.states
        return self


@dataclass
class Scenario:
    name: str
    calls: list[Call] = field(default_factory=list)
    needed: Needed = field(default_factory=Needed)
    seconds: float = 0.0


# -- what was called ----------------------------------------------------------------------


def kind(call: Call) -> str:
    """The call's method; chat.postMessage split by what it posted."""
    if call.method != "chat.postMessage":
        return call.method
    if call.params.get("thread_ts"):
        return "chat.postMessage (thread reply)"
    if str(call.params.get("channel", "")).startswith(("U", "W", "D")):
        return "chat.postMessage (direct message)"
    return "chat.postMessage (card)"


def counted(calls: Sequence[Call]) -> Counter[str]:
    return Counter(kind(call) for call in calls)


# -- what was needed ----------------------------------------------------------------------


def number_of(ref: str) -> int:
    return int(ref.split("-")[1])


def change_now(bot: BotProcess, ref: str) -> Change:
    with Session(engine_of(bot)) as session:
        return SqlChanges(session).get(number_of(ref))


def needed_for(
    bot: BotProcess, policy: Policy, ref: str, posted_at_version: int, forms: int
) -> Needed:
    """One card (two for an emergency declared elsewhere), an update of each per card state
    after the one first posted, and the replies and messages its audit trail calls for."""
    with Session(engine_of(bot)) as session:
        change = SqlChanges(session).get(number_of(ref))
        trail = [event.entry for event in read_trail(session, ref=ref)]
    copies = 2 if change.requested_in not in ("", CHANGES) else 1
    states = change.version - posted_at_version
    effects = [effect for entry in trail for effect in effects_for(entry, change, policy)]
    reminders = sum(1 for entry in trail if entry.action in REMINDER_ACTIONS)
    escalations = sum(1 for entry in trail if entry.action == "reminder_escalated")
    confirmation = 1  # the requester hears where the card is
    return Needed(
        cards=copies,
        card_updates=states * copies,
        replies=sum(1 for effect in effects if not effect.to),
        dms=sum(1 for effect in effects if effect.to) + reminders + escalations + confirmation,
        forms=forms,
        links=confirmation,  # the card's link in the confirmation
        states=states,
    )


def needed_by_kind(needed: Needed) -> dict[str, int]:
    return {
        "chat.postMessage (card)": needed.cards,
        "chat.update": needed.card_updates,
        "chat.postMessage (thread reply)": needed.replies,
        "chat.postMessage (direct message)": needed.dms,
        "chat.getPermalink": needed.links,
        "views.open": needed.forms,
    }


# -- the scenarios ----------------------------------------------------------------------------


async def normal_lifecycle(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess, policy: Policy, title: str
) -> Needed:
    """Request, review, test evidence, approval, deployment, outcome: Closed."""
    card = await request_change(driver, slack, **{ids.TITLE: title})
    await settled(bot, slack)
    ref = _ref(card)
    posted_at = change_now(bot, ref).version
    await review_and_test(driver, slack, card)
    await click(driver, slack, "U0CAROL", card, Action.APPROVE)
    await stage_shown(slack, card, "start_deployment")
    await click(driver, slack, "U0ALICE", card, Action.START_DEPLOYMENT)
    await stage_shown(slack, card, "record_outcome")
    await step_with_form(
        driver, slack, "U0ALICE", card, Action.RECORD_OUTCOME, {ids.OUTCOME: "successful"}
    )
    await eventually(lambda: "Closed" in str(latest(slack, card).get("blocks")))
    await settled(bot, slack)
    # Forms opened: the request, the review, the test evidence and the outcome.
    return needed_for(bot, policy, ref, posted_at, forms=4)


async def emergency_with_reminders(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess, policy: Policy, every: int
) -> Needed:
    """Declared in the incident channel, approved, deployed, reminded three times about its
    post-change review, which the owner then writes from the last reminder."""
    line = "Roll back checkout to v41, payments failing https://incidents.example.com/42"
    answer = await driver.slash_command("U0ALICE", "/change", f"emergency {line}", channel=INCIDENT)
    found = re.search(r"CHG-\d+", answer.text)
    assert answer.status == 200 and found, answer.text
    ref = found.group(0)
    card = await _card_of(slack, CHANGES, ref)
    await _card_of(slack, INCIDENT, ref)
    await settled(bot, slack)
    posted_at = change_now(bot, ref).version

    await approve_deploy_and_succeed(driver, slack, card)

    def reminded() -> int:
        return sum(1 for _, _, action in audit_trail(bot, ref) if action in REMINDER_ACTIONS)

    await eventually(lambda: reminded() >= REMINDERS, timeout=REMINDERS * every + 15)
    reminder = await eventually(
        lambda: [m for m in slack.dms("U0ALICE") if ref in m.get("text", "")][-REMINDERS:]
    )
    modals_before = len(slack.modals("U0ALICE"))
    await driver.click("U0ALICE", reminder[-1], ids.WRITE_REVIEW)
    await eventually(lambda: len(slack.modals("U0ALICE")) > modals_before)
    reply = await driver.submit_modal("U0ALICE", EMERGENCY_REVIEW)
    assert reply.status == 200 and not (reply.body or {}).get("errors"), reply.text
    await eventually(lambda: "Closed" in str(latest(slack, card).get("blocks")))
    await settled(bot, slack)
    # Reminded every 2 s there is time to write the review before a fourth (every 1 s, in
    # smoke runs, perhaps not: the needed count follows the reminders actually sent).
    sent = reminded()
    assert sent == REMINDERS or every < 2, f"{sent} reminders were sent before the review"
    # Forms opened: the outcome and the post-change review.
    return needed_for(bot, policy, ref, posted_at, forms=2)


@dataclass
class Coalescing:
    fault: str
    states: int
    updates: int
    refused: int
    final_shown: bool
    shown: list[list[str]]
    reads: int


async def coalescing(
    slack: SlackStandIn,
    driver: SlackDriver,
    bot: BotProcess,
    fault: str,
    title: str,
    retry_after: int = 2,
) -> Coalescing:
    """Two approvals of a high-risk change while Slack turns the card's update away
    (`fault`: "503", or "ratelimited" with Retry-After 2 s); then one update must show both."""
    card = await request_change(driver, slack, **{ids.TITLE: title, ids.RISK: "high"})
    await review_and_test(driver, slack, card, risk="high")
    await settled(bot, slack)
    ref = _ref(card)
    before = change_now(bot, ref).version
    first = len(slack.calls)

    slack.fail_next("chat.update", fault, retry_after=retry_after)
    await click(driver, slack, "U0CAROL", card, Action.APPROVE)
    await eventually(lambda: slack.calls_to("chat.update")[-1].fault is not None)
    await click(driver, slack, "U0DAVE", card, Action.APPROVE)
    await eventually(lambda: change_now(bot, ref).version >= before + 2)
    await stage_shown(slack, card, "start_deployment")
    await settled(bot, slack)
    final = change_now(bot, ref)
    updates = [c for c in slack.calls[first:] if c.method == "chat.update"]
    shown = latest(slack, card)
    return Coalescing(
        fault=fault,
        states=final.version - before,
        updates=sum(1 for c in updates if c.ok),
        refused=sum(1 for c in updates if not c.ok),
        final_shown="start_deployment" in buttons(shown) and "approve" not in buttons(shown),
        shown=[_buttons_sent(c) for c in updates if c.ok],
        reads=sum(1 for c in slack.calls[first:] if c.method.startswith("conversations.")),
    )


def _buttons_sent(call: Call) -> list[str]:
    blocks = call.params.get("blocks")
    return buttons({"blocks": json.loads(blocks) if isinstance(blocks, str) else blocks})


def _ref(card: dict[str, Any]) -> str:
    found = re.search(r"CHG-\d+", str(card.get("blocks")))
    assert found, "the card names no change"
    return found.group(0)


async def _card_of(slack: SlackStandIn, channel: str, ref: str) -> dict[str, Any]:
    found = await eventually(
        lambda: [m for m in slack.messages(channel) if ref in str(m.get("blocks") or "")]
    )
    return found[0]


# -- the run --------------------------------------------------------------------------------------


async def measure(smoke: bool) -> tuple[list[Scenario], list[Coalescing]]:
    every = 1 if smoke else 2  # seconds between reminders, and Retry-After of the 429
    text = bench_policy(every)
    rules = parse_policy(text, "bench")
    scenarios: list[Scenario] = []
    with tempfile.TemporaryDirectory(prefix="bench-webapi-") as tmp:
        async with SlackStandIn(workspace()) as slack:
            bot = BotProcess(slack, Path(tmp), policy=text, env=ENV)
            await bot.start()
            try:
                driver = SlackDriver(bot.url + "/slack/events", SIGNING_SECRET, slack)
                await settled(bot, slack)
                scenarios.append(Scenario("bot start", list(slack.calls)))

                async def run(name: str, steps: Any) -> None:
                    first, started = len(slack.calls), time.monotonic()
                    needed = await steps
                    scenarios.append(
                        Scenario(name, slack.calls[first:], needed, time.monotonic() - started)
                    )

                await run(
                    "Normal (1st)",
                    normal_lifecycle(slack, driver, bot, rules, "Upgrade Postgres to 16.4"),
                )
                if not smoke:
                    await run(
                        "Normal (2nd)",
                        normal_lifecycle(slack, driver, bot, rules, "Upgrade Redis to 7.4"),
                    )
                await run(
                    "emergency + 3 reminders",
                    emergency_with_reminders(slack, driver, bot, rules, every),
                )
                coalesced = [
                    await coalescing(slack, driver, bot, "503", "Rotate the TLS certificates"),
                    await coalescing(
                        slack, driver, bot, "ratelimited", "Renew the CDN keys", every
                    ),
                ]
            finally:
                bot.stop()
    return scenarios, coalesced


def _per_change(method: str, lifecycles: list[Scenario]) -> bool:
    return any(kind(c) == method for s in lifecycles[1:] for c in s.calls)


FAULTS = {"503": "Slack fails (503)", "ratelimited": "Slack rate-limits (429, Retry-After)"}


def report(scenarios: list[Scenario], coalesced: list[Coalescing]) -> tuple[str, list[str]]:
    """The table and notes, and the redundancies found (calls beyond what was needed)."""
    lifecycles = [s for s in scenarios if s.name != "bot start"]
    shown = [s for s in scenarios if s.calls or s.name != "bot start"]
    headers = ["Web API method", *(s.name for s in shown), "needed", "calls / needed"]
    methods = sorted({kind(c) for s in scenarios for c in s.calls})
    counts = {s.name: counted(s.calls) for s in scenarios}
    total_needed = Needed()
    for s in lifecycles:
        total_needed += s.needed
    wanted = needed_by_kind(total_needed)
    rows: list[list[object]] = []
    redundant: list[str] = []
    for method in methods:
        row: list[object] = [method, *(counts[s.name][method] for s in shown)]
        if method in wanted:
            made = sum(counts[s.name][method] for s in lifecycles)
            row += [wanted[method], ratio(made, wanted[method])]
            if made > wanted[method]:
                redundant.append(f"{method}: {made} calls for {wanted[method]} needed")
        else:
            row += ["-", "-"]
        rows.append(row)
    rows.append(["total", *(len(s.calls) for s in shown), "", ""])
    lines = [table(headers, rows)]
    lines.append(
        "needed: the lifecycles' sum; card states after the card was posted: "
        + ", ".join(f"{s.name} {s.needed.states}" for s in lifecycles)
        + " (an emergency's card and its incident-channel copy are each updated)"
    )
    first = counts[lifecycles[0].name]
    once = [m for m in methods if first[m] and not _per_change(m, lifecycles)]
    if once:
        lines.append(f"once per process (none for any later change): {', '.join(once)}")
    lines.append("scenario time: " + ", ".join(f"{s.name} {s.seconds:.1f} s" for s in lifecycles))
    for c in coalesced:
        lines.append(
            f"coalescing, two approvals while {FAULTS[c.fault]} the card's update: "
            f"card states {c.states} -> chat.update {c.updates} accepted "
            f"(+{c.refused} refused); final state shown: {'yes' if c.final_shown else 'NO'}; "
            f"thread read back {c.reads}x"
        )
        if c.updates >= c.states:
            superseded = sum(1 for b in c.shown if "approve" in b)
            redundant.append(
                f"card update not coalesced when {FAULTS[c.fault]}: {c.states} states, "
                f"{c.updates} updates accepted, {superseded} of them showing a superseded state"
            )
        if not c.final_shown:
            redundant.append(f"the card does not show the final state when {FAULTS[c.fault]}")
    return "\n".join(lines), redundant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webapi", description=__doc__)
    parser.add_argument(
        "--smoke", action="store_true", help="one Normal lifecycle, no thresholds (for CI)"
    )
    args = parser.parse_args(argv)
    print(machine())
    started = time.monotonic()
    scenarios, coalesced = asyncio.run(measure(args.smoke))
    text, redundant = report(scenarios, coalesced)
    print(text)
    for finding in redundant:
        print("REDUNDANT:", finding)
    lifecycles = [s for s in scenarios if s.name != "bot start"]
    made = sum(len(s.calls) for s in lifecycles)
    merged = "; ".join(f"{c.states} card states -> {c.updates} updates" for c in coalesced)
    print(
        f"webapi: {made} Web API calls for {len(lifecycles)} lifecycles, "
        f"{len(redundant)} redundancies found; coalescing {merged} "
        f"({time.monotonic() - started:.0f} s{', smoke' if args.smoke else ''})"
    )
    return 1 if redundant and not args.smoke else 0


if __name__ == "__main__":
    sys.exit(main())

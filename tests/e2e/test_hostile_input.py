"""Hostile and broken input: forged or stale requests are refused with 401, oversized ones with
413, malformed ones with a 4xx or a polite sentence; none gets a 5xx or writes anything. User
text full of Slack control sequences is shown literally everywhere the bot writes it, and the
bot's logs never carry its token or signing secret."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from bot import ids
from standin import Reply, SlackDriver, SlackStandIn, payloads
from standin.signing import sign, signed_headers
from tests.e2e.harness import CHANGEBOT, SIGNING_SECRET, BotProcess, audit_trail, eventually
from tests.e2e.steps import (
    CHANGES,
    buttons,
    cards,
    latest,
    quiet,
    request_change,
    settled,
    step_with_form,
    thread_texts,
)
from workflows.stages import Action

FORM = "application/x-www-form-urlencoded"


def audit_lines(bot: BotProcess, fmt: str = "jsonl") -> list[str]:
    out = subprocess.run(
        [CHANGEBOT, "audit", "export", "--format", fmt],
        env={**os.environ, **bot.env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


def written(bot: BotProcess, slack: SlackStandIn) -> tuple[int, int, int]:
    """What the bot has written so far: audit events (read from its database, not through
    the CLI, which costs a second a call), cards, and Web API calls."""
    return len(audit_trail(bot)), len(cards(slack)), len(slack.calls)


def interaction(driver: SlackDriver, slack: SlackStandIn, user: str = "U0ERIN") -> dict[str, Any]:
    """A block_actions payload from `user` on a message in #changes, with one placeholder
    button; tests replace the parts they break."""
    pressed = {
        "type": "button",
        "action_id": ids.CARD_ACTION_PREFIX + "approve",
        "block_id": "actions",
        "text": {"type": "plain_text", "text": "Approve"},
        "value": json.dumps({"n": 9999, "s": "approve"}),
        "action_ts": payloads.action_ts(),
    }
    return payloads.block_actions_in_message(
        driver.workspace,
        token=driver.token,
        user=user,
        trigger_id=slack.issue_trigger(user),
        action=pressed,
        channel=CHANGES,
        message={"type": "message", "ts": "1700000000.000100", "text": "", "blocks": []},
        ephemeral=False,
        response_url=slack.issue_response_url(CHANGES, user),
        state={},
    )


def form(payload: Any) -> bytes:
    return urlencode(
        {"payload": payload if isinstance(payload, str) else json.dumps(payload)}
    ).encode()


# -- signatures --------------------------------------------------------------------------------


async def refused_unsigned(
    driver: SlackDriver, slack: SlackStandIn, bot: BotProcess, headers: dict[str, str], body: bytes
) -> Reply:
    before = written(bot, slack)
    reply = await driver.post_raw(body, FORM, headers)
    await quiet(slack)
    assert written(bot, slack) == before
    return reply


def slash_body(slack: SlackStandIn, driver: SlackDriver) -> bytes:
    fields = payloads.slash_command(
        driver.workspace,
        token=driver.token,
        command=ids.COMMAND,
        text="new",
        user="U0ALICE",
        channel=slack.workspace.find_channel(CHANGES).id,  # type: ignore[union-attr]
        response_url=slack.issue_response_url(CHANGES, "U0ALICE"),
        trigger_id=slack.issue_trigger("U0ALICE"),
    )
    return urlencode(fields).encode()


async def test_a_forged_signature_is_refused_and_changes_nothing(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    body = slash_body(slack, driver)
    forged = signed_headers(body, "not-the-signing-secret")
    reply = await refused_unsigned(driver, slack, bot, forged, body)
    assert reply.status == 401


async def test_missing_signature_headers_are_refused(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    body = slash_body(slack, driver)
    for headers in (
        {},
        {"X-Slack-Request-Timestamp": str(int(time.time()))},
        {"X-Slack-Signature": signed_headers(body, SIGNING_SECRET)["X-Slack-Signature"]},
        # Not a time: the signature check must refuse it, not fail on it (and tell Alice).
        {"X-Slack-Request-Timestamp": "now", "X-Slack-Signature": "v0=forged"},
        {"X-Slack-Request-Timestamp": "1.7e9", "X-Slack-Signature": "v0=forged"},
    ):
        reply = await refused_unsigned(driver, slack, bot, headers, body)
        assert reply.status == 401, (headers, reply.text)


async def test_an_expired_but_correctly_signed_request_is_refused(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    body = slash_body(slack, driver)
    old = int(time.time()) - 6 * 60
    headers = {
        "X-Slack-Request-Timestamp": str(old),
        "X-Slack-Signature": sign(body, SIGNING_SECRET, old),
    }
    reply = await refused_unsigned(driver, slack, bot, headers, body)
    assert reply.status == 401


async def test_a_body_over_one_megabyte_is_refused(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    before = written(bot, slack)
    payload = interaction(driver, slack)
    payload["padding"] = "x" * (1024 * 1024 + 10)
    reply = await driver.post_raw(form(payload))
    await quiet(slack)
    assert reply.status == 413, reply.text
    assert written(bot, slack) == before


# -- malformed requests ------------------------------------------------------------------------


def _without(payload: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in keys}


MALFORMED: dict[str, Any] = {
    "non-JSON payload": lambda d, s: (form("{not json"), FORM),
    "payload is a JSON list": lambda d, s: (form([1, 2, 3]), FORM),
    "payload is a JSON string": lambda d, s: (form('"hello"'), FORM),
    "no user": lambda d, s: (form(_without(interaction(d, s), "user")), FORM),
    "no actions": lambda d, s: (form(_without(interaction(d, s), "actions")), FORM),
    "empty actions": lambda d, s: (form({**interaction(d, s), "actions": []}), FORM),
    "view_submission without view": lambda d, s: (
        form({"type": "view_submission", "user": {"id": "U0ERIN"}, "team": {"id": "T0"}}),
        FORM,
    ),
    "unknown payload type": lambda d, s: (form({**interaction(d, s), "type": "mystery"}), FORM),
    "empty form body": lambda d, s: (b"", FORM),
    "wrong content type": lambda d, s: (b"<xml>hello</xml>", "text/xml"),
    "JSON body that is not an event": lambda d, s: (b'{"hello": 1}', "application/json"),
    "JSON body that is not JSON": lambda d, s: (b"{oops", "application/json"),
    "form with only junk": lambda d, s: (b"a=1&b=2", FORM),
    "command without trigger_id": lambda d, s: (
        urlencode(
            {k: v for k, v in parse_qsl(slash_body(s, d).decode()) if k != "trigger_id"}
        ).encode(),
        FORM,
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_requests_get_a_4xx_or_a_polite_answer_never_a_5xx(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess, case: str
) -> None:
    body, content_type = MALFORMED[case](driver, slack)
    log_before = len(bot.output())
    audit_before, cards_before = len(audit_trail(bot)), len(cards(slack))
    reply = await driver.post_raw(body, content_type)
    await quiet(slack)
    assert reply.status < 500, (case, reply.status, reply.text)
    assert 200 <= reply.status < 500
    assert (len(audit_trail(bot)), len(cards(slack))) == (audit_before, cards_before)
    assert "Traceback" not in bot.output()[log_before:], bot.output()[log_before:]


async def told(slack: SlackStandIn, user: str, before: tuple[int, int]) -> str:
    """What `user` was told since `before`: a refusal may come after the acknowledgement (a
    deferred move), so it is waited for, then a quiet moment for any more."""

    def shown() -> list[dict[str, Any]]:
        return slack.ephemerals(user)[before[0] :] + slack.dms(user)[before[1] :]

    await eventually(shown)
    await quiet(slack)
    return " ".join(m.get("text", "") for m in shown())


BUTTONS: dict[str, Any] = {
    "unknown action_id": {"action_id": "no_such_button", "value": "x"},
    "card action that does not exist": {"action_id": ids.CARD_ACTION_PREFIX + "teleport"},
    "a button value that is not ours": {"value": "<script>alert(1)</script>"},
    "a button value that is JSON but not ours": {"value": json.dumps({"n": "one"})},
    "a change that does not exist": {"value": json.dumps({"n": 9999, "s": "approve"})},
    "a stage that does not exist": {"value": json.dumps({"n": 1, "s": "levitating"})},
}


@pytest.mark.parametrize("case", list(BUTTONS))
async def test_odd_buttons_get_a_polite_ephemeral_and_change_nothing(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess, case: str
) -> None:
    payload = interaction(driver, slack)
    payload["actions"][0].update(BUTTONS[case])
    seen = (len(slack.ephemerals("U0ERIN")), len(slack.dms("U0ERIN")))
    log_before = len(bot.output())
    audit_before, cards_before = len(audit_trail(bot)), len(cards(slack))
    reply = await driver.post_raw(form(payload))
    assert reply.status == 200, (case, reply.text)
    answer = await told(slack, "U0ERIN", seen)
    assert answer.strip(), f"{case}: nobody was told anything"
    assert "Something went wrong" not in answer, (case, answer)
    assert (len(audit_trail(bot)), len(cards(slack))) == (audit_before, cards_before)
    assert "Traceback" not in bot.output()[log_before:]


async def test_an_unknown_form_gets_a_polite_answer(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    view = {
        "id": "V0NOTOURS",
        "type": "modal",
        "callback_id": "not_ours",
        "private_metadata": "",
        "blocks": [{"type": "input", "block_id": "b", "element": {"type": "plain_text_input"}}],
        "state": {"values": {}},
    }
    payload = payloads.view_submission(
        driver.workspace, token=driver.token, user="U0ERIN", trigger_id="t", view=view
    )
    reply = await driver.post_raw(form(payload))
    assert reply.status == 200
    assert reply.body["response_action"] == "errors"


# -- Slack control sequences in user text -------------------------------------------------------

PINGS = (
    "<!channel>",
    "<!here>",
    "<!subteam^S0APPROVERS>",
    "<@U0CAROL>",
    "<https://evil.example|docs>",
)
UNICODE = "🚀 שלום עולם مرحبا"
FORMULA = "=cmd|' /C calc'!A0"
NASTY = " ".join(PINGS) + " " + UNICODE
RAW = ("<!channel>", "<!here>", "<https://evil.example|docs>", " ".join(PINGS[1:4]))


def slack_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def formatted(surface: Any) -> str:
    """Every text in `surface` Slack formats (mrkdwn and message text): plain_text is left
    out, since Slack shows it as it is and nothing in it pings anyone."""
    if isinstance(surface, str):
        return surface
    if isinstance(surface, list):
        return "\n".join(formatted(item) for item in surface)
    if isinstance(surface, dict):
        if surface.get("type") == "plain_text":
            return ""
        return "\n".join(formatted(v) for k, v in surface.items() if k not in ("value", "type"))
    return ""


def assert_literal(where: str, surface: Any) -> None:
    """`surface` shows the user's control sequences escaped, and never raw."""
    text = formatted(surface)
    assert slack_escaped(NASTY) in text, (where, text)
    for raw in RAW:
        assert raw not in text, (where, raw, text)


async def test_control_sequences_in_user_text_are_shown_literally_everywhere(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    dms_before = len(slack.dms("U0ALICE"))
    title = f"{FORMULA} <!channel> <@U0CAROL> {UNICODE}"
    card = await request_change(
        driver,
        slack,
        **{
            ids.TITLE: title,
            ids.DESCRIPTION: NASTY,
            ids.SERVICES: f"<!here>, {UNICODE}, {FORMULA}",
            ids.ROLLBACK_PLAN: NASTY,
        },
    )
    ref = str(card["text"]).split(" ")[0]
    await step_with_form(
        driver,
        slack,
        "U0BOB",
        card,
        Action.RECORD_REVIEW,
        {ids.ASSESSMENT: NASTY, ids.REVIEW_RISK: "low"},
    )
    await eventually(lambda: "add_test_evidence" in buttons(latest(slack, card)))
    await step_with_form(
        driver, slack, "U0ALICE", card, Action.ADD_TEST_EVIDENCE, {ids.EVIDENCE: NASTY}
    )
    await eventually(lambda: "approve" in buttons(latest(slack, card)))
    await step_with_form(driver, slack, "U0CAROL", card, Action.REJECT, {ids.REASON: NASTY})
    await eventually(lambda: "submit" in buttons(latest(slack, card)))
    await settled(bot, slack)

    assert_literal("card", latest(slack, card)["blocks"])
    replies = thread_texts(slack, card)
    assert replies
    for reply in replies:
        for raw in RAW:
            assert raw not in reply, (raw, reply)
    assert any(slack_escaped(NASTY) in r for r in replies), replies
    for dm in slack.dms("U0ALICE")[dms_before:]:
        for raw in RAW:
            assert raw not in dm.get("text", ""), (raw, dm)
    assert any(
        slack_escaped("<!channel> <@U0CAROL>") in m.get("text", "")
        for m in slack.dms("U0ALICE")[dms_before:]
    )

    published = len(slack.calls_to("views.publish"))
    assert (await driver.open_home("U0ALICE")).status == 200
    await eventually(lambda: len(slack.calls_to("views.publish")) > published)
    home = json.dumps(slack.home_view("U0ALICE"), ensure_ascii=False)
    assert slack_escaped("<!channel> <@U0CAROL>") in home and UNICODE in home
    assert "<!channel>" not in home and "<@U0CAROL> " + UNICODE not in home

    answer = await driver.slash_command("U0ERIN", "/change", f"show {ref}", channel=CHANGES)
    assert answer.status == 200, answer.text
    assert_literal("/change show", answer.body)

    # Only the CLI lets anyone name an actor freely: the one column a formula could start.
    subprocess.run(
        [CHANGEBOT, "token", "create", "hostile", "--scopes", "gate", "--by", FORMULA],
        env={**os.environ, **bot.env},
        capture_output=True,
        check=True,
    )
    cells = [cell for row in csv.reader(audit_lines(bot, "csv")) for cell in row]
    assert "'" + FORMULA in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    assert any(title in c for c in cells)  # Unicode intact in the details

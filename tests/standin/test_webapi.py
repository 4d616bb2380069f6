"""The stand-in answers slack_sdk's AsyncWebClient the way Slack's Web API does."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from standin import SlackStandIn

BUTTON = {
    "type": "actions",
    "elements": [
        {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}}
    ],
}
MODAL = {
    "type": "modal",
    "callback_id": "form",
    "title": {"type": "plain_text", "text": "Form"},
    "blocks": [BUTTON],
}


async def error_of(call: object) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call  # type: ignore[misc]
    return str(raised.value.response["error"])


async def test_auth_test_names_the_bot_and_team(client: AsyncWebClient) -> None:
    answer = await client.auth_test()

    assert answer["ok"] is True
    assert (answer["user_id"], answer["bot_id"], answer["team_id"]) == ("U0BOT", "B0BOT", "T0TEAM")


async def test_post_message_returns_increasing_ts_and_the_stored_message(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    first = await client.chat_postMessage(channel="C0CHANGES", text="one")
    second = await client.chat_postMessage(channel="#changes", text="two", blocks=[BUTTON])

    assert first["channel"] == second["channel"] == "C0CHANGES"
    assert float(first["ts"]) < float(second["ts"])
    assert second["message"]["blocks"][0]["block_id"]  # Slack fills in missing block ids
    assert [m["text"] for m in slack.messages("C0CHANGES")] == ["one", "two"]


async def test_thread_lists_root_and_replies_with_updates_applied(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    root = await client.chat_postMessage(channel="C0CHANGES", text="root")
    await client.chat_postMessage(channel="C0CHANGES", text="reply 1", thread_ts=root["ts"])
    await client.chat_postMessage(channel="C0CHANGES", text="reply 2", thread_ts=root["ts"])
    await client.chat_update(channel="C0CHANGES", ts=root["ts"], text="root, edited")

    thread = slack.thread("C0CHANGES", root["ts"])

    assert [m["text"] for m in thread] == ["root, edited", "reply 1", "reply 2"]
    assert thread[0]["reply_count"] == 2
    assert [m["text"] for m in slack.messages("C0CHANGES")] == ["root, edited"]


async def test_update_keeps_blocks_it_is_not_sent(client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0CHANGES", text="x", blocks=[BUTTON])

    updated = await client.chat_update(channel="C0CHANGES", ts=posted["ts"], text="y")

    assert updated["message"]["text"] == "y"
    assert updated["message"]["blocks"] == posted["message"]["blocks"]


async def test_update_of_unknown_or_foreign_message_fails(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    human = slack.add_user_message("C0CHANGES", "U0ALICE", "hi bot")

    unknown = client.chat_update(channel="C0CHANGES", ts="1.000001", text="x")
    foreign = client.chat_update(channel="C0CHANGES", ts=human["ts"], text="x")

    assert await error_of(unknown) == "message_not_found"
    assert await error_of(foreign) == "cant_update_message"


async def test_delete_removes_the_message(client: AsyncWebClient, slack: SlackStandIn) -> None:
    posted = await client.chat_postMessage(channel="C0CHANGES", text="oops")

    await client.chat_delete(channel="C0CHANGES", ts=posted["ts"])

    assert slack.messages("C0CHANGES") == []
    assert await error_of(client.chat_delete(channel="C0CHANGES", ts=posted["ts"])) == (
        "message_not_found"
    )


async def test_posting_where_the_bot_cannot_fails_like_slack(client: AsyncWebClient) -> None:
    assert await error_of(client.chat_postMessage(channel="C0RANDOM", text="x")) == (
        "not_in_channel"
    )
    assert await error_of(client.chat_postMessage(channel="G0SECRET", text="x")) == (
        "channel_not_found"
    )
    assert await error_of(client.chat_postMessage(channel="C0NOPE", text="x")) == (
        "channel_not_found"
    )


async def test_more_than_fifty_blocks_are_refused(client: AsyncWebClient) -> None:
    blocks = [{"type": "divider"}] * 51

    assert await error_of(
        client.chat_postMessage(channel="C0CHANGES", text="x", blocks=blocks)
    ) == ("invalid_blocks")


async def test_ephemeral_messages_reach_members_only(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    answer = await client.chat_postEphemeral(channel="C0CHANGES", user="U0BOB", text="psst")
    slack.workspace.add_user("U0ERIN", "erin")
    outsider = client.chat_postEphemeral(channel="C0CHANGES", user="U0ERIN", text="psst")

    assert answer["message_ts"]
    assert [m["text"] for m in slack.ephemerals("U0BOB", "C0CHANGES")] == ["psst"]
    assert await error_of(outsider) == "user_not_in_channel"


async def test_permalink_points_into_the_thread(client: AsyncWebClient) -> None:
    root = await client.chat_postMessage(channel="C0CHANGES", text="root")
    reply = await client.chat_postMessage(channel="C0CHANGES", text="r", thread_ts=root["ts"])

    link = (await client.chat_getPermalink(channel="C0CHANGES", message_ts=reply["ts"]))[
        "permalink"
    ]

    assert link.startswith("https://changebot-test.slack.com/archives/C0CHANGES/p")
    assert f"thread_ts={root['ts']}" in link


async def test_views_open_needs_a_fresh_trigger_from_an_interaction(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    trigger = slack.issue_trigger("U0ALICE")

    opened = await client.views_open(trigger_id=trigger, view=MODAL)

    assert opened["view"]["id"].startswith("V")
    assert opened["view"]["callback_id"] == "form"
    assert slack.open_modal("U0ALICE")["id"] == opened["view"]["id"]  # type: ignore[index]
    assert await error_of(client.views_open(trigger_id=trigger, view=MODAL)) == (
        "exchanged_trigger_id"
    )
    assert await error_of(client.views_open(trigger_id="12.34.made-up", view=MODAL)) == (
        "invalid_trigger_id"
    )


async def test_views_open_after_three_seconds_is_too_late(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    trigger = slack.issue_trigger("U0ALICE")
    slack.expire_triggers()

    assert await error_of(client.views_open(trigger_id=trigger, view=MODAL)) == (
        "expired_trigger_id"
    )


async def test_views_push_and_update_change_the_users_stack(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    root = await client.views_open(trigger_id=slack.issue_trigger("U0ALICE"), view=MODAL)
    pushed = await client.views_push(trigger_id=slack.issue_trigger("U0ALICE"), view=MODAL)
    retitled = {**MODAL, "title": {"type": "plain_text", "text": "Step 2"}}

    await client.views_update(view_id=pushed["view"]["id"], view=retitled)
    stale = client.views_update(view_id=root["view"]["id"], view=MODAL, hash="old")

    stack = slack.modals("U0ALICE")
    assert [v["id"] for v in stack] == [root["view"]["id"], pushed["view"]["id"]]
    assert stack[1]["title"]["text"] == "Step 2"
    assert stack[1]["previous_view_id"] == root["view"]["id"]
    assert await error_of(stale) == "hash_conflict"
    assert await error_of(client.views_update(view_id="V404", view=MODAL)) == "not_found"


async def test_views_publish_keeps_one_home_per_user(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    home = {"type": "home", "blocks": [BUTTON]}

    first = await client.views_publish(user_id="U0ALICE", view=home)
    second = await client.views_publish(user_id="U0ALICE", view=home)

    assert first["view"]["id"] == second["view"]["id"]
    assert slack.home_view("U0ALICE")["type"] == "home"  # type: ignore[index]
    assert slack.home_view("U0BOB") is None


async def test_dm_channels_are_per_user(client: AsyncWebClient, slack: SlackStandIn) -> None:
    alice = await client.conversations_open(users="U0ALICE")
    again = await client.conversations_open(users="U0ALICE")
    bob = await client.conversations_open(users="U0BOB")

    await client.chat_postMessage(channel=alice["channel"]["id"], text="for alice")
    await client.chat_postMessage(channel="U0ALICE", text="also for alice")

    assert alice["channel"]["id"].startswith("D")
    assert alice["channel"]["id"] == again["channel"]["id"] != bob["channel"]["id"]
    assert [m["text"] for m in slack.dms("U0ALICE")] == ["for alice", "also for alice"]


async def test_join_lets_the_bot_post_in_public_channels_only(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    joined = await client.conversations_join(channel="C0RANDOM")
    await client.chat_postMessage(channel="C0RANDOM", text="hello")

    assert joined["channel"]["is_member"] is True
    assert await error_of(client.conversations_join(channel="G0SECRET")) == "channel_not_found"
    slack.workspace.channels["G0SECRET"].members.append("U0BOT")
    assert await error_of(client.conversations_join(channel="G0SECRET")) == (
        "method_not_supported_for_channel_type"
    )


async def test_conversations_info_and_members(client: AsyncWebClient) -> None:
    info = await client.conversations_info(channel="C0CHANGES")
    page = await client.conversations_members(channel="C0CHANGES", limit=3)
    rest = await client.conversations_members(
        channel="C0CHANGES", cursor=page["response_metadata"]["next_cursor"]
    )

    assert info["channel"]["name"] == "changes"
    assert info["channel"]["is_member"] is True
    assert page["members"] + rest["members"] == ["U0ALICE", "U0BOB", "U0CAROL", "U0BOT"]
    assert rest["response_metadata"]["next_cursor"] == ""


async def test_users_and_usergroups_come_from_the_workspace(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    slack.workspace.set_usergroup("S0APPROVERS", ["U0ALICE", "U0BOB"])

    alice = await client.users_info(user="U0ALICE")
    approvers = await client.usergroups_users_list(usergroup="S0APPROVERS")

    assert alice["user"]["name"] == "alice"
    assert alice["user"]["profile"]["email"] == "alice@example.com"
    assert approvers["users"] == ["U0ALICE", "U0BOB"]
    assert await error_of(client.users_info(user="U0NOBODY")) == "user_not_found"
    assert await error_of(client.usergroups_users_list(usergroup="S0NONE")) == "no_such_subteam"


async def test_users_list_pages_through_everyone_with_cursors(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    slack.workspace.add_user("U0DAN", "dan", display_name="Danny", deleted=True)

    first = await client.users_list(limit=2)
    pages = [first]
    while cursor := pages[-1]["response_metadata"]["next_cursor"]:
        pages.append(await client.users_list(limit=2, cursor=cursor))

    everyone = [m for p in pages for m in p["members"]]
    assert [m["id"] for m in everyone] == ["U0BOT", "U0ALICE", "U0BOB", "U0CAROL", "U0DAN"]
    assert len(pages) == 3 and len(first["members"]) == 2
    dan = everyone[-1]
    assert (dan["name"], dan["profile"]["display_name"], dan["deleted"]) == ("dan", "Danny", True)
    assert everyone[1]["profile"]["display_name"] == "alice"  # no display name: the username
    assert await error_of(client.users_list(cursor="not-a-cursor")) == "invalid_cursor"


async def test_usergroups_list_answers_every_group_at_once_with_what_is_asked(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    slack.workspace.set_usergroup("S0CAB", ["U0ALICE", "U0BOB"], handle="cab")
    slack.workspace.set_usergroup("S0OLD", ["U0CAROL"], handle="retired", disabled=True)

    plain = await client.usergroups_list()
    full = await client.usergroups_list(include_users=True, include_disabled=True)

    assert [(g["id"], g["handle"]) for g in plain["usergroups"]] == [("S0CAB", "cab")]
    assert "users" not in plain["usergroups"][0]
    assert "response_metadata" not in plain  # Slack does not page usergroups.list
    assert [(g["id"], g["users"], g["date_delete"] > 0) for g in full["usergroups"]] == [
        ("S0CAB", ["U0ALICE", "U0BOB"], False),
        ("S0OLD", ["U0CAROL"], True),
    ]
    assert await error_of(client.usergroups_users_list(usergroup="S0OLD")) == "no_such_subteam"


async def test_conversations_list_shows_the_channels_the_bot_can_see_a_page_at_a_time(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    ws = slack.workspace
    ws.add_channel("G0OPS", "ops-private", private=True, members=["U0ALICE"])  # bot is in it
    ws.add_channel("C0OLD", "old-news", archived=True)

    public = await client.conversations_list(limit=2)
    rest = await client.conversations_list(
        limit=2, cursor=public["response_metadata"]["next_cursor"]
    )
    both = await client.conversations_list(
        types="public_channel,private_channel", exclude_archived=True, limit=100
    )

    names = [c["name"] for c in public["channels"] + rest["channels"]]
    assert names == ["changes", "random", "old-news"]
    assert rest["response_metadata"]["next_cursor"] == ""
    assert [c["name"] for c in both["channels"]] == ["changes", "random", "ops-private"]
    assert both["channels"][2]["is_private"] is True  # G0SECRET: the bot is not in it, unseen
    assert await error_of(client.conversations_list(types="channels")) == "invalid_types"


async def test_tokens_are_checked_like_slack(slack: SlackStandIn) -> None:
    anonymous = AsyncWebClient(base_url=slack.base_url)
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack.base_url)
    app_level = AsyncWebClient(token=slack.app_token, base_url=slack.base_url)

    assert await error_of(anonymous.auth_test()) == "not_authed"
    assert await error_of(wrong.auth_test()) == "invalid_auth"
    assert await error_of(app_level.auth_test()) == "not_allowed_token_type"


async def test_unknown_methods_are_reported(client: AsyncWebClient) -> None:
    assert await error_of(client.api_call("chat.teleport")) == "unknown_method"


async def test_apps_connections_open_hands_out_a_websocket_url(slack: SlackStandIn) -> None:
    client = AsyncWebClient(base_url=slack.base_url)

    answer = await client.apps_connections_open(app_token=slack.app_token)

    assert answer["url"].startswith(f"ws://127.0.0.1:{slack.port}/link/?ticket=")


async def test_every_call_is_recorded_with_its_arguments(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    await client.chat_postMessage(channel="C0CHANGES", text="hi")
    await client.users_info(user="U0ALICE")

    [post] = slack.calls_to("chat.postMessage")
    assert post.params == {"channel": "C0CHANGES", "text": "hi"}
    assert post.token == slack.bot_token
    assert post.ok
    assert [c.method for c in slack.calls] == ["chat.postMessage", "users.info"]


async def test_form_encoded_and_json_bodies_are_both_understood(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    # slack_sdk sends blocks as a JSON string when they go in a form body
    await client.api_call(
        "chat.postMessage", data={"channel": "C0CHANGES", "blocks": '[{"type": "divider"}]'}
    )
    await client.api_call("chat.postMessage", json={"channel": "C0CHANGES", "text": "json"})

    first, second = slack.messages("C0CHANGES")
    assert first["blocks"][0]["type"] == "divider"
    assert second["text"] == "json"


async def test_files_upload_v2_shares_the_bytes_in_a_direct_message(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    dm = (await client.conversations_open(users="U0ALICE"))["channel"]["id"]
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(200))

    answer = await client.files_upload_v2(
        channel=dm, content=png, filename="chart.png", title="Trend", initial_comment="Here"
    )

    file_id = answer["file"]["id"]
    assert slack.state.uploads.by_id[file_id].data == png
    (message,) = slack.messages(dm)
    assert message["text"] == "Here"
    assert [(f["id"], f["title"], f["size"]) for f in message["files"]] == [
        (file_id, "Trend", len(png))
    ]


async def test_a_file_completed_before_its_bytes_arrive_is_not_found(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    announced = await client.files_getUploadURLExternal(filename="a.png", length=10)
    assert announced["upload_url"].startswith(slack.url)

    files = [{"id": announced["file_id"], "title": "a"}]
    assert await error_of(client.files_completeUploadExternal(files=files)) == "file_not_found"
    assert await error_of(client.files_getUploadURLExternal(filename="a.png", length=0)) == (
        "invalid_arguments"
    )

"""Who's who: auth.test, users.*, usergroups.*, and apps.connections.open."""

from __future__ import annotations

from standin.api.base import ApiRequest, Body, Handler, SlackState, page
from standin.errors import ApiError


def auth_test(state: SlackState, req: ApiRequest) -> Body:
    ws = state.workspace
    return {
        "ok": True,
        "url": f"https://{ws.team_domain}.slack.com/",
        "team": ws.team_name,
        "user": ws.bot_name,
        "team_id": ws.team_id,
        "user_id": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


def users_info(state: SlackState, req: ApiRequest) -> Body:
    user = state.workspace.user(req.require("user", "user_not_found"))
    if user is None:
        raise ApiError("user_not_found")
    return {"ok": True, "user": user.to_api(state.workspace.team_id)}


def users_list(state: SlackState, req: ApiRequest) -> Body:
    """Everyone, deleted people and bots included, a page at a time."""
    ws = state.workspace
    found, metadata = page([u.to_api(ws.team_id) for u in ws.users.values()], req)
    return {"ok": True, "members": found, "cache_ts": 1700000000, "response_metadata": metadata}


def lookup_by_email(state: SlackState, req: ApiRequest) -> Body:
    email = req.require("email", "users_not_found").lower()
    ws = state.workspace
    user = next((u for u in ws.users.values() if u.email.lower() == email), None)
    if user is None:
        raise ApiError("users_not_found")
    return {"ok": True, "user": user.to_api(ws.team_id)}


def usergroup_users(state: SlackState, req: ApiRequest) -> Body:
    group = req.require("usergroup", "no_such_subteam")
    found = state.workspace.usergroups.get(group)
    if found is None or (found.disabled and not req.flag("include_disabled")):
        raise ApiError("no_such_subteam")
    return {"ok": True, "users": list(found.members)}


def usergroups_list(state: SlackState, req: ApiRequest) -> Body:
    """Every user group in one answer (Slack does not page this method); disabled ones only
    with `include_disabled`, members only with `include_users`."""
    ws = state.workspace
    groups = [
        g.to_api(ws.team_id, with_users=req.flag("include_users"))
        for g in ws.usergroups.values()
        if not g.disabled or req.flag("include_disabled")
    ]
    return {"ok": True, "usergroups": groups}


def connections_open(state: SlackState, req: ApiRequest) -> Body:
    return {"ok": True, "url": state.issue_socket_url()}


HANDLERS: dict[str, Handler] = {
    "auth.test": auth_test,
    "users.info": users_info,
    "users.list": users_list,
    "users.lookupByEmail": lookup_by_email,
    "usergroups.list": usergroups_list,
    "usergroups.users.list": usergroup_users,
    "apps.connections.open": connections_open,
}

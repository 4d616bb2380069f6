"""views.* methods: modals opened from a trigger_id, pushed and updated, and App Home tabs."""

from __future__ import annotations

from typing import Any

from standin.api.base import ApiRequest, Body, Handler, SlackState
from standin.errors import ApiError, invalid_arguments

MAX_VIEW_BLOCKS = 100
MAX_TITLE = 24
MAX_PRIVATE_METADATA = 3000


def _view(req: ApiRequest, kind: str) -> dict[str, Any]:
    """The `view` argument, checked against the limits Slack enforces on the server."""
    view = req.structured("view", "invalid_arguments")
    if not isinstance(view, dict):
        raise invalid_arguments("missing required field: view")
    if view.get("type") != kind:
        raise invalid_arguments(f"view type must be {kind}")
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or len(blocks) > MAX_VIEW_BLOCKS:
        raise invalid_arguments(f"blocks must be a list of at most {MAX_VIEW_BLOCKS}")
    if kind == "modal":
        title = (view.get("title") or {}).get("text", "")
        if not title or len(title) > MAX_TITLE:
            raise invalid_arguments(f"title must be 1 to {MAX_TITLE} characters")
    if len(view.get("private_metadata", "")) > MAX_PRIVATE_METADATA:
        raise invalid_arguments("private_metadata must be at most 3000 characters")
    return view


def _trigger_user(state: SlackState, req: ApiRequest) -> str:
    trigger_id = req.text("trigger_id") or req.text("interactivity_pointer")
    if not trigger_id:
        raise invalid_arguments("missing required field: trigger_id")
    return state.surfaces.redeem(trigger_id)


def open_view(state: SlackState, req: ApiRequest) -> Body:
    view = _view(req, "modal")
    user = _trigger_user(state, req)
    return {"ok": True, "view": state.surfaces.open(user, view, owned=True)}


def push(state: SlackState, req: ApiRequest) -> Body:
    view = _view(req, "modal")
    user = _trigger_user(state, req)
    return {"ok": True, "view": state.surfaces.push(user, view, owned=True)}


def update(state: SlackState, req: ApiRequest) -> Body:
    view_id, external_id = req.text("view_id"), req.text("external_id")
    if not (view_id or external_id):
        raise invalid_arguments("either view_id or external_id is required")
    _, old = state.surfaces.find(view_id, external_id)
    view = _view(req, old["type"])
    return {
        "ok": True,
        "view": state.surfaces.update(view, view_id, external_id, req.text("hash"), owned=True),
    }


def publish(state: SlackState, req: ApiRequest) -> Body:
    user = req.require("user_id")
    if user not in state.workspace.users:
        raise ApiError("user_not_found")
    view = _view(req, "home")
    return {"ok": True, "view": state.surfaces.publish(user, view, owned=True)}


HANDLERS: dict[str, Handler] = {
    "views.open": open_view,
    "views.push": push,
    "views.update": update,
    "views.publish": publish,
}

"""What a person's input looks like by the time Slack sends it: `view.state.values` and actions.

Each Block Kit element type reports its value under its own key (`value`, `selected_option`,
`selected_users`, `selected_date_time`, ...). Given a view the bot opened and plain Python
values from a test, this builds exactly those shapes, and refuses what Slack's client would not
let a person submit: unknown inputs, options the menu doesn't offer, empty required fields.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from standin.blocks import Block, interactive_elements

State = dict[str, Any]

TEXT = {"plain_text_input", "email_text_input", "url_text_input", "number_input"}
ONE_OPTION = {"static_select", "external_select", "radio_buttons", "overflow"}
MANY_OPTIONS = {"multi_static_select", "multi_external_select", "checkboxes"}
ONE_ID = {
    "users_select": "user",
    "conversations_select": "conversation",
    "channels_select": "channel",
}
MANY_IDS = {
    "multi_users_select": "users",
    "multi_conversations_select": "conversations",
    "multi_channels_select": "channels",
}
DATES = {"datepicker": "date", "timepicker": "time", "datetimepicker": "date_time"}
STATELESS = {"button", "overflow", "workflow_button"}


class InputError(ValueError):
    """The test asked for input Slack's client would not let a person give."""


def stateful_elements(blocks: list[Block]) -> Iterator[tuple[Block, Block]]:
    """Elements whose value Slack reports in view.state (buttons and overflows have none)."""
    for block, element in interactive_elements(blocks):
        if element.get("type") not in STATELESS and element.get("action_id"):
            yield block, element


def value_fields(element: Block, value: Any) -> dict[str, Any]:
    """The keys Slack uses for this element type's value, e.g. {"selected_user": "U1"}."""
    kind = element.get("type", "")
    if isinstance(value, Mapping):
        return dict(value)
    if kind in TEXT:
        return {"value": None if value is None else str(value)}
    if kind in ONE_OPTION:
        return {"selected_option": None if value is None else _option(element, value)}
    if kind in MANY_OPTIONS:
        return {"selected_options": [_option(element, v) for v in _listed(value)]}
    if kind in ONE_ID:
        return {f"selected_{ONE_ID[kind]}": value}
    if kind in MANY_IDS:
        return {f"selected_{MANY_IDS[kind]}": _listed(value)}
    if kind in DATES:
        return {f"selected_{DATES[kind]}": _date_value(kind, value)}
    if kind == "rich_text_input":
        return {"rich_text_value": None if value is None else _rich_text(str(value))}
    raise InputError(f"the stand-in does not know how a {kind!r} element reports its value")


def initial_fields(element: Block) -> dict[str, Any]:
    """The value an untouched element reports: its initial value, or empty."""
    kind = element.get("type", "")
    if kind in ONE_OPTION:
        return {"selected_option": element.get("initial_option")}
    if kind in MANY_OPTIONS:
        return {"selected_options": element.get("initial_options", [])}
    if kind in ONE_ID:
        return {f"selected_{ONE_ID[kind]}": element.get(f"initial_{ONE_ID[kind]}")}
    if kind in MANY_IDS:
        return {f"selected_{MANY_IDS[kind]}": element.get(f"initial_{MANY_IDS[kind]}", [])}
    if kind in DATES:
        return {f"selected_{DATES[kind]}": element.get(f"initial_{DATES[kind]}")}
    if kind == "rich_text_input":
        return {"rich_text_value": element.get("initial_value")}
    return {"value": element.get("initial_value")}


def state_values(
    blocks: list[Block], values: Mapping[str, Any], *, require: bool = True
) -> dict[str, dict[str, State]]:
    """`view.state.values` with `values` (keyed by action_id or block_id) filled in."""
    unused = set(values)
    state: dict[str, dict[str, State]] = {}
    missing: list[str] = []
    for block, element in stateful_elements(blocks):
        action_id, block_id = element["action_id"], block.get("block_id", "")
        key = action_id if action_id in values else block_id
        if key in values:
            unused.discard(key)
            fields = value_fields(element, values[key])
        else:
            fields = initial_fields(element)
        state.setdefault(block_id, {})[action_id] = {"type": element.get("type"), **fields}
        if block.get("type") == "input" and not block.get("optional") and _empty(fields):
            missing.append(action_id)
    if unused:
        raise InputError(f"no input with action_id or block_id {sorted(unused)} in this view")
    if require and missing:
        raise InputError(f"required inputs left empty, Slack would not submit: {missing}")
    return state


def _empty(fields: dict[str, Any]) -> bool:
    return all(v in (None, "", []) for v in fields.values())


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _option(element: Block, wanted: Any) -> dict[str, Any]:
    """The element's option whose value (or visible text) is `wanted`."""
    if element.get("type", "").endswith("external_select") and "options" not in element:
        raise InputError(
            f"{element.get('action_id')!r} shows only what the bot suggests: ask it first "
            "(SlackDriver.suggest)"
        )
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    for option in options:
        if wanted in (option.get("value"), (option.get("text") or {}).get("text")):
            return dict(option)
    offered = [o.get("value") for o in options]
    raise InputError(f"{element.get('action_id')!r} offers {offered}, not {wanted!r}")


def _date_value(kind: str, value: Any) -> Any:
    if value is None or isinstance(value, str | int):
        return value
    if kind == "datetimepicker" and isinstance(value, dt.datetime):
        return int(value.timestamp())
    if kind == "timepicker" and isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if kind == "datepicker" and isinstance(value, dt.date):
        return value.isoformat()
    raise InputError(f"can't give {value!r} to a {kind}")


def _rich_text(text: str) -> dict[str, Any]:
    section = {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
    return {"type": "rich_text", "elements": [section]}

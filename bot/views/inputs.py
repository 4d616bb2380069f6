"""Form inputs, and reading them back from a submission's `view.state.values`.

Every input has block_id == action_id (the field's name in bot/ids.py). Readers tolerate
missing blocks, empty values and keys they do not know; they raise ValidationFailed only
for a value that cannot be read at all (an option that was never offered, a non-number date).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from slack_sdk.models.blocks import (
    DateTimePickerElement,
    ExternalDataMultiSelectElement,
    InputBlock,
    InputInteractiveElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    StaticMultiSelectElement,
    StaticSelectElement,
    UrlInputElement,
    UserSelectElement,
)

from bot import text
from workflows.errors import ValidationFailed

#: Slack refuses a plain_text_input whose max_length exceeds this (slack_sdk does not check).
TEXT_INPUT_MAX = 3000
#: Options in one static select.
MAX_OPTIONS = 100
LABEL_LIMIT = 2000

E = TypeVar("E", bound=StrEnum)
Values = Mapping[str, Any]


# -- building -----------------------------------------------------------------------------


def option(value: str, label: str, description: str = "") -> Option:
    return Option(
        value=value,
        text=PlainTextObject(text=text.plain_label(label, text.OPTION_LIMIT)),
        description=(
            PlainTextObject(text=text.plain_label(description, text.OPTION_LIMIT))
            if description
            else None
        ),
    )


def _input(
    block_id: str,
    label: str,
    element: InputInteractiveElement,
    *,
    optional: bool = False,
    hint: str = "",
    dispatch_action: bool | None = None,
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=PlainTextObject(text=text.plain_label(label, LABEL_LIMIT)),
        element=element,
        optional=optional,
        hint=PlainTextObject(text=text.truncate(hint, LABEL_LIMIT)) if hint else None,
        dispatch_action=dispatch_action,
    )


def text_input(
    block_id: str,
    label: str,
    *,
    limit: int,
    multiline: bool = False,
    optional: bool = False,
    initial: str = "",
    hint: str = "",
    placeholder: str = "",
) -> InputBlock:
    """A plain-text input whose max_length is the domain's limit; the hint says it."""
    limit = min(limit, TEXT_INPUT_MAX)
    said = f"Up to {limit:,} characters."
    element = PlainTextInputElement(
        action_id=block_id,
        multiline=multiline,
        max_length=limit,
        initial_value=text.truncate(initial, limit) if initial else None,
        placeholder=PlainTextObject(text=text.plain_label(placeholder, 150))
        if placeholder
        else None,
    )
    return _input(
        block_id, label, element, optional=optional, hint=f"{hint} {said}" if hint else said
    )


def select(
    block_id: str,
    label: str,
    options: Sequence[Option],
    *,
    initial: str | None = None,
    optional: bool = False,
    hint: str = "",
    dispatch_action: bool | None = None,
) -> InputBlock:
    options = list(options)[:MAX_OPTIONS]
    chosen = next((o for o in options if o.value == initial), None)
    element = StaticSelectElement(
        action_id=block_id,
        options=options,
        initial_option=chosen,
        placeholder=PlainTextObject(text="Choose…"),
    )
    return _input(
        block_id, label, element, optional=optional, hint=hint, dispatch_action=dispatch_action
    )


def multi_select(
    block_id: str, label: str, options: Sequence[Option], *, hint: str = ""
) -> InputBlock:
    element = StaticMultiSelectElement(
        action_id=block_id,
        options=list(options)[:MAX_OPTIONS],
        placeholder=PlainTextObject(text="Choose…"),
    )
    return _input(block_id, label, element, hint=hint)


def searched_multi_select(
    block_id: str, label: str, *, hint: str = "", placeholder: str = "Search…"
) -> InputBlock:
    """A multi-select whose options the bot suggests as the person types (Slack sends a
    block_suggestion for `block_id` to the options URL); with nothing typed yet, the latest."""
    element = ExternalDataMultiSelectElement(
        action_id=block_id,
        placeholder=PlainTextObject(text=placeholder),
        min_query_length=0,
    )
    return _input(block_id, label, element, hint=hint)


def radio(
    block_id: str,
    label: str,
    options: Sequence[Option],
    *,
    initial: str | None = None,
    hint: str = "",
) -> InputBlock:
    chosen = next((o for o in options if o.value == initial), None)
    element = RadioButtonsElement(action_id=block_id, options=list(options), initial_option=chosen)
    return _input(block_id, label, element, hint=hint)


def yes_no(block_id: str, label: str, *, initial: bool | None = None) -> InputBlock:
    options = [option("yes", "Yes"), option("no", "No")]
    return radio(block_id, label, options, initial=None if initial is None else _yes_no(initial))


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def date_time(
    block_id: str, label: str, *, initial: datetime | None = None, optional: bool = False
) -> InputBlock:
    element = DateTimePickerElement(
        action_id=block_id,
        initial_date_time=int(initial.timestamp()) if initial else None,
    )
    return _input(block_id, label, element, optional=optional, hint="In your own time zone.")


def url_input(block_id: str, label: str, *, limit: int, initial: str = "") -> InputBlock:
    # url_text_input takes no max_length; the hint states the limit the domain checks.
    element = UrlInputElement(
        action_id=block_id,
        initial_value=initial or None,
        placeholder=PlainTextObject(text="https://…"),
    )
    return _input(
        block_id, label, element, optional=True, hint=f"A web address, up to {limit} characters."
    )


def user_select(block_id: str, label: str, *, initial: str = "", hint: str = "") -> InputBlock:
    element = UserSelectElement(action_id=block_id, initial_user=initial or None)
    return _input(block_id, label, element, optional=True, hint=hint)


# -- reading ------------------------------------------------------------------------------


def state_of(values: Values, block_id: str) -> Mapping[str, Any]:
    """What Slack sent for one input: values[block_id][action_id], or {} if it is not there."""
    block = values.get(block_id) if isinstance(values, Mapping) else None
    if not isinstance(block, Mapping):
        return {}
    state = block.get(block_id)
    if state is None and len(block) == 1:
        state = next(iter(block.values()))
    return state if isinstance(state, Mapping) else {}


def read_text(values: Values, block_id: str) -> str:
    value = state_of(values, block_id).get("value")
    return value if isinstance(value, str) else ""


def read_option(values: Values, block_id: str) -> str | None:
    selected = state_of(values, block_id).get("selected_option")
    if not isinstance(selected, Mapping):
        return None
    value = selected.get("value")
    return value if isinstance(value, str) else None


def read_choice(values: Values, block_id: str, enum: type[E], field: str) -> E | None:
    """The enum member picked, None if nothing was picked, ValidationFailed if not ours."""
    value = read_option(values, block_id)
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        raise ValidationFailed(field, f"{value!r} is not one of the choices offered.") from None


def read_yes_no(values: Values, block_id: str) -> bool | None:
    value = read_option(values, block_id)
    if value is None:
        return None
    if value not in ("yes", "no"):
        raise ValidationFailed(block_id, "choose yes or no.")
    return value == "yes"


def read_user(values: Values, block_id: str) -> str:
    user = state_of(values, block_id).get("selected_user")
    return user if isinstance(user, str) else ""


def read_date_time(values: Values, block_id: str, field: str) -> datetime | None:
    """A datetimepicker's epoch seconds as an aware UTC datetime."""
    raw = state_of(values, block_id).get("selected_date_time")
    if raw is None or raw == "":
        return None
    try:
        seconds = int(raw)
        return datetime.fromtimestamp(seconds, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise ValidationFailed(field, "that is not a date and time I can read.") from None

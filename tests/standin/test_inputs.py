"""Modal input becomes `view.state.values` in the shape Slack uses for each element type."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from standin.inputs import InputError, state_values

OPTIONS = [
    {"text": {"type": "plain_text", "text": label}, "value": label.lower()}
    for label in ("Low", "Medium", "High")
]


def form(element: dict[str, Any], optional: bool = False) -> list[dict[str, Any]]:
    return [
        {
            "type": "input",
            "block_id": "b",
            "optional": optional,
            "label": {"type": "plain_text", "text": "Field"},
            "element": {"action_id": "a", **element},
        }
    ]


@pytest.mark.parametrize(
    ("element", "given", "expected"),
    [
        ({"type": "plain_text_input"}, "hello", {"value": "hello"}),
        ({"type": "number_input", "is_decimal_allowed": False}, 3, {"value": "3"}),
        ({"type": "static_select", "options": OPTIONS}, "high", {"selected_option": OPTIONS[2]}),
        ({"type": "static_select", "options": OPTIONS}, "Medium", {"selected_option": OPTIONS[1]}),
        ({"type": "radio_buttons", "options": OPTIONS}, "low", {"selected_option": OPTIONS[0]}),
        (
            {"type": "multi_static_select", "options": OPTIONS},
            ["low", "high"],
            {"selected_options": [OPTIONS[0], OPTIONS[2]]},
        ),
        (
            {"type": "checkboxes", "options": OPTIONS},
            ["medium"],
            {"selected_options": [OPTIONS[1]]},
        ),
        ({"type": "users_select"}, "U0ALICE", {"selected_user": "U0ALICE"}),
        ({"type": "multi_users_select"}, ["U1", "U2"], {"selected_users": ["U1", "U2"]}),
        ({"type": "conversations_select"}, "C1", {"selected_conversation": "C1"}),
        ({"type": "channels_select"}, "C1", {"selected_channel": "C1"}),
        ({"type": "datepicker"}, dt.date(2024, 5, 1), {"selected_date": "2024-05-01"}),
        ({"type": "timepicker"}, dt.time(9, 30), {"selected_time": "09:30"}),
        (
            {"type": "datetimepicker"},
            dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC),
            {"selected_date_time": 1714555800},
        ),
        ({"type": "datetimepicker"}, 1714555800, {"selected_date_time": 1714555800}),
    ],
)
def test_each_element_type_reports_its_value_under_its_own_key(
    element: dict[str, Any], given: Any, expected: dict[str, Any]
) -> None:
    values = state_values(form(element), {"a": given})

    assert values == {"b": {"a": {"type": element["type"], **expected}}}


def test_inputs_can_be_named_by_block_id() -> None:
    values = state_values(form({"type": "plain_text_input"}), {"b": "by block"})

    assert values["b"]["a"]["value"] == "by block"


def test_untouched_inputs_report_their_initial_value_or_nothing() -> None:
    blocks = form({"type": "static_select", "options": OPTIONS, "initial_option": OPTIONS[1]})
    blocks += form({"type": "plain_text_input", "action_id": "note"}, optional=True)
    blocks[1]["block_id"] = "n"

    values = state_values(blocks, {})

    assert values["b"]["a"]["selected_option"] == OPTIONS[1]
    assert values["n"]["note"] == {"type": "plain_text_input", "value": None}


def test_an_empty_required_input_cannot_be_submitted() -> None:
    with pytest.raises(InputError, match="required"):
        state_values(form({"type": "plain_text_input"}), {})


def test_an_unknown_input_name_is_a_mistake_in_the_test() -> None:
    with pytest.raises(InputError, match="titel"):
        state_values(form({"type": "plain_text_input"}), {"a": "x", "titel": "y"})


def test_only_offered_options_can_be_chosen() -> None:
    with pytest.raises(InputError, match="offers"):
        state_values(form({"type": "static_select", "options": OPTIONS}), {"a": "extreme"})

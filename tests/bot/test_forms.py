"""The modals and their parsers: valid views, the domain's limits on every input, and what
a person enters read back exactly as the domain holds it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot import ids
from bot.views import forms
from tests.bot.blockkit import parse_view, slack_state, walk
from tests.bot.changes import (
    IVAN,
    a_desk,
    a_policy,
    emergency_details,
    normal_details,
    standard_details,
)
from workflows.errors import PolicyViolation, ValidationFailed
from workflows.model import (
    ChangeDetails,
    Classification,
    Level,
    Links,
    Outcome,
    Rollback,
    Stage,
    seen_digest,
)
from workflows.validation import LIMITS, requires, validate_details

POLICY = a_policy()
FULL_NORMAL = normal_details(
    services=("api", "billing-worker"),
    risk=Level.MEDIUM,
    impact=Level.HIGH,
    rollback=Rollback(plan="Revert.", not_reversible_reason=""),
    links=Links(
        pull_request="https://example.com/pr/1",
        ticket="https://example.com/t/2",
        incident="https://example.com/i/3",
    ),
    implementer=IVAN.user_id,
)
DETAILS = {
    Classification.NORMAL: FULL_NORMAL,
    Classification.STANDARD: standard_details(),
    Classification.EMERGENCY: emergency_details(
        description="Block it", rollback=Rollback(not_reversible_reason="Nothing to undo.")
    ),
}


def inputs_of(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}


# -- the request form ----------------------------------------------------------------------


@pytest.mark.parametrize("classification", list(Classification))
def test_the_request_form_is_a_valid_modal(classification: Classification) -> None:
    view = forms.request_modal(POLICY, classification=classification)
    parsed = parse_view(view)
    assert parsed.callback_id == ids.REQUEST_MODAL
    assert view["submit"]["text"] and view["close"]["text"]


@pytest.mark.parametrize("classification", list(Classification))
def test_every_input_uses_its_id_as_block_and_action_id(classification: Classification) -> None:
    view = forms.request_modal(POLICY, classification=classification)
    for block_id, block in inputs_of(view).items():
        assert block["element"]["action_id"] == block_id
        assert block_id in vars(ids).values()


@pytest.mark.parametrize("classification", list(Classification))
def test_every_text_input_carries_the_domains_limit(classification: Classification) -> None:
    view = forms.request_modal(POLICY, classification=classification)
    elements = [n for n, _ in walk(view["blocks"]) if n.get("type") == "plain_text_input"]
    assert elements
    for element in elements:
        assert 0 < element["max_length"] <= 3000
    blocks = inputs_of(view)
    assert blocks[ids.TITLE]["element"]["max_length"] == LIMITS["title"]
    assert blocks[ids.DESCRIPTION]["element"]["max_length"] == LIMITS["description"]
    assert str(LIMITS["title"]) in blocks[ids.TITLE]["hint"]["text"]


def test_the_form_follows_the_classification() -> None:
    standard = inputs_of(forms.request_modal(POLICY, classification=Classification.STANDARD))
    normal = inputs_of(forms.request_modal(POLICY, classification=Classification.NORMAL))
    emergency = inputs_of(forms.request_modal(POLICY, classification=Classification.EMERGENCY))
    assert ids.PROCEDURE in standard and ids.PROCEDURE not in normal
    assert ids.RISK not in standard and ids.RISK in normal and ids.RISK in emergency
    assert ids.WINDOW_START in standard and ids.WINDOW_END in normal
    assert ids.WINDOW_START not in emergency
    assert not normal[ids.DESCRIPTION]["optional"] and emergency[ids.DESCRIPTION]["optional"]
    assert emergency[ids.SERVICES]["optional"] and not normal[ids.SERVICES]["optional"]
    for optional in (ids.ROLLBACK_PLAN, ids.PULL_REQUEST, ids.TICKET, ids.IMPLEMENTER):
        assert normal[optional]["optional"]


def test_picking_a_classification_redraws_the_form() -> None:
    view = forms.request_modal(POLICY)
    block = inputs_of(view)[ids.CLASSIFICATION]
    assert block["dispatch_action"] is True
    assert block["element"]["action_id"] == ids.CLASSIFICATION_PICKED
    values = [o["value"] for o in block["element"]["options"]]
    assert values == ["standard", "normal", "emergency"]
    assert all(o["description"]["text"] for o in block["element"]["options"])
    action = {"action_id": ids.CLASSIFICATION_PICKED, "selected_option": {"value": "emergency"}}
    assert forms.classification_of(action) is Classification.EMERGENCY
    assert forms.classification_of({"selected_option": {"value": "bogus"}}) is None
    assert forms.classification_of({}) is None


def test_the_selects_offer_the_policys_scope_and_catalog() -> None:
    standard = inputs_of(forms.request_modal(POLICY, classification=Classification.STANDARD))
    normal = inputs_of(forms.request_modal(POLICY))
    procedures = standard[ids.PROCEDURE]["element"]["options"]
    assert [o["value"] for o in procedures] == [p.id for p in POLICY.catalog]
    assert procedures[0]["text"]["text"] == "Rolling restart of a stateless service (v3)"
    scopes = normal[ids.SCOPE]["element"]["options"]
    assert [o["value"] for o in scopes] == [s.id for s in POLICY.scope]


@pytest.mark.parametrize("classification", list(Classification))
def test_a_prefilled_form_reads_back_as_the_same_request(classification: Classification) -> None:
    details = DETAILS[classification]
    view = forms.request_modal(
        POLICY,
        callback_id=ids.EDIT_MODAL,
        classification=classification,
        details=details,
        private_metadata=ids.Target(7, Stage.REVIEW).encode(),
    )
    parse_view(view)
    assert view["callback_id"] == ids.EDIT_MODAL
    assert forms.parse_request(slack_state(view), POLICY) == details


def test_what_a_person_enters_is_read_as_the_domain_holds_it() -> None:
    view = forms.request_modal(POLICY)
    start, end = 1795510800, 1795514400
    values = slack_state(
        view,
        title="Raise the pool",
        scope="database",
        description="Because.",
        services="api, web\nworker,, api ,",
        risk="high",
        window_start=start,
        window_end=end,
        ticket="https://example.com/t/1",
        implementer="UIVAN",
    )
    details = forms.parse_request(values, POLICY)
    assert details.services == ("api", "web", "worker")
    assert details.risk is Level.HIGH and details.impact is Level.LOW
    assert details.window is not None
    assert details.window.start.timestamp() == start
    assert (
        details.window.start.tzinfo is not None
        and details.window.start.utcoffset().total_seconds() == 0
    )  # type: ignore[union-attr]
    assert details.scope == "database"
    assert details.links == Links(ticket="https://example.com/t/1")
    assert details.implementer == "UIVAN"
    assert details.rollback == Rollback()


def test_a_standard_change_takes_its_scope_from_its_procedure() -> None:
    view = forms.request_modal(POLICY, classification=Classification.STANDARD)
    values = slack_state(view, title="Restart", procedure="restart-service", services="api")
    assert forms.parse_request(values, POLICY).scope == "code"


def test_a_standard_change_outside_the_catalog_is_refused_for_its_procedure() -> None:
    view = forms.request_modal(POLICY, classification=Classification.STANDARD)
    values = slack_state(view, title="Restart", procedure="restart-service", services="api")
    values[ids.PROCEDURE][ids.PROCEDURE]["selected_option"] = {"value": "drop-database"}
    with pytest.raises(PolicyViolation) as raised:
        forms.parse_request(values, POLICY)
    assert "drop-database is not a pre-approved procedure" in str(raised.value)
    assert list(forms.errors_for(raised.value, view=view)) == [ids.PROCEDURE]
    assert forms.parse_request_leniently(values, POLICY).scope == ""


def test_parsing_tolerates_missing_blocks_nulls_and_unknown_keys() -> None:
    values = {
        ids.TITLE: {ids.TITLE: {"type": "plain_text_input", "value": "Only a title"}},
        ids.CLASSIFICATION: {
            ids.CLASSIFICATION: {
                "type": "static_select",
                "selected_option": {"value": "emergency", "text": {"type": "plain_text"}},
            }
        },
        ids.DESCRIPTION: {ids.DESCRIPTION: {"type": "plain_text_input", "value": None}},
        ids.IMPLEMENTER: {ids.IMPLEMENTER: {"type": "users_select", "selected_user": None}},
        "some_block_we_never_drew": {"x": {"type": "checkboxes", "selected_options": []}},
        ids.SCOPE: {"renamed_action": {"type": "static_select", "selected_option": None}},
    }
    details = forms.parse_request(values, POLICY)
    assert details == ChangeDetails(
        title="Only a title", classification=Classification.EMERGENCY, scope=""
    )


def test_parsing_does_not_judge_the_request() -> None:
    form = forms.request_modal(POLICY, details=FULL_NORMAL)
    values = slack_state(form, title="", window_start=200, window_end=100)
    details = forms.parse_request(values, POLICY)
    assert details.title == "" and details.window is not None
    with pytest.raises(ValidationFailed) as raised:
        validate_details(details, POLICY, None)
    assert forms.errors_for(raised.value) == {
        ids.TITLE: "This field is required.",
        ids.WINDOW_END: "The window ends before it starts.",
    }


@pytest.mark.parametrize(
    ("typed", "field"),
    [
        ({ids.RISK: {ids.RISK: {"selected_option": {"value": "extreme"}}}}, "risk"),
        (
            {ids.CLASSIFICATION: {ids.CLASSIFICATION: {"selected_option": {"value": "x"}}}},
            "classification",
        ),
        ({ids.WINDOW_START: {ids.WINDOW_START: {"selected_date_time": "soon"}}}, "window_start"),
        ({ids.WINDOW_END: {ids.WINDOW_END: {"selected_date_time": 100}}}, "window_start"),
        ({ids.WINDOW_START: {ids.WINDOW_START: {"selected_date_time": 100}}}, "window"),
    ],
)
def test_unreadable_input_names_its_field(typed: dict[str, Any], field: str) -> None:
    values = {
        ids.CLASSIFICATION: {ids.CLASSIFICATION: {"selected_option": {"value": "normal"}}},
        **typed,
    }
    with pytest.raises(ValidationFailed) as raised:
        forms.parse_request(values, POLICY)
    assert field in dict(raised.value.problems)
    assert forms.parse_request_leniently(values, POLICY).title == ""


def test_every_bad_field_of_a_request_is_reported_at_once() -> None:
    form = forms.request_modal(POLICY, details=FULL_NORMAL.with_changes(rollback=Rollback()))
    values = slack_state(form, title="", description="", pull_request="not a link")

    with pytest.raises(ValidationFailed) as raised:
        validate_details(forms.parse_request(values, POLICY), POLICY, None)

    assert forms.errors_for(raised.value, view=form) == {
        ids.TITLE: "This field is required.",
        ids.DESCRIPTION: "This field is required.",
        ids.ROLLBACK_PLAN: "Give a rollback plan, or say why this change cannot be reversed.",
        ids.PULL_REQUEST: "Write a web address starting with https:// or http://.",
    }


def test_a_required_choice_missing_from_a_submission_is_refused_on_its_field() -> None:
    form = forms.request_modal(POLICY, details=FULL_NORMAL)
    values = slack_state(form)
    del values[ids.IMPACT]  # a client that leaves Impact out of what it sends

    with pytest.raises(ValidationFailed) as raised:
        forms.parse_request(values, POLICY)

    assert forms.errors_for(raised.value, view=form) == {
        ids.IMPACT: "Choose the impact: low, medium or high."
    }


def test_the_form_asks_for_what_each_classification_requires_and_no_more() -> None:
    for classification in Classification:
        form = forms.request_modal(POLICY, classification=classification)
        optional = {
            b["block_id"]: b.get("optional", False) for b in form["blocks"] if b["type"] == "input"
        }
        for field, block_id in (("description", ids.DESCRIPTION), ("services", ids.SERVICES)):
            assert optional[block_id] is not requires(classification, field), (
                classification,
                field,
            )


def test_a_form_without_a_classification_cannot_be_read() -> None:
    with pytest.raises(ValidationFailed):
        forms.parse_request({}, POLICY)
    assert forms.parse_request_leniently({}, POLICY).classification is Classification.NORMAL


# -- errors on the form --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "block_id"),
    [
        ("title", ids.TITLE),
        ("description", ids.DESCRIPTION),
        ("scope", ids.SCOPE),
        ("services", ids.SERVICES),
        ("rollback", ids.ROLLBACK_PLAN),
        ("window", ids.WINDOW_END),
        ("pull_request", ids.PULL_REQUEST),
        ("ticket", ids.TICKET),
        ("incident", ids.INCIDENT),
        ("procedure", ids.CLASSIFICATION),
        ("classification", ids.CLASSIFICATION),
    ],
)
def test_domain_fields_map_to_the_forms_inputs(field: str, block_id: str) -> None:
    assert forms.errors_for(ValidationFailed(field, "wrong.")) == {block_id: "Wrong."}


def test_a_policy_violation_is_shown_on_the_procedure_or_the_classification() -> None:
    error = PolicyViolation("restart-db is not a pre-approved procedure: choose Normal.")
    assert list(forms.errors_for(error)) == [ids.PROCEDURE]
    normal = forms.request_modal(POLICY)
    assert list(forms.errors_for(error, view=normal)) == [ids.CLASSIFICATION]


def test_errors_go_on_an_input_the_submitted_view_has() -> None:
    change = a_desk().request()
    review = forms.review_modal(change)
    assert list(forms.errors_for(ValidationFailed("risk", "no."), view=review)) == [ids.REVIEW_RISK]
    assert list(forms.errors_for(ValidationFailed("nonsense", "no."), view=review)) == [
        ids.ASSESSMENT
    ]


def test_every_error_the_request_can_raise_lands_on_a_block_of_its_form() -> None:
    bad = {
        Classification.NORMAL: [
            normal_details(description=""),
            normal_details(services=()),
            normal_details(rollback=Rollback()),
            normal_details(window=None),
            normal_details(links=Links(ticket="not a url")),
            normal_details(scope="nowhere"),
            normal_details(procedure_id="restart-service"),
        ],
        Classification.STANDARD: [standard_details(procedure_id="nope")],
    }
    for classification, requests in bad.items():
        view = forms.request_modal(POLICY, classification=classification)
        blocks = set(inputs_of(view))
        for details in requests:
            with pytest.raises((ValidationFailed, PolicyViolation)) as raised:
                validate_details(details, POLICY, None)
            assert set(forms.errors_for(raised.value)) <= blocks, raised.value
            assert set(forms.errors_for(raised.value, view=view)) <= blocks


# -- the small forms -------------------------------------------------------------------------


def test_the_review_form_starts_from_the_current_risk() -> None:
    desk = a_desk()
    change = desk.request(normal_details(risk=Level.MEDIUM))
    view = forms.review_modal(change)
    parse_view(view)
    assert view["callback_id"] == ids.REVIEW_MODAL
    assert ids.Target.decode(view["private_metadata"]) == ids.Target(
        change.number, Stage.REVIEW, seen_digest(change.details)
    )
    risk = inputs_of(view)[ids.REVIEW_RISK]["element"]
    assert risk["initial_option"]["value"] == "medium"
    values = slack_state(view, assessment="Fine.", review_risk="high")
    assert forms.parse_review(values) == ("Fine.", Level.HIGH)
    review = forms.parse_review(values)
    assert review.assessment == "Fine." and review.risk is Level.HIGH


def test_evidence_reject_and_cancel_forms_read_their_text() -> None:
    desk = a_desk()
    change = desk.request()
    for build, parse, callback_id, block_id in (
        (forms.evidence_modal, forms.parse_evidence, ids.EVIDENCE_MODAL, ids.EVIDENCE),
        (forms.reject_modal, forms.parse_reason, ids.REJECT_MODAL, ids.REASON),
        (forms.cancel_modal, forms.parse_reason, ids.CANCEL_MODAL, ids.REASON),
    ):
        view = build(change)
        parse_view(view)
        assert view["callback_id"] == callback_id
        assert len(view["title"]["text"]) <= 24
        assert parse(slack_state(view, **{block_id: "Because <!here> 🚀"})) == "Because <!here> 🚀"
        assert parse({}) == ""
    assert (
        inputs_of(forms.reject_modal(change))[ids.REASON]["element"]["max_length"]
        == (LIMITS["reason"])
    )


def test_the_outcome_form_offers_every_outcome() -> None:
    desk = a_desk()
    change = desk.deploying()
    view = forms.outcome_modal(change)
    parse_view(view)
    options = inputs_of(view)[ids.OUTCOME]["element"]["options"]
    assert [o["value"] for o in options] == [o.value for o in Outcome]
    values = slack_state(view, outcome="rolled_back", notes="Reverted.")
    assert forms.parse_outcome(values) == (Outcome.ROLLED_BACK, "Reverted.")
    with pytest.raises(ValidationFailed):
        forms.parse_outcome({})


def test_the_post_change_review_form_asks_for_each_owed_document() -> None:
    desk = a_desk()
    change = desk.stored(desk.record_outcome(desk.deploying(emergency_details()), Outcome.FAILED))
    assert change.owed_documents == ("description", "rollback", "test_evidence")
    view = forms.post_change_review_modal(change)
    parse_view(view)
    blocks = inputs_of(view)
    for name in change.owed_documents:
        assert not blocks[ids.OWED_PREFIX + name]["optional"]
    assert blocks[ids.CONTRIBUTED_TO_INCIDENT]["label"]["text"] == (
        "Did an uncontrolled or poorly managed change contribute to an incident?"
    )
    assert blocks[ids.CLASSIFICATION_JUSTIFIED]["element"]["type"] == "radio_buttons"
    values = slack_state(
        view,
        what_was_done="Blocked it.",
        why_it_could_not_wait="Outage.",
        root_cause="A loop.",
        classification_justified="yes",
        follow_ups="Rate limits.",
        contributed_to_incident="no",
        owed_description="Desc.",
        owed_rollback="Unblock.",
        owed_test_evidence="Checked.",
    )
    review = forms.parse_post_change_review(values)
    assert (
        review.by == "" and review.classification_justified and not review.contributed_to_incident
    )
    assert review.documentation == {
        "description": "Desc.",
        "rollback": "Unblock.",
        "test_evidence": "Checked.",
    }
    closed = desk.submit_post_change_review(change, review=review)
    assert closed.stage is Stage.CLOSED


def test_a_post_change_review_without_its_yes_or_no_cannot_be_read() -> None:
    with pytest.raises(ValidationFailed) as raised:
        forms.parse_post_change_review({})
    assert forms.errors_for(raised.value) == {ids.CLASSIFICATION_JUSTIFIED: "Choose yes or no."}


def test_long_prefilled_text_never_exceeds_an_inputs_limit() -> None:
    details = FULL_NORMAL.with_changes(description="x" * 5000)
    view = forms.request_modal(POLICY, details=details)
    parse_view(view)
    element = inputs_of(view)[ids.DESCRIPTION]["element"]
    assert len(element["initial_value"]) <= element["max_length"]


def test_the_blank_form_sent_as_json_is_the_form_with_its_origin() -> None:
    policy = POLICY
    for meta in ('{"c": "C0CHANGES"}', '{"c": ""}', '"\\u202e odd \\" quote"'):
        sent = json.loads(forms.blank_request_json(policy, meta))
        assert sent == forms.request_modal(policy, private_metadata=meta)
        assert sent["private_metadata"] == meta

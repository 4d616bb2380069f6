"""Deployment reports over the API: PUTs counted once by their id, steps on the change like a
person's, and every bad report refused with a sentence, writing nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import Engine

from storage.obligations import open_obligations
from tests.integration.api import Served, served
from tests.integration.changes import POLICY
from workflows.chase import Owed
from workflows.model import Outcome, Stage
from workflows.tokens import Scope

PAYMENTS = {"service": "payments", "environment": "production"}


@pytest_asyncio.fixture
async def api(engine: Engine) -> AsyncIterator[Served]:
    async with served(engine) as app:
        yield app


async def put(api: Served, path: str, secret: str, **body: Any) -> tuple[int, dict[str, Any]]:
    response = await api.client.put(
        f"/api/v1/{path}", json=body, headers={"Authorization": f"Bearer {secret}"}
    )
    return response.status, await response.json()


async def test_a_gated_deployment_runs_its_change_through_deploy_and_verify(api: Served) -> None:
    change = api.approved()
    api.in_window()
    secret = api.token()
    assert (await api.ask(secret, change=change.ref, **PAYMENTS))[1]["status"] == "allowed"

    started = await put(
        api, f"changes/{change.ref}/deployments/run-7", secret, **PAYMENTS, triggered_by="octocat"
    )
    finished = await put(
        api, f"changes/{change.ref}/deployments/run-7/outcome", secret, outcome="successful"
    )

    assert started[0] == 201
    assert started[1]["deployment"]["gated"] is True
    assert started[1]["deployment"]["pipeline"] == "ci-prod"
    assert finished[0] == 200
    assert (finished[1]["stage"], finished[1]["outcome"]) == ("closed", "successful")
    stored = api.stored(change)
    assert stored.deployed_by == "pipeline:ci-prod" and stored.stage is Stage.CLOSED


async def test_a_report_sent_again_is_200_and_records_nothing_more(api: Served) -> None:
    change = api.approved()
    api.in_window()
    secret = api.token()
    path = f"changes/{change.ref}/deployments/run-7"
    await put(api, path, secret, **PAYMENTS)
    events = api.events()

    again = await put(api, path, secret, **PAYMENTS)

    assert again[0] == 200 and again[1]["recorded"] is False
    assert api.events() == events


async def test_a_failed_deployment_owes_the_post_change_review(api: Served) -> None:
    change = api.approved()
    api.in_window()
    secret = api.token()
    await put(api, f"changes/{change.ref}/deployments/run-7", secret, **PAYMENTS)

    status, body = await put(
        api,
        f"changes/{change.ref}/deployments/run-7/outcome",
        secret,
        outcome="rolled-back",
        notes="Error rate doubled; rolled back.",
    )

    assert status == 200
    assert (body["outcome"], body["review_owed"]) == (Outcome.ROLLED_BACK.value, True)
    assert api.stored(change).outcome_notes == "Error rate doubled; rolled back."
    with api.bot.services.read() as session:
        owed = open_obligations(session, Owed.POST_CHANGE_REVIEW)
    assert [o.number for o in owed] == [change.number]


@pytest.mark.parametrize(
    "named", ["with-issues", "successful-with-issues", "successful_with_issues", "With issues"]
)
async def test_an_outcome_with_issues_is_taken_as_pipelines_write_it(
    api: Served, named: str
) -> None:
    change = api.approved()
    api.in_window()
    secret = api.token()
    await put(api, f"changes/{change.ref}/deployments/run-7", secret, **PAYMENTS)

    status, body = await put(
        api, f"changes/{change.ref}/deployments/run-7/outcome", secret, outcome=named
    )

    assert status == 200, body
    assert body["outcome"] == Outcome.SUCCESSFUL_WITH_ISSUES.value
    assert api.stored(change).outcome is Outcome.SUCCESSFUL_WITH_ISSUES


async def test_an_ungated_deployment_is_recorded_and_said_so(api: Served) -> None:
    change = api.awaiting_approval()

    status, body = await put(
        api, f"changes/{change.ref}/deployments/run-7", api.token(), **PAYMENTS
    )

    assert status == 201
    assert body["deployment"]["gated"] is False
    assert body["stage"] == "approve"
    assert body["policy_owner_told"] is False  # the default policy names no owner


async def test_an_ungated_deployment_is_told_to_the_policy_owner_the_policy_names(
    engine: Engine,
) -> None:
    policy = POLICY.model_copy(
        update={"policy": POLICY.policy.model_copy(update={"owner": "U0OWNER"})}
    )
    async with served(engine, policy) as api:
        change = api.awaiting_approval()
        status, body = await put(
            api, f"changes/{change.ref}/deployments/run-7", api.token(), **PAYMENTS
        )

    assert status == 201
    assert (body["deployment"]["gated"], body["policy_owner_told"]) == (False, True)


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("changes/CHG-9999/deployments/run-1", PAYMENTS, 404, None),
        ("changes/nonsense/deployments/run-1", PAYMENTS, 400, "ref"),
        ("changes/{ref}/deployments/run%201", PAYMENTS, 400, "id"),
        ("changes/{ref}/deployments/run-1", {"service": "payments"}, 400, "environment"),
        (
            "changes/{ref}/deployments/run-1",
            {**PAYMENTS, "environment": "staging"},
            400,
            "environment",
        ),
        ("changes/{ref}/deployments/run-1/outcome", {"outcome": "great"}, 400, "outcome"),
        ("changes/{ref}/deployments/never-started/outcome", {"outcome": "failed"}, 404, None),
    ],
)
async def test_a_bad_report_is_refused_and_records_nothing(
    api: Served, path: str, body: dict[str, str], status: int, field: str | None
) -> None:
    change = api.approved()
    secret = api.token()
    events = api.events()

    answer = await put(api, path.format(ref=change.ref), secret, **body)

    assert answer[0] == status, answer
    assert answer[1].get("field") == field
    assert answer[1]["message"]
    assert api.events() == events


async def test_an_id_reused_for_another_service_is_409(api: Served) -> None:
    change = api.approved(services=("payments", "ledger"))
    api.in_window()
    secret = api.token()
    await put(api, f"changes/{change.ref}/deployments/run-7", secret, **PAYMENTS)

    status, body = await put(
        api,
        f"changes/{change.ref}/deployments/run-7",
        secret,
        service="ledger",
        environment="production",
    )

    assert (status, body["error"]) == (409, "conflict")
    assert "Give each deployment its own id" in body["message"]


async def test_a_token_without_the_deployments_scope_may_not_report(api: Served) -> None:
    change = api.approved()
    secret = api.token("asker", Scope.GATE)
    events = api.events()

    status, body = await put(api, f"changes/{change.ref}/deployments/run-7", secret, **PAYMENTS)

    assert status == 403
    assert "needs the 'deployments' scope" in body["message"]
    assert api.events() == events

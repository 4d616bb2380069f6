"""changebot as a GitHub deployment protection rule: the webhook stores what GitHub holds and
answers at once; the worker ties it to its change, decides with the gate's rules, reports what
it waits for, and answers GitHub exactly once, through GitHub's errors, timeouts and several
replicas. Real HTTP both ways: the bot's webhook, and GitHub's API stand-in."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from bot.github.worker import RECHECK, GithubGate
from bot.settings import Settings
from standin.github import (
    APP_ID,
    WEBHOOK_SECRET,
    GithubStandIn,
    deliver,
    new_private_key,
    protection_rule_request,
)
from storage.github import ANSWERED, AWAITING, DECIDED, GithubDeploymentRow
from storage.uow import SqlUnitOfWork
from tests.e2e.harness import eventually
from tests.integration.api import Served, served
from tests.integration.changes import APPROVER, PEER, POLICY, REQUESTER, request
from workflows import process
from workflows.model import Change, Links
from workflows.policy import Gate, GithubTarget

REPO = "acme/payments"
INSTALLATION = 119022551  # protection_rule_request's
POLICY_WITH_GITHUB = POLICY.model_copy(
    update={
        "gate": Gate(
            environments=("production",),
            github=(
                GithubTarget(repository=REPO, environment="production", services=("payments",)),
            ),
        )
    }
)


@pytest.fixture(scope="module")
def private_key() -> bytes:
    return new_private_key()


@dataclass
class World:
    """The bot, serving its webhook, and GitHub's stand-in."""

    app: Served
    github: GithubStandIn
    run: int = 1000

    @property
    def worker(self) -> GithubGate:
        assert self.app.bot.github is not None
        return self.app.bot.github.worker

    async def deploy(self, *, ref: str = "main", **kw: Any) -> tuple[int, int]:
        """A job deploys REPO to production: GitHub holds it and asks the bot."""
        self.run += 1
        self.github.hold(REPO, self.run, "production")
        payload = protection_rule_request(REPO, "production", self.run, ref=ref, **kw)
        status, _ = await deliver(self.webhook_url, payload)
        return status, self.run

    @property
    def webhook_url(self) -> str:
        return str(self.app.client.make_url("/github/webhook"))

    def held(self, run: int) -> Any:
        return self.github.held[(REPO, run, "production")]

    def row(self, run: int) -> GithubDeploymentRow:
        with Session(self.app.engine) as session:
            return session.exec(
                select(GithubDeploymentRow).where(GithubDeploymentRow.run_id == run)
            ).one()

    def rows(self) -> int:
        with Session(self.app.engine) as session:
            return int(session.exec(select(func.count()).select_from(GithubDeploymentRow)).one())

    async def waiting_on_approval(self) -> tuple[Change, int]:
        """A change awaiting approval, in its window, and a deployment under it: the change
        and the run GitHub holds."""
        change = self.app.awaiting_approval()
        self.app.in_window()
        _, run = await self.deploy(ref=change.ref)
        return change, run

    def another_replica(self) -> GithubGate:
        """A second replica's worker, on the same database and GitHub App."""
        return GithubGate(
            self.app.engine,
            self.app.clock,
            POLICY_WITH_GITHUB,
            self.worker.app,
            owner="replica-2",
            lease=timedelta(seconds=60),
        )

    def approve(self, number: int) -> None:
        process.approve(SqlUnitOfWork(self.app.engine), self.app.clock, POLICY, number, APPROVER)

    def review(self, change: Change) -> None:
        """The change's peer review, done."""
        uow = SqlUnitOfWork(self.app.engine)
        process.record_review(
            uow, self.app.clock, POLICY, change.number, PEER, assessment="Fine.", risk=change.risk
        )

    async def after(self, seconds: float) -> int:
        """Let `seconds` pass on the bot's clock, then sweep."""
        self.app.clock.advance(seconds=seconds)
        return await self.worker.sweep()


@pytest_asyncio.fixture
async def world(engine: Engine, tmp_path: Path, private_key: bytes) -> AsyncIterator[World]:
    key = tmp_path / "app.pem"
    key.write_bytes(private_key)
    async with GithubStandIn(private_key) as github:
        settings = Settings(
            bot_token="xoxb-test",
            signing_secret="0" * 32,
            slack_api_url="http://127.0.0.1:9/",
            github_app_id=APP_ID,
            github_private_key_path=str(key),
            github_webhook_secret=WEBHOOK_SECRET,
            github_api_url=github.url,
        )
        async with served(engine, POLICY_WITH_GITHUB, settings) as app:
            yield World(app, github)


# -- deciding and answering ------------------------------------------------------------------


async def test_a_deployment_of_an_approved_change_is_approved_with_the_reasons(
    world: World,
) -> None:
    change = world.app.approved()
    world.app.in_window()

    status, run = await world.deploy(ref=f"release/{change.ref}")
    await world.worker.sweep()

    assert status == 202
    held = world.held(run)
    assert held.state == "approved"
    assert held.comment.startswith(f"changebot allows this deployment under {change.ref}.")
    assert f"{change.ref} is authorised, approved by UAPPROVER." in held.comment
    checks = world.app.stored(change).gate_checks
    assert [(c.pipeline, c.status.value, c.repository) for c in checks] == [
        ("github", "allowed", REPO)
    ]
    assert checks[0].run == f"{world.github.url}/{REPO}/actions/runs/{run}"
    assert world.row(run).status == ANSWERED


async def test_a_waiting_deployment_is_told_why_and_approved_once_its_change_is(
    world: World,
) -> None:
    change, run = await world.waiting_on_approval()

    await world.worker.sweep()
    assert world.held(run).state == ""
    (report,) = world.held(run).reports
    assert report.startswith(f"changebot holds this deployment until {change.ref} allows it")
    assert world.row(run).status == AWAITING
    assert await world.worker.sweep() == 0  # nothing new: nothing to do

    world.approve(change.number)
    await world.worker.sweep()
    await world.worker.sweep()

    assert world.held(run).state == "approved"
    assert len(world.github.answers()) == 1
    assert len(world.held(run).reports) == 1


async def test_a_waiting_deployment_is_told_again_only_when_what_it_waits_for_changes(
    world: World,
) -> None:
    change = request(world.app.engine, world.app.clock)  # in Review
    _, run = await world.deploy(ref=change.ref)
    await world.worker.sweep()
    assert "it waits for its peer review" in world.held(run).reports[-1]

    world.review(change)
    await world.worker.sweep()
    assert len(world.held(run).reports) == 2
    assert "it waits for test evidence from staging" in world.held(run).reports[-1]

    # Looked at again, an hour on and when a pipeline's question moves its change, it waits
    # for the same: nothing is sent.
    assert await world.after(RECHECK.total_seconds()) == 1
    asked, _ = await world.app.ask(
        world.app.token(), change=change.ref, service="payments", environment="production"
    )
    assert asked == 200
    assert await world.worker.sweep() == 1
    assert len(world.held(run).reports) == 2

    process.add_test_evidence(
        SqlUnitOfWork(world.app.engine),
        world.app.clock,
        POLICY,
        change.number,
        PEER,
        evidence="Green in staging.",
    )
    await world.worker.sweep()
    assert "it waits for approval: it has 0 of" in world.held(run).reports[-1]

    world.app.in_window()
    world.approve(change.number)
    await world.worker.sweep()
    assert world.held(run).state == "approved"
    assert len(world.github.answers()) == 1
    assert len(world.held(run).reports) == 3
    assert world.row(run).reported_comment == world.held(run).reports[-1]


async def test_a_new_status_report_github_fails_to_take_is_retried_with_backoff(
    world: World,
) -> None:
    change = request(world.app.engine, world.app.clock)
    _, run = await world.deploy(ref=change.ref)
    await world.worker.sweep()
    world.github.failures = [502]

    world.review(change)
    await world.worker.sweep()
    assert len(world.held(run).reports) == 1
    assert world.row(run).attempts == 1
    assert await world.after(1) == 0  # backing off: not yet
    await world.after(2)

    assert len(world.held(run).reports) == 2
    assert "it waits for test evidence from staging" in world.held(run).reports[-1]
    assert world.row(run).attempts == 0
    assert await world.after(60) == 0  # taken: nothing more to send


async def test_a_change_cancelled_while_a_deployment_waits_rejects_it(world: World) -> None:
    change = world.app.awaiting_approval()
    _, run = await world.deploy(ref=change.ref)
    await world.worker.sweep()

    process.cancel(
        SqlUnitOfWork(world.app.engine),
        world.app.clock,
        POLICY,
        change.number,
        REQUESTER,
        reason="Superseded.",
    )
    await world.worker.sweep()

    assert world.held(run).state == "rejected"
    assert "was cancelled: “Superseded.”" in world.held(run).comment


async def test_an_approved_change_waits_for_its_window_then_is_approved(world: World) -> None:
    change = world.app.approved()
    _, run = await world.deploy(ref=change.ref)
    await world.worker.sweep()
    assert world.row(run).status == AWAITING

    world.app.in_window()  # the window opened: due by the clock alone
    await world.worker.sweep()

    assert world.held(run).state == "approved"


async def test_a_deployment_tied_by_the_pull_request_in_the_delivery(world: World) -> None:
    change = world.app.approved(links=Links(pull_request=f"https://github.com/{REPO}/pull/7"))
    world.app.in_window()

    _, run = await world.deploy(pull_requests=[7])
    await world.worker.sweep()

    assert world.held(run).state == "approved"
    assert change.ref in world.held(run).comment


async def test_a_deployment_tied_by_the_pull_request_github_names_for_its_commit(
    world: World,
) -> None:
    change = world.app.approved(links=Links(pull_request=f"https://github.com/{REPO}/pull/8"))
    world.app.in_window()
    world.github.set_pulls(REPO, "c0ffee0000000000000000000000000000000000", [8])

    _, run = await world.deploy(sha="c0ffee0000000000000000000000000000000000")
    await world.worker.sweep()

    assert world.held(run).state == "approved"
    assert change.ref in world.held(run).comment


async def test_a_deployment_tied_to_no_change_is_rejected_saying_how_to_tie_it(
    world: World,
) -> None:
    _, run = await world.deploy(ref="main")
    await world.worker.sweep()

    held = world.held(run)
    assert held.state == "rejected"
    assert "name the change in the branch or tag you deploy" in held.comment
    assert "link the pull request of commit 47efb71 from the change" in held.comment


async def test_a_repository_the_policy_does_not_map_is_rejected_saying_what_to_add(
    world: World,
) -> None:
    change = world.app.approved()
    world.github.hold("acme/other", 77, "production")
    payload = protection_rule_request("acme/other", "production", 77, ref=change.ref)
    await deliver(world.webhook_url, payload)

    await world.worker.sweep()

    held = world.github.held[("acme/other", 77, "production")]
    assert held.state == "rejected"
    assert "Add a [[gate.github]] entry (repository = 'acme/other'" in held.comment


# -- exactly once --------------------------------------------------------------------------------


async def test_githubs_errors_are_retried_with_backoff_until_it_takes_the_answer(
    world: World,
) -> None:
    change = world.app.approved()
    world.app.in_window()
    _, run = await world.deploy(ref=change.ref)
    world.github.failures = [502, 503]  # the first token call, then the retry's

    await world.worker.sweep()
    assert world.row(run).attempts == 1
    assert await world.after(1) == 0  # backing off: not yet
    await world.after(2)
    assert world.row(run).attempts == 2
    await world.after(4)

    assert world.held(run).state == "approved"
    assert world.row(run).status == ANSWERED
    assert len(world.github.answers()) == 1


async def test_an_answer_that_landed_though_its_reply_was_lost_is_not_sent_twice(
    world: World,
) -> None:
    change = world.app.approved()
    world.app.in_window()
    _, run = await world.deploy(ref=change.ref)
    world.worker.app.timeout = 0.5
    await world.worker.app.installation_token(119022551)
    world.github.delay = 1.0  # GitHub takes the answer, but after the bot gave up waiting

    await world.worker.sweep()
    await asyncio.sleep(0.6)  # the stand-in records the answer it took
    world.github.delay = 0.0
    await world.after(3)

    assert world.held(run).state == "approved"
    assert len(world.github.answers()) == 1  # the retry was refused as no longer pending
    assert world.row(run).status == ANSWERED
    assert "GitHub no longer waits" in world.row(run).last_error


async def test_a_status_report_github_refuses_for_good_is_not_tried_again(world: World) -> None:
    change, run = await world.waiting_on_approval()
    await world.worker.app.installation_token(119022551)
    world.github.failures = [422]  # "Too many status reports", or the run is gone

    await world.worker.sweep()
    assert world.row(run).status == AWAITING
    assert await world.after(60) == 0  # nothing retried: the request waits for its change

    world.approve(change.number)
    await world.worker.sweep()
    assert world.held(run).state == "approved"
    assert world.row(run).status == ANSWERED
    reports = [c for c in world.github.calls if not c.body.get("state")]
    assert [c.status for c in reports if c.path.endswith("/deployment_protection_rule")] == [422]


async def test_an_answer_a_replica_died_sending_is_sent_by_the_next_once_its_lease_ends(
    world: World,
) -> None:
    change, run = await world.waiting_on_approval()
    await world.worker.sweep()  # waiting, and told so on the run
    world.approve(change.number)
    arrived = len(world.github.arrivals)
    world.github.delay = 2.0
    world.github.failures = [503]  # what the replica sends never lands

    dying = asyncio.create_task(world.worker.sweep())
    await eventually(lambda: len(world.github.arrivals) > arrived)  # written down, on its way
    assert world.row(run).status == DECIDED
    dying.cancel()  # the replica dies mid-send: no retry written, its lease still held
    await eventually(lambda: any(c.status == 503 for c in world.github.calls))
    world.github.delay = 0.0
    other = world.another_replica()

    world.app.clock.advance(seconds=30)
    assert await other.sweep() == 0  # the dead replica's lease still holds it
    world.app.clock.advance(seconds=31)
    assert await other.sweep() == 1

    assert world.held(run).state == "approved"
    assert len(world.github.answers()) == 1
    assert world.row(run).status == ANSWERED


async def test_two_replicas_sweeping_at_once_answer_each_deployment_once(
    world: World,
) -> None:
    change = world.app.approved()
    world.app.in_window()
    runs = [(await world.deploy(ref=change.ref))[1] for _ in range(6)]
    other = world.another_replica()

    await asyncio.gather(world.worker.sweep(), other.sweep(), world.worker.sweep(), other.sweep())
    await asyncio.gather(world.worker.sweep(), other.sweep())

    assert [world.held(run).state for run in runs] == ["approved"] * 6
    assert len(world.github.answers()) == 6


async def test_a_commit_whose_pull_requests_github_will_not_list_is_tied_by_its_ref_alone(
    world: World,
) -> None:
    """GitHub refusing for good (403: a private repository, and the app without Pull requests:
    read) is no pull request, not an error to retry for 30 days."""
    await world.worker.app.installation_token(INSTALLATION)
    world.github.failures = [403]  # the commit's pull requests

    _, run = await world.deploy(ref="main")
    await world.worker.sweep()

    held = world.held(run)
    assert held.state == "rejected"
    assert "name the change in the branch or tag you deploy" in held.comment
    assert world.row(run).status == ANSWERED


async def test_a_token_github_no_longer_takes_is_renewed_at_once(world: World) -> None:
    """Revoked, or this machine's clock behind GitHub's: 401 means a new token now, not the
    same refusal until the old one would have expired."""
    change = world.app.approved()
    world.app.in_window()
    await world.worker.app.installation_token(INSTALLATION)
    world.github.tokens.clear()  # GitHub forgot every token it gave

    _, run = await world.deploy(ref=change.ref)
    await world.worker.sweep()

    assert world.held(run).state == "approved"
    assert world.row(run).attempts == 0
    issued = [c for c in world.github.calls if c.path.endswith("/access_tokens")]
    assert len(issued) == 2


async def test_a_job_run_again_is_answered_on_its_new_request_only(world: World) -> None:
    """Held under CHG-1, cancelled in GitHub, re-run (the same run, a new delivery) under
    CHG-2: the first request's answer must not land on the re-run's."""
    first = world.app.awaiting_approval()
    world.app.in_window()
    pull = f"https://github.com/{REPO}/pull/8"
    _, run = await world.deploy(ref=first.ref)
    await world.worker.sweep()
    second = world.app.approved(links=Links(pull_request=pull))
    world.github.hold(REPO, run, "production")  # the re-run, held anew
    again = protection_rule_request(REPO, "production", run, ref="main", pull_requests=[8])
    await deliver(world.webhook_url, again)
    process.cancel(
        SqlUnitOfWork(world.app.engine),
        world.app.clock,
        POLICY,
        first.number,
        REQUESTER,
        reason="Superseded by " + second.ref,
    )

    await world.worker.sweep()

    held = world.held(run)
    assert held.state == "approved"
    assert second.ref in held.comment
    assert len(world.github.answers()) == 1


async def test_installation_tokens_are_renewed_before_they_expire(world: World) -> None:
    app = world.worker.app
    world.github.token_lifetime = 400
    now = [time.time()]
    app.wall_clock = lambda: now[0]
    first = await app.installation_token(1)
    again = await app.installation_token(1)
    world.github.token_lifetime = 3600
    now[0] += 200  # within the 5 minutes before it expires

    renewed = await app.installation_token(1)

    assert first == again != renewed
    issued = [c for c in world.github.calls if c.path.endswith("/access_tokens")]
    assert len(issued) == 2


# -- what the webhook refuses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "body", "status"),
    [
        (None, None, 401),
        ("not the secret", None, 401),
        (WEBHOOK_SECRET, b"{not json", 400),
        (WEBHOOK_SECRET, b'{"action": "requested", "environment": "production"}', 400),
        (WEBHOOK_SECRET, b"x" * 600_000, 413),
        (WEBHOOK_SECRET, b"[" * 5_000, 400),
        (WEBHOOK_SECRET, b'{"action": ' + b"9" * 5_000 + b"}", 400),
    ],
)
async def test_a_bad_delivery_is_refused_and_stores_nothing(
    world: World, secret: str | None, body: bytes | None, status: int
) -> None:
    payload = body if body is not None else protection_rule_request(REPO, "production", 1)

    answer, error = await deliver(world.webhook_url, payload, secret=secret)

    assert answer == status, error
    assert error["message"]
    assert world.rows() == 0


async def test_a_signature_that_is_not_even_text_is_a_401(world: World) -> None:
    body = json.dumps(protection_rule_request(REPO, "production", 1)).encode()
    server = world.app.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = (
        b"POST /github/webhook HTTP/1.1\r\nHost: changebot\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nX-GitHub-Event: deployment_protection_rule\r\n"
        b"X-GitHub-Delivery: 5f3c1a2e-0000-0000-0000-000000000001\r\n"
        b"X-Hub-Signature-256: sha256=\xff\xfe\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    writer.write(head + body)
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()

    assert answer.startswith(b"HTTP/1.1 401 ")
    assert b'"error": "unauthorized"' in answer
    assert world.rows() == 0


@pytest.mark.parametrize(
    ("where", "field"),
    [
        (("installation", "id"), "installation.id"),
        (("workflow_run", "id"), "workflow_run.id"),
        (("workflow_run",), "deployment_callback_url"),  # the run's id from the callback
    ],
)
async def test_an_id_larger_than_any_of_githubs_is_refused_naming_it(
    world: World, where: tuple[str, ...], field: str
) -> None:
    payload = protection_rule_request(REPO, "production", 2**64)
    if where == ("workflow_run",):
        del payload["workflow_run"]
    else:
        payload[where[0]][where[1]] = 2**64

    answer, error = await deliver(world.webhook_url, payload)

    assert answer == 400, error
    assert error["field"] == field
    assert world.rows() == 0


async def test_a_replayed_delivery_is_refused_and_changes_nothing(world: World) -> None:
    payload = protection_rule_request(REPO, "production", 5)
    first, _ = await deliver(world.webhook_url, payload, delivery="d-1")

    again, error = await deliver(world.webhook_url, payload, delivery="d-1")

    assert (first, again) == (202, 409)
    assert "received already" in error["message"]
    assert world.rows() == 1


async def test_a_ping_and_other_events_are_acknowledged_and_stored_nowhere(world: World) -> None:
    ping, _ = await deliver(world.webhook_url, {"zen": "Keep it simple."}, event="ping")
    push, body = await deliver(world.webhook_url, {"action": "created"}, event="push")

    assert (ping, push) == (200, 202)
    assert body["ignored"] == "push created"
    assert world.rows() == 0


async def test_without_github_configured_the_webhook_is_a_json_404(engine: Engine) -> None:
    async with served(engine) as app:
        status, body = await deliver(
            str(app.client.make_url("/github/webhook")),
            protection_rule_request(REPO, "production", 1),
        )

    assert status == 404
    assert "once GitHub is configured" in body["message"]


async def test_the_shared_real_delivery_is_read(world: World) -> None:
    payload = _shared_delivery()
    world.github.hold("zaniebot/release-authenticator-example", 23625057533, "release")

    status, _ = await deliver(world.webhook_url, payload)

    assert status == 202
    (row,) = _all_rows(world)
    assert (row.repository, row.environment, row.run_id, row.installation_id) == (
        "zaniebot/release-authenticator-example",
        "release",
        23625057533,
        119022551,
    )
    assert (row.sha[:7], row.ref, row.sender) == ("47efb71", "main", "zaniebot")


#: A real delivery, kept in ../shared/github beside this checkout (see its SOURCES.md).
SHARED_DELIVERY = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "github"
    / "payloads"
    / "deployment_protection_rule.requested.json"
)


def _shared_delivery() -> dict[str, Any]:
    return dict(json.loads(SHARED_DELIVERY.read_text(encoding="utf-8")))


def _all_rows(world: World) -> list[GithubDeploymentRow]:
    with Session(world.app.engine) as session:
        return list(session.exec(select(GithubDeploymentRow)).all())


async def test_deliveries_arriving_together_are_each_stored_once(world: World) -> None:
    payloads = [protection_rule_request(REPO, "production", 300 + i) for i in range(8)]
    sends = [
        deliver(world.webhook_url, p, delivery=f"together-{i}") for i, p in enumerate(payloads)
    ]
    sends.append(deliver(world.webhook_url, payloads[0], delivery="together-0"))  # a twin

    answers = await asyncio.gather(*sends)

    assert sorted(status for status, _ in answers) == [202] * 8 + [409]
    assert world.rows() == 8

"""Answers GitHub for the deployments it holds: decides with the gate's rules, tells GitHub
what the deployment waits for (again whenever that changes), and approves or rejects it the
moment its change allows.

Each replica's worker claims due requests under a lease (storage/github.py): new ones, ones
whose change has moved since they were decided, ones whose window has opened, and answers
that did not reach GitHub yet. A final answer is written down before it is sent and sent
until GitHub takes it (backing off through its errors and timeouts); sent again after a
timeout that had in fact delivered it, GitHub refuses it as no longer pending, which also
ends it. So each deployment is answered once, across restarts and replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from gidgethub import BadRequest, GitHubException, RateLimitExceeded
from sqlalchemy import Engine

from bot.api.desk import ask_again_if_stale
from bot.github.app import GithubApp
from bot.leased import LeasedWorker, LeaseLost
from storage import github
from storage.github import ANSWERED, AWAITING, DECIDED, Held
from storage.uow import SqlUnitOfWork, read_only
from workflows.gate import Asked, Decision, Question, Target, combine, find_change
from workflows.model import GITHUB_PIPELINE, GateStatus, format_ref
from workflows.policy import Policy
from workflows.ports import Clock

log = logging.getLogger(__name__)
T = TypeVar("T")

BATCH = 10
#: A request waiting on its change is looked at again at least this often, in case news of
#: the change was missed; its change moving wakes it at once.
RECHECK = timedelta(hours=1)
RETRY_FIRST, RETRY_MAX = 2.0, 300.0
#: GitHub stops waiting for an answer after 30 days.
GITHUB_WAITS = timedelta(days=30)
#: GitHub's answers meaning the run no longer waits for this one (answered, or gone).
NOT_PENDING = (404, 422)


class GithubGate(LeasedWorker[Held]):
    doing = "answering GitHub"
    batch = BATCH

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        policy: Policy,
        app: GithubApp,
        *,
        owner: str,
        lease: timedelta,
    ) -> None:
        super().__init__(github, engine, clock, owner=owner, lease=lease)
        self.policy = policy
        self.app = app
        # The requests of a sweep wait on GitHub together, but take turns at the database:
        # on SQLite, writers that collide sleep in SQLite's busy handler (up to 100 ms a
        # try), and the webhook, which answers GitHub within its 10 seconds, waits behind.
        self._turn = asyncio.Lock()
        self._reads = SqlUnitOfWork(read_only(engine))

    # -- one request -----------------------------------------------------------------------------

    async def handle(self, held: Held) -> None:
        request = held.request
        try:
            if self.clock.now() - held.received_at > GITHUB_WAITS:
                await self._answered(held, "GitHub stopped waiting after 30 days")
                return
            if held.status != DECIDED:
                held = await self._decide(held)
            if held.status == DECIDED:
                await self._send(held)
        except LeaseLost:
            log.info("GitHub deployment %s was taken over by another replica", request.delivery_id)
        except Exception as error:  # one request must not hold up the others
            log.exception("GitHub deployment %s: could not answer", request.delivery_id)
            with contextlib.suppress(LeaseLost):
                await self._retry_later(held, f"internal error: {type(error).__name__}")

    async def _decide(self, held: Held) -> Held:
        request = held.request
        number = held.number or await self._tie(held)
        if number is None:
            return await self._freeze(held, None, "rejected", _untied(request.sha))
        services = self.policy.gate.github_services(request.repository, request.environment)
        if services is None:
            return await self._freeze(
                held, number, "rejected", _unmapped(request.repository, request.environment)
            )
        decision, version = await self._db(self._ask, number, services, held)
        ref = format_ref(number)
        if decision.is_final:
            state = "approved" if decision.status is GateStatus.ALLOWED else "rejected"
            return await self._freeze(held, number, state, _comment(ref, decision), decision)
        now = self.clock.now()
        due, attempts, error = min(decision.recheck_at or now + RECHECK, now + RECHECK), 0, ""
        report, reported = _waiting(ref, decision), held.reported_comment
        # Each report is a line in the run's history: one only when what it waits for changed.
        if report != reported:
            if await self._report_waiting(held, report):
                reported = report
            else:  # try the report again soon; the decision stands meanwhile
                delay = min(RETRY_FIRST * 2**held.attempts, RETRY_MAX)
                due, attempts = now + timedelta(seconds=delay), held.attempts + 1
                error = "the status report did not reach GitHub"
        await self._record(
            held,
            status=AWAITING,
            number=number,
            decision=decision.status.value,
            reported_comment=reported,
            change_version=version,
            due_at=due,
            attempts=attempts,
            last_error=error,
            lease_owner="",
            lease_until=None,
        )
        return held

    async def _report_waiting(self, held: Held, report: str) -> bool:
        """Say on the run what it waits for (a status report: a comment, no answer); False
        if it should be tried again."""
        request = held.request
        try:
            await self.app.review(
                request.repository,
                request.installation_id,
                request.run_id,
                request.environment,
                report,
            )
        except (GitHubException, aiohttp.ClientError, TimeoutError, OSError) as error:
            if isinstance(error, BadRequest) and error.status_code in NOT_PENDING:
                # The run is gone, or takes no more reports: asking again changes nothing (a
                # report saying something new is still tried). The request goes on waiting for
                # its change; its answer says whether GitHub still waits.
                log.warning("GitHub took no status report for %s: %s", request.delivery_id, error)
                return True
            log.warning(
                "GitHub deployment %s: status report failed: %r", request.delivery_id, error
            )
            return False
        return True

    def _ask(self, number: int, services: tuple[str, ...], held: Held) -> tuple[Decision, int]:
        request = held.request
        asked = Asked(GITHUB_PIPELINE, run=self._run_url(held), triggered_by=request.sender)
        questions = [
            Question(number, Target(s, request.environment, request.repository, request.sha), asked)
            for s in services
        ]
        answers = ask_again_if_stale(self.engine, self.clock, self.policy, questions)
        return combine(a.decision for a in answers), answers[0].version

    async def _tie(self, held: Held) -> int | None:
        """The change this deployment belongs to (see workflows.gate.find_change); the
        commit's pull requests are asked of GitHub when the delivery named none."""
        request = held.request
        uow = self._reads
        number = await self._db(find_change, uow, request.ref, request.pull_requests)
        if number is None and request.sha and not request.pull_requests:
            pulls = await self.app.pull_requests_of(
                request.repository, request.installation_id, request.sha
            )
            number = await self._db(find_change, uow, "", pulls)
        return number

    async def _freeze(
        self,
        held: Held,
        number: int | None,
        state: str,
        comment: str,
        decision: Decision | None = None,
    ) -> Held:
        """Write the answer down before sending it: every later try sends this one. It is due
        at once, so should this replica die sending it, the next to claim it sends it as soon as
        the lease ends (a waiting request's due time, an hour off, would hold it until then)."""
        status = decision.status.value if decision else GateStatus.INVALID.value
        await self._record(
            held,
            status=DECIDED,
            number=number,
            decision=status,
            answer_state=state,
            answer_comment=comment,
            due_at=self.clock.now(),
        )
        return replace(
            held,
            number=number,
            status=DECIDED,
            decision=status,
            answer_state=state,
            answer_comment=comment,
        )

    async def _send(self, held: Held) -> None:
        request = held.request
        try:
            await self.app.review(
                request.repository,
                request.installation_id,
                request.run_id,
                request.environment,
                held.answer_comment,
                held.answer_state,
            )
        except RateLimitExceeded as error:
            await self._retry_later(held, f"GitHub rate limit ({error})")
            return
        except BadRequest as error:
            if error.status_code not in NOT_PENDING:
                await self._retry_later(held, f"GitHub refused: {error.status_code} {error}")
                return
            log.info("GitHub no longer waits on %s: %s", request.delivery_id, error)
            await self._answered(held, f"GitHub no longer waits: {error}")
            return
        except (GitHubException, aiohttp.ClientError, TimeoutError, OSError) as error:
            await self._retry_later(held, f"GitHub did not answer ({error!r})")
            return
        log.info(
            "GitHub deployment of %s to %s (run %s): %s",
            request.repository,
            request.environment,
            request.run_id,
            held.answer_state,
        )
        await self._answered(held, "")

    # -- bookkeeping -----------------------------------------------------------------------------

    async def _answered(self, held: Held, note: str) -> None:
        await self._record(
            held,
            status=ANSWERED,
            answered_at=self.clock.now(),
            due_at=None,
            last_error=note[:500],
            lease_owner="",
            lease_until=None,
        )

    async def _retry_later(self, held: Held, why: str) -> None:
        delay = min(RETRY_FIRST * 2**held.attempts, RETRY_MAX)
        log.warning(
            "GitHub deployment %s: %s; retrying in %.0fs", held.request.delivery_id, why, delay
        )
        await self._record(
            held,
            due_at=self.clock.now() + timedelta(seconds=delay),
            attempts=held.attempts + 1,
            last_error=why[:500],
            lease_owner="",
            lease_until=None,
        )

    async def _record(self, held: Held, **values: Any) -> None:
        delivery = held.request.delivery_id
        async with self._turn:
            if not await self.in_session(github.record, delivery, self.owner, **values):
                raise LeaseLost(delivery)

    async def _db(self, work: Callable[..., T], *args: Any) -> T:
        """Database work in a thread, one piece at a time for this worker."""
        async with self._turn:
            return await asyncio.to_thread(work, *args)

    def _run_url(self, held: Held) -> str:
        request = held.request
        return f"{web_url(self.app.api_url)}/{request.repository}/actions/runs/{request.run_id}"


def web_url(api_url: str) -> str:
    """GitHub's web address from its API's: api.github.com -> github.com; an Enterprise
    server's /api/v3 -> the server."""
    parts = urlsplit(api_url)
    host = parts.netloc.removeprefix("api.")
    path = parts.path.removesuffix("/").removesuffix("/api/v3")
    return f"{parts.scheme}://{host}{path}"


# -- what GitHub is told ---------------------------------------------------------------------------


def _comment(ref: str, decision: Decision) -> str:
    verdict = {
        GateStatus.ALLOWED: f"changebot allows this deployment under {ref}.",
        GateStatus.PREVENTED: f"changebot prevents this deployment under {ref}.",
        GateStatus.INVALID: f"changebot cannot allow this deployment under {ref}.",
    }[decision.status]
    return " ".join([verdict, *decision.reasons])


def _waiting(ref: str, decision: Decision) -> str:
    return " ".join(
        [
            f"changebot holds this deployment until {ref} allows it; it goes on by itself "
            "once the change is approved in Slack.",
            *decision.reasons,
        ]
    )


def _untied(sha: str) -> str:
    commit = f" of commit {sha[:7]}" if sha else ""
    return (
        "changebot found no change for this deployment, so it may not go ahead. Tie it to one: "
        "name the change in the branch or tag you deploy (for example release/CHG-42), or "
        f"link the pull request{commit} from the change (its Pull request field in Slack). "
        "Then re-run the job."
    )


def _unmapped(repository: str, environment: str) -> str:
    return (
        f"changebot's policy does not say which services {repository} deploys to "
        f"{environment}, so it cannot tell which change allows this. Add a [[gate.github]] "
        f"entry (repository = {repository!r}, environment = {environment!r}, services = "
        "[...]) to the change policy."
    )

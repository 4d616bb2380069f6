"""The composition root: one function builds the Bolt app from settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.middleware.authorization.async_single_team_authorization import (
    AsyncSingleTeamAuthorization,
)
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot import listeners, logs
from bot.api.desk import GateDesk
from bot.api.routes import Api
from bot.catalog import LiveCatalog
from bot.chaser import Chaser
from bot.digester import Digester, Signer
from bot.directory import Directory
from bot.github import Github
from bot.github import connect as connect_github
from bot.listeners.tell import tell_failure
from bot.malformed import RefuseMalformed
from bot.names import PolicyNames
from bot.publisher import Publisher
from bot.services import Services
from bot.settings import Settings
from bot.traffic import Traffic
from storage import events
from workflows.policy import Policy
from workflows.ports import Clock, SystemClock

log = logging.getLogger(__name__)


@dataclass
class Bot:
    """Everything `changebot serve` runs: the Bolt app, its services and the publisher."""

    app: AsyncApp
    services: Services
    publisher: Publisher
    chaser: Chaser
    api: Api
    github: Github | None = None
    #: Writes the audit trail's signed digests, when they are configured.
    digester: Digester | None = None
    #: The policy as written, its @handles and #names resolved at start and now and then.
    names: PolicyNames | None = None

    async def resolve_policy(self) -> None:
        """Before serving: resolve the policy's names in Slack (PolicyError naming the key of
        each one the workspace does not know), and warn when nobody can approve."""
        if self.names is None:
            return
        policy, warnings = await self.names.at_start()
        self.adopt(policy)
        for warning in warnings:
            log.warning("%s", warning)

    async def refresh_names(self) -> None:
        """Read the names again; a handle that moved is followed from now on."""
        policy = await self.names.refresh() if self.names is not None else None
        if policy is not None:
            self.adopt(policy)

    def adopt(self, policy: Policy) -> None:
        """Every part that reads the policy reads this one from now on."""
        if self.services.live is not None:  # with the procedures adopted in Slack, as before
            self.services.live.use(policy)
        self.services.policy = policy
        self.services.directory.use(policy)
        self.publisher.policy = policy
        self.chaser.policy = policy
        self.api.desk.policy = policy
        if self.github is not None:
            self.github.worker.policy = policy

    async def sign_in(self) -> None:
        """Ask Slack who we are once, at start: Bolt would otherwise call auth.test while the
        first request waits for its acknowledgement (Bolt keeps the answer in its single-team
        authorization middleware, which is where this puts it). A refusal is logged now,
        and the first request asks again."""
        for middleware in getattr(self.app, "_async_middleware_list", []):
            if not isinstance(middleware, AsyncSingleTeamAuthorization):
                continue
            if middleware.auth_test_result is not None:
                self.publisher.workspace_url = middleware.auth_test_result.get("url") or ""
                return
            try:
                result = await self.app.client.auth_test()
            except SlackApiError as error:
                log.error("Slack refused the bot token: %s", error.response.get("error"))
                return
            except Exception as error:  # whatever it is, the first request asks again
                log.warning("could not reach Slack at start (%r); will ask again", error)
                return
            middleware.auth_test_result = result
            self.publisher.workspace_url = result.get("url") or ""
            log.info("signed in to Slack as %s in %s", result.get("user"), result.get("team"))

    async def keep_connections(self) -> Callable[[], Awaitable[None]]:
        """Reuse connections to Slack's Web API instead of opening one per call.

        Without a session, slack_sdk opens (and closes) a connection for every call; Bolt's
        per-request clients take the app client's session. A session's own timeout is the one
        slack_sdk uses, so clients with different timeouts get sessions of their own. Returns
        the function that closes them.
        """
        clients = [self.app.client, self.publisher.client, self.chaser.client]
        sessions: dict[int, aiohttp.ClientSession] = {}
        for client in clients:
            if client.timeout not in sessions:
                sessions[client.timeout] = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=client.timeout)
                )
            client.session = sessions[client.timeout]

        async def close() -> None:
            for client in clients:
                client.session = None
            for session in sessions.values():
                await session.close()

        return close


def web_client(
    settings: Settings,
    *,
    timeout: int = 10,
    retry_rate_limits: bool = True,
    resend_after_drop: bool = True,
) -> AsyncWebClient:
    """A Web API client. The publisher waits out a 429 itself (`retry_rate_limits=False`), then
    sends the card as it is by then, not the superseded one it was refused. So does the chaser,
    between sweeps (bot/chaser.py): slack_sdk would sleep out any Retry-After, however long,
    inside the sweep and past the lease it holds, and another replica could then send the same
    reminder. The publisher and
    the chaser never let slack_sdk resend after a dropped connection (`resend_after_drop=False`):
    the first try may have landed, so the publisher reads Slack back before posting again and
    the chaser records the reminder as uncertain rather than send it twice."""
    handlers: list[AsyncRetryHandler] = []
    if resend_after_drop:
        handlers.append(AsyncConnectionErrorRetryHandler(max_retry_count=1))
    if retry_rate_limits:
        handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    return AsyncWebClient(
        token=settings.bot_token,
        base_url=settings.slack_api_url,
        timeout=timeout,
        retry_handlers=handlers,
        logger=logs.own_level(logs.WEB_API_LOGGER),
    )


def create_app(
    settings: Settings,
    engine: Engine,
    policy: Policy,
    *,
    clock: Clock | None = None,
    socket_mode: bool = False,
    signer: Signer | None = None,
) -> Bot:
    clock = clock or SystemClock()
    client = web_client(settings)
    app = AsyncApp(
        client=client,
        signing_secret=settings.signing_secret or "socket-mode",
        request_verification_enabled=not socket_mode,
        process_before_response=False,
        ignoring_self_events_enabled=True,
        logger=logs.own_level(logs.BOLT_LOGGER),
    )
    traffic = Traffic()  # how busy this replica is: listeners, publisher and server share it
    lease = timedelta(seconds=settings.lease_seconds)
    # Background sends must end well inside their lease, or another replica could repeat them.
    chase_timeout = max(1, min(15, int(settings.lease_seconds / 4)))  # see Chaser.sweep
    directory = Directory(client, policy)
    publisher = Publisher(
        engine,
        web_client(
            settings, timeout=chase_timeout, retry_rate_limits=False, resend_after_drop=False
        ),
        policy,
        clock,
        lease=lease,
        traffic=traffic,
        directory=directory,
    )
    chaser = Chaser(
        engine,
        web_client(
            settings, timeout=chase_timeout, retry_rate_limits=False, resend_after_drop=False
        ),
        policy,
        clock,
        owner=publisher.owner,
        lease=lease,
    )
    github = connect_github(settings, engine, clock, policy, owner=publisher.owner, lease=lease)
    digester = (
        Digester(engine, signer, clock, owner=publisher.owner, lease=lease) if signer else None
    )

    def kick() -> None:
        """A change moved: Slack must show it, and a GitHub deployment may wait on it."""
        publisher.kick()
        if github is not None:
            github.worker.kick()

    live = LiveCatalog(policy)
    publisher.live = live
    services = Services(
        settings=settings,
        engine=engine,
        policy=policy,
        live=live,
        clock=clock,
        directory=directory,
        client=client,
        kick=kick,
        permalink=publisher.permalink,
        traffic=traffic,
    )

    app.use(RefuseMalformed())  # first: later middleware and listeners rely on the shape

    app.use(ProvideServices(services))
    app.use(FirstDeliveries(engine, clock))
    listeners.register(app)
    app.error(on_error)
    # A pipeline's question moves no change: its news is for the card alone, and GitHub's
    # worker, which waits on approvals, has nothing to look at.
    api = Api(services, GateDesk(engine, clock, policy, kick=publisher.kick))
    names = PolicyNames(policy, client, settings.policy_path or "the default policy")
    return Bot(app, services, publisher, chaser, api, github, digester, names)


# Our middleware subclass AsyncMiddleware: for function middleware Bolt works out the
# arguments to pass by inspection, on every request (a tenth of a request's cost).
Next = Callable[[], Awaitable[BoltResponse]]


class ProvideServices(AsyncMiddleware):
    """Listeners take `services` by parameter name, as Bolt injects any context key."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Next
    ) -> BoltResponse:
        req.context["services"] = self.services
        return await next()


class FirstDeliveries(AsyncMiddleware):
    """Handles each Events API event once: Slack's retries of a handled event are acked and
    skipped, while a retry of an event no replica has recorded is handled like a first try."""

    PRUNE_EVERY = timedelta(hours=1)

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self.pruned_at: datetime | None = None

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Next
    ) -> BoltResponse:
        body = req.body
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if not isinstance(event_id, str) or not event_id:
            return await next()
        try:
            first = await asyncio.to_thread(self._record, event_id)
        except SQLAlchemyError:
            # Better a possible repeat than a lost event: handle it.
            log.warning("could not record event %s as handled; handling it", event_id)
            return await next()
        if not first:
            log.info("event %s was already handled; skipping Slack's retry", event_id)
            return BoltResponse(status=200, body="")
        return await next()

    def _record(self, event_id: str) -> bool:
        now = self.clock.now()
        with Session(self.engine) as session:
            if self.pruned_at is None or now - self.pruned_at >= self.PRUNE_EVERY:
                self.pruned_at = now
                events.forget_before(session, now - events.REMEMBERED)
            return events.first_delivery(session, event_id, now)


async def on_error(error: Exception, body: dict[str, Any], client: AsyncWebClient) -> None:
    """Known errors become a sentence for the person; unknown ones a reference they can quote."""
    await tell_failure(client, body, error)

"""HTTP serving: Slack's Request URL `/slack/events`, `/healthz` for liveness and `/readyz`
for readiness, the API and the calendar feed; Socket Mode for workspaces without a public URL.
The publisher runs beside the requests; on SIGTERM the server stops taking requests, finishes
those in flight, hands its leases back and exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from bot import logs, memory
from bot.api.routes import JSON_PATHS, api_errors, quiet
from bot.app import Bot
from bot.calendar_feed import CalendarFeed
from bot.github.webhook import PATH as WEBHOOK_PATH
from bot.listeners import catalog as catalog_listeners
from bot.names import REFRESH_SECONDS
from bot.protocol import Runner
from storage import migrate
from storage.checkpoints import BackgroundCheckpoints
from storage.db import is_sqlite
from storage.uow import SqlUnitOfWork
from workflows.durations import format_duration
from workflows.followup import ensure_policy_review

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
DB_THREADS = 16
MAX_BODY = 1024 * 1024


def web_app(bot: Bot, *, background: bool = True) -> web.Application:
    """The HTTP app; with `background`, the publisher and timer start and stop with it."""
    traffic = bot.services.traffic

    @web.middleware
    async def each_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every request: a short ID for every log line it causes and the `X-Request-Id`
        header, and one line of its own (method, path, status and how long it took). Under
        /api/ and /github/, also counted in the replica's traffic (a pipeline waiting for the
        gate, like a person waiting for an acknowledgement, comes before showing what was
        decided: the publisher gives way to a burst of both), and refused in JSON
        (`api_errors`). One middleware, not three: each costs every request a coroutine and
        aiohttp's wrapper around it."""
        with logs.Served(log, f"{request.method} {request.path}") as served:
            try:
                if request.path.startswith(JSON_PATHS):
                    traffic.started()
                    try:
                        response = await api_errors(request, handler)
                    finally:
                        traffic.finished()
                else:
                    response = await handler(request)
            except web.HTTPException as error:
                served.status = error.status
                error.headers["X-Request-Id"] = served.id
                raise
            served.status = response.status
            served.quiet = quiet(request, response.status)
            response.headers["X-Request-Id"] = served.id
            return response

    app = web.Application(client_max_size=MAX_BODY, middlewares=[each_request])

    async def slack_events(request: web.Request) -> web.Response:
        traffic.started()
        try:
            return await _slack_events(request)
        finally:
            traffic.finished()

    async def _slack_events(request: web.Request) -> web.Response:
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if stamp and not (stamp.isascii() and stamp.isdigit()):
            # Not a time, so not Slack's: refused before Bolt, whose signature check would fail
            # on it with an error, and whose error handler would then answer the unverified
            # request's "user" (a forged request would make the bot message anyone).
            log.info("refused a request whose timestamp is not a number")
            return web.json_response({"ok": False, "error": "invalid signature"}, status=401)
        try:
            bolt_request = await to_bolt_request(request)
        except web.HTTPException:
            raise  # 413 for a body over MAX_BODY
        except Exception as error:  # Bolt parses before it verifies: a body it cannot read
            log.info("refused a malformed request: %s", type(error).__name__)
            return web.json_response({"ok": False, "error": "malformed request"}, status=400)
        try:
            bolt_response = await bot.app.async_dispatch(bolt_request)
        except Exception as error:  # the error handler, too, could not read the body
            log.info("refused a malformed request: %s", type(error).__name__)
            return web.json_response({"ok": False, "error": "malformed request"}, status=400)
        if bolt_response.status >= 500:
            # Bolt answers 500 when its own middleware or matchers (after the signature check)
            # fail on fields they assume, such as `event` being an object: listeners run after
            # the ack, so nothing else reaches here. Such a body is malformed, not our failure.
            log.info("refused a malformed request: Bolt could not read it")
            return web.json_response({"ok": False, "error": "malformed request"}, status=400)
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_: web.Request) -> web.Response:
        try:
            state = await asyncio.to_thread(migrate.status, bot.services.engine)
        except Exception as error:  # any database failure means not ready
            return web.json_response({"ok": False, "error": type(error).__name__}, status=503)
        if not state.is_current:
            body = {"ok": False, "error": f"the database {state.problem()}"}
            return web.json_response(body, status=503)
        return web.json_response({"ok": True, "schema": state.current})

    app.router.add_post(EVENTS_PATH, slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    bot.api.add_routes(app)
    CalendarFeed(bot.services).add_routes(app)
    if bot.github is not None:
        app.router.add_post(WEBHOOK_PATH, bot.github.webhook.handle)
    if background:
        app.cleanup_ctx.append(_background(bot))

    async def close_desk(_: web.Application) -> None:  # once the requests in flight are done
        await bot.api.desk.close()

    app.on_cleanup.append(close_desk)
    return app


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _background(bot: Bot):  # type: ignore[no-untyped-def]
    async def run(_: web.Application) -> AsyncIterator[None]:
        stop = await start_background(bot)
        yield
        await stop()

    return run


async def start_background(bot: Bot) -> Callable[[], Awaitable[None]]:
    """The publisher's loop and the timer that sweeps for due reminders, in this replica.

    APScheduler is only the in-process timer: what is owed lives in the database, so a
    replica that restarts (or several that run at once) pick up exactly what is due.
    """
    interval = bot.services.settings.sweep_seconds
    # Database work runs in threads; the default pool (cores + 4) starves under bursts, and
    # more threads than the database has connections (5 + 10 overflow) only wait for one.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="changebot-db")
    )
    close_connections = await bot.keep_connections()
    try:
        # The policy's @handles and #names: an unknown one stops here, before anything runs.
        await bot.resolve_policy()
    except BaseException:
        await close_connections()
        raise
    checkpoints = _checkpoints(bot.services.engine)
    signing_in = asyncio.create_task(bot.sign_in(), name="sign-in")  # never holds up serving
    if bot.services.policy.policy.owner:
        try:
            await asyncio.to_thread(
                ensure_policy_review,
                SqlUnitOfWork(bot.services.engine),
                bot.services.clock,
                bot.services.policy,
            )
        except IntegrityError:
            log.info("another replica opened the policy review obligation first")
    publisher = asyncio.create_task(bot.publisher.run(interval), name="publisher")
    bot.publisher.kick()  # anything left from before a restart goes out now
    github = bot.github.worker if bot.github is not None else None
    answering = asyncio.create_task(github.run(interval), name="github") if github else None
    if github is not None:
        github.kick()  # and GitHub's answers
    scheduler = AsyncIOScheduler()
    scheduler.add_job(
        _sweep,
        "interval",
        args=[bot],
        seconds=interval,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        next_run_time=datetime.now(UTC),
    )
    _schedule_digests(bot, scheduler)
    scheduler.add_job(
        bot.api.tally.log,
        "interval",
        seconds=TALLY_EVERY,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
    if bot.names is not None and bot.names.has_names:
        scheduler.add_job(
            bot.refresh_names,
            "interval",
            seconds=REFRESH_SECONDS,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
    scheduler.start()

    async def stop() -> None:
        # Shutting APScheduler down cancels a running job, which could cut a reminder between
        # its send and its record; so stop the timer, let the sweep finish, then shut down.
        scheduler.pause()
        await bot.chaser.drain(timeout=bot.services.settings.lease_seconds / 2)
        scheduler.shutdown(wait=False)
        for task in (publisher, answering):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await bot.publisher.release_all()
        if github is not None:
            await github.release_all()
            await github.app.close()
        await bot.chaser.release_all()
        if bot.digester is not None:
            await bot.digester.release_all()
        signing_in.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await signing_in
        bot.api.tally.log()
        await close_connections()
        if checkpoints is not None:
            await asyncio.to_thread(checkpoints.stop)

    return stop


def _checkpoints(engine: Engine) -> BackgroundCheckpoints | None:
    """On a SQLite file, the log is copied back by a thread, not by the request that
    happens to commit past its limit (storage/checkpoints.py)."""
    if not is_sqlite(engine) or engine.url.database in (None, "", ":memory:"):
        return None
    return BackgroundCheckpoints(engine).start()


#: How often the gate's answers are summed up in the log (bot/api/tally.py).
TALLY_EVERY = 60.0
#: How often a replica looks whether the digest is due, at most: it is written this late at worst.
DIGEST_LOOK_EVERY = 60.0


def _schedule_digests(bot: Bot, scheduler: AsyncIOScheduler) -> None:
    """Look for the digest being due, on the timer; every replica looks, one writes each."""
    digester = bot.digester
    if digester is None:
        log.info(
            "signed digests of the audit trail are off: set CHANGEBOT_DIGEST_DIR and "
            "CHANGEBOT_DIGEST_KEY to write them (see the README's 'Signed digests')"
        )
        return
    every = digester.signer.every
    scheduler.add_job(
        digester.tick,
        "interval",
        seconds=min(DIGEST_LOOK_EVERY, every.total_seconds() / 10),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        next_run_time=datetime.now(UTC),
    )
    log.info(
        "signed digests of the audit trail go to %s every %s, signed by %s",
        digester.signer.directory,
        format_duration(every),
        digester.signer.fingerprint,
    )


async def _sweep(bot: Bot) -> None:
    try:
        await bot.chaser.sweep()
    except Exception:  # the timer must outlive any one bad sweep
        log.exception("the reminder sweep failed; trying again at the next tick")
    try:
        await catalog_listeners.post_unposted(bot.services)
    except Exception:
        log.exception("posting the cards of proposals failed; trying again at the next tick")
    if bot.services.traffic.quiet_for(1.0):  # between bursts: collect, give back what they freed
        memory.collect_between_bursts()
        await asyncio.to_thread(memory.trim)


def serve_http(bot: Bot, host: str, port: int) -> None:
    asyncio.run(_serve_http(bot, host, port))


async def _serve_http(bot: Bot, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then stop in order: stop taking requests, finish those in
    flight, let a reminder sweep in progress finish, hand the leases back, return."""
    # The background first: it resolves the policy's names, and a name Slack does not know
    # stops changebot before it takes a request.
    stop_background = await start_background(bot)
    runner = Runner(web_app(bot, background=False), access_log=None, shutdown_timeout=10)
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        await stop_background()
        raise
    memory.freeze_startup()
    log.info("changebot listening on http://%s:%s%s", host, port, EVENTS_PATH)
    await _until_signalled()
    log.info("stopping: no new requests; finishing those in flight")
    await runner.cleanup()
    if not await bot.services.traffic.drain(timeout=10):
        owed = bot.services.traffic.owed
        log.warning("stopping with %d acknowledged moves or forms not done", owed)
    await stop_background()
    log.info("stopped cleanly")


async def _until_signalled() -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()


async def serve_socket_mode(bot: Bot, app_token: str) -> None:
    """Connect out to Slack and serve until SIGTERM or SIGINT, then stop as HTTP serving does:
    close the connection, hand the leases back and return, so the process exits 0."""
    from bot.socket_mode import SocketModeHandler

    handler = SocketModeHandler(bot, app_token)
    stop = await start_background(bot)
    memory.freeze_startup()
    try:
        await handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("changebot connected to Slack over Socket Mode")
        await _until_signalled()
        log.info("changebot stopping")
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        await bot.services.traffic.drain(timeout=10)
        await stop()

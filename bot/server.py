"""HTTP serving: Slack's Request URL `/slack/events`, `/healthz` for liveness and `/readyz`
for readiness; Socket Mode for workspaces without a public URL. The publisher runs beside
the requests; on SIGTERM the server stops taking requests, finishes those in flight, hands
its leases back and exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot.app import Bot
from storage import migrate

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
MAX_BODY = 1024 * 1024


def web_app(bot: Bot) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def slack_events(request: web.Request) -> web.Response:
        bolt_response = await bot.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_: web.Request) -> web.Response:
        try:
            state = await asyncio.to_thread(migrate.status, bot.services.engine)
        except Exception as error:  # any database failure means not ready
            return web.json_response({"ok": False, "error": type(error).__name__}, status=503)
        if not state.is_current:
            body = {"ok": False, "error": f"schema {state.current} is behind {state.head}"}
            return web.json_response(body, status=503)
        return web.json_response({"ok": True, "schema": state.current})

    app.router.add_post(EVENTS_PATH, slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.cleanup_ctx.append(_background(bot))
    return app


def _background(bot: Bot):  # type: ignore[no-untyped-def]
    async def run(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(bot.publisher.run(), name="publisher")
        bot.publisher.kick()  # anything left from before a restart goes out now
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bot.publisher.release_all()

    return run


def serve_http(bot: Bot, host: str, port: int) -> None:
    log.info("changebot listening on http://%s:%s%s", host, port, EVENTS_PATH)
    web.run_app(web_app(bot), host=host, port=port, print=None, shutdown_timeout=10)


async def serve_socket_mode(bot: Bot, app_token: str) -> None:
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(bot.app, app_token, web_client=bot.app.client)
    publisher = asyncio.create_task(bot.publisher.run(), name="publisher")
    bot.publisher.kick()
    try:
        await handler.start_async()
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
        await bot.publisher.release_all()

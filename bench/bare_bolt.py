"""The baseline: a bare Bolt `AsyncApp` whose listeners only acknowledge, served as changebot
serves (aiohttp, Bolt's aiohttp adapter, the same host and port options).

`python -m bench.bare_bolt --port 3000` with SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and
SLACK_API_URL set as for `changebot serve`. Whatever changebot costs beyond this is its own.
Its Bolt logger has a level of its own, as changebot's has (see `bot.logs.own_level`), so
neither pays for Bolt's debug lines; its process gets the same memory settings (malloc
arenas, garbage collector: `bot.memory`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import memory
from bot.logs import own_level


def bare_app() -> AsyncApp:
    client = AsyncWebClient(
        token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]
    )
    app = AsyncApp(
        client=client,
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        logger=own_level("bench.bare_bolt"),
    )

    async def only_ack(ack: AsyncAck) -> None:
        await ack()

    app.command(re.compile(".*"))(only_ack)
    app.action(re.compile(".*"))(only_ack)
    app.view(re.compile(".*"))(only_ack)
    app.event(re.compile(".*"))(only_ack)
    return app


def web_app(app: AsyncApp) -> web.Application:
    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    server = web.Application(client_max_size=1024 * 1024)
    server.router.add_post("/slack/events", slack_events)
    server.router.add_get("/healthz", healthz)
    return server


async def serve(host: str, port: int) -> None:
    runner = web.AppRunner(web_app(bare_app()), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    memory.freeze_startup()
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_bolt", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    memory.limit_arenas()
    memory.tune_collector()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()

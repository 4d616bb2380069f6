"""Socket Mode: Bolt's handler, with each envelope treated as an HTTP request is.

An envelope is counted in the replica's traffic while it is handled, so moves and the
publisher wait for a lull in Socket Mode as they do over HTTP; and it gets a request ID, for
every log line it causes (the moves it defers included), and one line of its own: its type,
Bolt's status and how long it took.
"""

from __future__ import annotations

import logging
import time

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import (
    run_async_bolt_app,
    send_async_response,
)
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot import logs
from bot.app import Bot

log = logging.getLogger(__name__)


class SocketModeHandler(AsyncSocketModeHandler):
    def __init__(self, bot: Bot, app_token: str) -> None:
        super().__init__(bot.app, app_token, web_client=bot.app.client)
        self.traffic = bot.services.traffic

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        started = time.time()  # Bolt's debug line of the response time reads it
        self.traffic.started()
        try:
            with logs.Served(log, f"socket-mode {req.type}") as served:
                response = await run_async_bolt_app(self.app, req)
                served.status = response.status
                await send_async_response(client, req, response, started)
        finally:
            self.traffic.finished()

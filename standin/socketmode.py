"""Slack's Socket Mode WebSocket server, close enough for slack_sdk's Socket Mode clients.

apps.connections.open hands out a single-use `ws://.../link/?ticket=...` URL. On connect Slack
greets with `{"type": "hello"}`; it then pushes envelopes `{"envelope_id", "type", "payload",
"accepts_response_payload"}` and expects the app to acknowledge each one within 3 seconds with
`{"envelope_id", "payload"?}`. `{"type": "disconnect"}` asks the client to reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from typing import Any

from aiohttp import WSMsgType, web

Envelope = dict[str, Any]


class SocketModeHub:
    """Open Socket Mode connections, the envelopes pushed to them, and the acks received."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self.ws_base = ""  # set once the server knows its port
        self.connections: list[web.WebSocketResponse] = []
        self.sent: list[Envelope] = []
        self.acks: list[Envelope] = []
        self._tickets: set[str] = set()
        self._pending: dict[str, asyncio.Future[Envelope]] = {}
        self._connected = asyncio.Event()

    def issue_url(self) -> str:
        ticket = secrets.token_hex(16)
        self._tickets.add(ticket)
        return f"{self.ws_base}?ticket={ticket}&app_id={self.app_id}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            raise web.HTTPUnauthorized(text="invalid or used ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections.append(ws)
        self._connected.set()
        try:
            await ws.send_json(self._hello())
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._receive(message.data)
        finally:
            self.connections.remove(ws)
            if not self.connections:
                self._connected.clear()
        return ws

    def _hello(self) -> Envelope:
        return {
            "type": "hello",
            "num_connections": len(self.connections),
            "debug_info": {"host": "standin-applink", "approximate_connection_time": 3600},
            "connection_info": {"app_id": self.app_id},
        }

    def _receive(self, data: str) -> None:
        """Acks carry the envelope_id back; anything else from the app is ignored, as Slack does."""
        try:
            ack = json.loads(data)
        except json.JSONDecodeError:
            return
        if not isinstance(ack, dict):
            return
        future = self._pending.pop(ack.get("envelope_id", ""), None)
        if future is not None and not future.done():
            self.acks.append(ack)
            future.set_result(ack)

    async def wait_connected(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def push(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        timeout: float = 3.0,
    ) -> Envelope | None:
        """Deliver one envelope and return the app's ack, or None if none came within `timeout`.

        Must run on the server's event loop (SlackStandIn.on_loop takes care of that).
        """
        started = time.monotonic()
        try:
            await self.wait_connected(timeout)
        except TimeoutError:
            raise ConnectionError("no Socket Mode client is connected to the stand-in") from None
        envelope: Envelope = {
            "envelope_id": str(uuid.uuid4()),
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt or 0
            envelope["retry_reason"] = retry_reason or ""
        future: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()
        self._pending[envelope["envelope_id"]] = future
        self.sent.append(envelope)
        # Slack picks one of the app's connections; the newest is the one surely alive.
        await self.connections[-1].send_json(envelope)
        remaining = max(0.0, timeout - (time.monotonic() - started))
        try:
            return await asyncio.wait_for(future, remaining)
        except TimeoutError:
            self._pending.pop(envelope["envelope_id"], None)
            return None

    async def disconnect_all(self, reason: str = "refresh_requested") -> None:
        """Ask every client to reconnect, as Slack does every few hours.

        Like Slack, the old connection stays open: closing it is the client's job.
        """
        for ws in list(self.connections):
            await ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {}})

    async def close_all(self) -> None:
        for ws in list(self.connections):
            with contextlib.suppress(ConnectionError):
                await ws.close()
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()

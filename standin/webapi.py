"""A local stand-in for Slack's Web API, Socket Mode and response_url endpoints.

`SlackStandIn` is an aiohttp server on 127.0.0.1 that answers `/api/<method>` the way
slack.com does for the methods changebot uses: HTTP 200 with `{"ok": true, ...}` or
`{"ok": false, "error": ...}`, HTTP 429 with Retry-After when rate limited, HTTP 5xx when down.
Point slack_sdk at it with `AsyncWebClient(token=s.bot_token, base_url=s.base_url)`.
Every call is recorded in `s.calls`; `standin.records` has the helpers that read state back.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from standin.api import APP_TOKEN_METHODS, HANDLERS, ApiRequest, SlackState
from standin.errors import ApiError
from standin.faults import Fault, FaultPlan
from standin.records import Call, Records
from standin.responses import ResponseUrls
from standin.socketmode import SocketModeHub
from standin.store import MessageStore, TsClock
from standin.surfaces import Surfaces
from standin.workspace import Workspace

T = TypeVar("T")

# A "timeout" fault answers this long after the client's timeout, so the client surely gave up.
TIMEOUT_MARGIN = 0.5


class SlackStandIn(Records):
    """Slack, as far as a bot can tell: Web API, Socket Mode, response_urls, workspace state."""

    def __init__(
        self,
        workspace: Workspace | None = None,
        *,
        bot_token: str = "xoxb-standin-bot-token",
        app_token: str = "xapp-standin-app-token",
        host: str = "127.0.0.1",
        port: int = 0,
        client_timeout: float = 30.0,
        trigger_ttl: float = 3.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.workspace = workspace or Workspace.sample()
        self.bot_token = bot_token
        self.app_token = app_token
        self.host = host
        self.port = port
        self.client_timeout = client_timeout
        self.faults = FaultPlan()
        self.calls: list[Call] = []
        self.socket = SocketModeHub(self.workspace.app_id)
        self.state = SlackState(
            self.workspace,
            MessageStore(TsClock(clock)),
            Surfaces(self.workspace, trigger_ttl),
            self.socket.issue_url,
        )
        self.responses = ResponseUrls(self.state)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def base_url(self) -> str:
        """The Web API root for slack_sdk; the trailing slash matters to it."""
        return f"{self.url}api/"

    async def start(self) -> SlackStandIn:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link/", self.socket.handle)
        app.router.add_post("/hooks/{key:.+}", self.responses.handle)
        app.router.add_post("/upload/v1/{key}", self.state.uploads.receive)
        app.on_shutdown.append(lambda _: self.socket.close_all())
        # Hanging "timeout" answers must not hold up shutdown for aiohttp's default 60 s.
        self._runner = web.AppRunner(app, shutdown_timeout=0.25, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.socket.ws_base = f"ws://{self.host}:{self.port}/link/"
        self.responses.base = f"{self.url}hooks/"
        self.state.uploads.base = f"{self.url}upload/v1/"
        self.loop = asyncio.get_running_loop()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackStandIn:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the stand-in's loop, whichever loop (or thread) the caller is on."""
        if self.loop is None:
            coro.close()
            raise RuntimeError("the stand-in is not running; call start() first")
        if asyncio.get_running_loop() is self.loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    # -- failure injection ------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        status: int | None = None,
        retry_after: int = 1,
        times: int = 1,
        where: dict[str, str] | None = None,
    ) -> None:
        """The next call(s) to `method` fail; `error` is a Slack error code or one of
        "ratelimited" (429), "500", "503", "timeout", "dropped". Status defaults to what Slack
        would send. With `where`, only calls with those parameters ({"channel": "U0ALICE"})."""
        self.faults.fail_next(method, error, status, retry_after, times, where)

    def fail_rate(
        self,
        rate: float,
        kinds: list[str] | None = None,
        seed: int | None = None,
        methods: list[str] | None = None,
    ) -> None:
        """A fraction `rate` of calls fail, each with a kind drawn from `kinds`."""
        self.faults.fail_rate(rate, kinds or ["500", "timeout", "ratelimited"], seed, methods)

    def heal(self) -> None:
        self.faults.heal()

    def delay_all(self, seconds: float) -> None:
        self.faults.delay_all(seconds)

    # -- what the driver (Slack's clients) needs --------------------------------------------

    def issue_trigger(self, user: str) -> str:
        return self.state.surfaces.issue_trigger(user)

    def expire_triggers(self) -> None:
        self.state.surfaces.expire_triggers()

    def issue_response_url(
        self, channel: str, user: str, message_ts: str | None = None, ephemeral: bool = False
    ) -> str:
        return self.responses.issue(channel, user, message_ts, ephemeral)

    def add_user_message(
        self, channel: str, user: str, text: str, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """A message a person wrote, for the bot to find (and fail to edit)."""
        message: dict[str, Any] = {"type": "message", "user": user, "text": text}
        if thread_ts:
            message["thread_ts"] = thread_ts
        channel_id = self._channel_id(channel)
        return {**self.state.messages.post(channel_id, message), "channel": channel_id}

    # -- the Web API ------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        call = Call(request.match_info["method"], {}, None, time.time(), request.method)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        call.peer = ":".join(map(str, peer[:2])) if peer else ""
        self.calls.append(call)
        try:
            call.params, call.token = await _read_params(request)
        except ApiError as error:
            return self._answer(call, error.to_body())
        if self.faults.delay:
            await asyncio.sleep(self.faults.delay)
        fault = self.faults.pick(call.method, call.params)
        if fault is not None and not (fault.is_timeout or fault.is_dropped):
            return self._fail(call, fault)
        try:
            body = self._dispatch(call.method, call.params, call.token)
        except ApiError as error:
            body = error.to_body()
        if fault is not None and fault.is_dropped:
            # Slack did the work; the connection breaks before the answer goes out.
            call.fault = fault.error
            if request.transport is not None:
                request.transport.abort()
            return self._answer(call, body)
        if fault is not None:
            # Slack did the work; only the answer is late. Retrying clients must cope.
            call.fault = fault.error
            await asyncio.sleep(self.client_timeout + TIMEOUT_MARGIN)
        return self._answer(call, body)

    def _answer(self, call: Call, body: dict[str, Any]) -> web.Response:
        call.status, call.response = 200, body
        return web.json_response(body)

    def _fail(self, call: Call, fault: Fault) -> web.Response:
        body = {"ok": False, "error": fault.error}
        call.status, call.response, call.fault = fault.status, body, fault.error
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        return web.json_response(body, status=fault.status, headers=headers)

    def _dispatch(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        handler = HANDLERS.get(method)
        if handler is None:
            raise ApiError("unknown_method", req_method=method)
        self._authorize(method, token)
        return handler(self.state, ApiRequest(method, params))

    def _authorize(self, method: str, token: str | None) -> None:
        if not token:
            raise ApiError("not_authed")
        if token not in (self.bot_token, self.app_token):
            raise ApiError("invalid_auth")
        if (token == self.app_token) != (method in APP_TOKEN_METHODS):
            raise ApiError("not_allowed_token_type")


async def _read_params(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """Arguments from query string and body (form or JSON), and the token, as Slack reads them."""
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = json.loads(await request.text())
            except json.JSONDecodeError as exc:
                raise ApiError("invalid_json") from exc
            params.update(body if isinstance(body, dict) else {})
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    token = params.pop("token", None)
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        token = authorization.removeprefix("Bearer ").strip()
    return params, token


class StandInThread:
    """Runs a SlackStandIn on its own loop in a background thread, for synchronous tests.

    `with StandInThread() as slack:` yields the running SlackStandIn itself.
    """

    def __init__(self, standin: SlackStandIn | None = None, **options: Any) -> None:
        self.standin = standin or SlackStandIn(**options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> SlackStandIn:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.standin.start(), self._loop).result(timeout=10)
        return self.standin

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self.standin.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

"""A local stand-in for the parts of GitHub the deploy gate talks to, for tests and benchmarks.

- `GithubStandIn` is an aiohttp server on 127.0.0.1 answering, as api.github.com does:
  `POST /app/installations/{id}/access_tokens` (a JWT signed with the App's key buys an
  installation token, which expires), `POST /repos/{o}/{r}/actions/runs/{run}/
  deployment_protection_rule` (an answer, 204, taken once per held deployment, 422 after; or
  with no `state`, a status report, at most 10) and `GET /repos/{o}/{r}/commits/{sha}/pulls`.
  It holds deployments (`hold`), records every call, and can be made slow or failing.
- `deliver` sends the bot a webhook as GitHub does: signed with the webhook secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

APP_ID = "424242"
WEBHOOK_SECRET = "It's a Secret to Everybody"
REPORTS_PER_DEPLOYMENT = 10


def new_private_key() -> bytes:
    """A GitHub App's private key, PEM, as GitHub hands it out."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@dataclass
class Held:
    """A deployment GitHub holds for the App's answer."""

    repository: str
    run_id: int
    environment: str
    state: str = ""  # approved or rejected, once answered
    comment: str = ""
    reports: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    status: int
    body: dict[str, Any]
    at: float


class GithubStandIn:
    def __init__(
        self, private_key: bytes, *, app_id: str = APP_ID, token_lifetime: float = 3600.0
    ) -> None:
        self.app_id = app_id
        self.public_key = serialization.load_pem_private_key(private_key, None).public_key()
        self.token_lifetime = token_lifetime
        self.held: dict[tuple[str, int, str], Held] = {}
        self.pulls: dict[tuple[str, str], list[int]] = {}
        self.calls: list[Call] = []
        #: The path of every call as it arrives, before it is held or answered (`calls` has it
        #: once answered): a test can act while a call is in flight.
        self.arrivals: list[str] = []
        self.tokens: dict[str, float] = {}  # token -> expires (time.time())
        #: Seconds every call is held before it is answered (a slow GitHub).
        self.delay = 0.0
        #: Statuses to answer the next calls with, in order, instead of handling them.
        self.failures: list[int] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- running -------------------------------------------------------------------------------

    async def __aenter__(self) -> GithubStandIn:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/app/installations/{id}/access_tokens", self._access_token)
        app.router.add_post(
            "/repos/{owner}/{repo}/actions/runs/{run}/deployment_protection_rule", self._review
        )
        app.router.add_get("/repos/{owner}/{repo}/commits/{sha}/pulls", self._pulls)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what a test sets up and reads ---------------------------------------------------------

    def hold(self, repository: str, run_id: int, environment: str) -> Held:
        held = Held(repository, run_id, environment)
        self.held[(repository.lower(), run_id, environment)] = held
        return held

    def set_pulls(self, repository: str, sha: str, numbers: list[int]) -> None:
        self.pulls[(repository.lower(), sha)] = numbers

    def answers(self) -> list[Call]:
        """The answers GitHub took (204 with a state)."""
        return [
            c
            for c in self.calls
            if c.path.endswith("/deployment_protection_rule")
            and c.status == 204
            and c.body.get("state")
        ]

    # -- the API ---------------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.arrivals.append(request.path)
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures:
            status = self.failures.pop(0)
            response: web.StreamResponse = _error(status, "The stand-in was told to fail.")
        else:
            response = await handler(request)
        self.calls.append(Call(request.method, request.path, response.status, body, time.time()))
        return response

    async def _access_token(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return _error(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"])  # type: ignore[arg-type]
        except jwt.PyJWTError as error:
            return _error(401, f"A JSON web token could not be decoded ({error})")
        if str(claims.get("iss")) != self.app_id:
            return _error(401, "Integration not found")
        secret = f"ghs_{secrets.token_hex(16)}"
        expires = time.time() + self.token_lifetime
        self.tokens[secret] = expires
        stamp = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return web.json_response({"token": secret, "expires_at": stamp}, status=201)

    def _authorised(self, request: web.Request) -> bool:
        _, _, token = request.headers.get("Authorization", "").partition(" ")
        return self.tokens.get(token.strip(), 0.0) > time.time()

    async def _review(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return _error(401, "Bad credentials")
        body = json.loads(await request.read() or b"{}")
        repository = f"{request.match_info['owner']}/{request.match_info['repo']}".lower()
        key = (repository, int(request.match_info["run"]), str(body.get("environment_name", "")))
        held = self.held.get(key)
        if held is None:
            return _error(404, "Not Found")
        comment = str(body.get("comment", ""))
        if len(comment) > 1024:
            return _error(422, "comment is too long (maximum is 1024 characters)")
        state = body.get("state")
        if state is None:
            if len(held.reports) >= REPORTS_PER_DEPLOYMENT:
                return _error(422, "Too many status reports for this deployment")
            held.reports.append(comment)
            return web.Response(status=204)
        if state not in ("approved", "rejected"):
            return _error(422, "state must be approved or rejected")
        if held.state:
            return _error(422, "No pending deployment requests to approve or reject")
        held.state, held.comment = state, comment
        return web.Response(status=204)

    async def _pulls(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, "Bad credentials")
        repository = f"{request.match_info['owner']}/{request.match_info['repo']}"
        numbers = self.pulls.get((repository.lower(), request.match_info["sha"]), [])
        return web.json_response(
            [
                {"number": n, "html_url": f"https://github.com/{repository}/pull/{n}"}
                for n in numbers
            ]
        )


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


# -- webhooks, as GitHub sends them ----------------------------------------------------------------


def protection_rule_request(
    repository: str,
    environment: str,
    run_id: int,
    *,
    ref: str = "main",
    sha: str = "47efb7196c2a1a2fd3f52f2c59f0e2dd3d0e4d54",
    installation_id: int = 119022551,
    pull_requests: list[int] | None = None,
    api_url: str = "https://api.github.com",
) -> dict[str, Any]:
    """A `deployment_protection_rule` delivery shaped like GitHub's (see shared/github)."""
    owner, name = repository.split("/")
    return {
        "action": "requested",
        "environment": environment,
        "event": "push",
        "deployment_callback_url": (
            f"{api_url}/repos/{repository}/actions/runs/{run_id}/deployment_protection_rule"
        ),
        "deployment": {"id": run_id + 1, "environment": environment},
        "pull_requests": [
            {"number": n, "html_url": f"https://github.com/{repository}/pull/{n}"}
            for n in pull_requests or []
        ],
        "sha": sha,
        "ref": ref,
        "repository": {"id": 1, "name": name, "full_name": repository, "owner": {"login": owner}},
        "sender": {"login": "octocat", "id": 583231},
        "installation": {"id": installation_id},
        "workflow_run": {"id": run_id},
    }


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def deliver(
    url: str,
    payload: dict[str, Any] | bytes,
    *,
    event: str = "deployment_protection_rule",
    secret: str | None = WEBHOOK_SECRET,
    delivery: str | None = None,
    session: aiohttp.ClientSession | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST a webhook to `url` as GitHub does; `secret` None sends it unsigned."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/standin",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
    }
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(body, secret)
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            try:
                answer = await response.json(content_type=None)
            except json.JSONDecodeError:
                answer = {"_raw": await response.text()}
            return response.status, answer
    finally:
        if own:
            await session.close()

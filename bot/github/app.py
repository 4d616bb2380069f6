"""changebot as a GitHub App: installation tokens, and the few calls the gate makes.

Authentication is gidgethub's: the App's JWT, signed with its private key, buys an
installation token, which is kept until five minutes before it expires and then renewed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any

import aiohttp
from gidgethub import BadRequest, apps
from gidgethub.aiohttp import GitHubAPI

from workflows.model import pull_request_key

log = logging.getLogger(__name__)

USER_AGENT = "changebot"
#: An installation token is renewed this long before GitHub says it expires.
RENEW_BEFORE = 300.0
#: GitHub keeps at most 10 status reports per deployment, of at most 1,024 characters.
COMMENT_LIMIT = 1024
#: GitHub's answers meaning it will not list a commit's pull requests, now or on a retry.
CANNOT_LIST = (HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND, HTTPStatus.UNPROCESSABLE_ENTITY)


@dataclass
class _Token:
    token: str
    expires_at: float  # time.time()


class GithubApp:
    def __init__(
        self,
        app_id: str,
        private_key: bytes,
        api_url: str,
        *,
        timeout: float = 10.0,
        wall_clock: Any = time.time,
    ) -> None:
        self.app_id = app_id
        self.private_key = private_key
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.wall_clock = wall_clock
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[int, _Token] = {}
        self._renewing: dict[int, asyncio.Lock] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _api(self) -> GitHubAPI:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return GitHubAPI(self._session, USER_AGENT, base_url=self.api_url)

    async def installation_token(self, installation_id: int) -> str:
        """A token for the installation, renewed before it expires (one renewal at a time)."""
        lock = self._renewing.setdefault(installation_id, asyncio.Lock())
        async with lock:
            held = self._tokens.get(installation_id)
            if held is not None and held.expires_at - RENEW_BEFORE > self.wall_clock():
                return held.token
            answer = await apps.get_installation_access_token(
                self._api(),
                installation_id=str(installation_id),
                app_id=self.app_id,
                private_key=self.private_key,
            )
            expires = datetime.fromisoformat(str(answer["expires_at"]).replace("Z", "+00:00"))
            self._tokens[installation_id] = _Token(str(answer["token"]), expires.timestamp())
            log.info("GitHub installation %s: token renewed until %s", installation_id, expires)
            return str(answer["token"])

    async def review(
        self,
        repository: str,
        installation_id: int,
        run_id: int,
        environment: str,
        comment: str,
        state: str = "",
    ) -> None:
        """Approve or reject a deployment held by the protection rule (`state`), or, with no
        state, post a status report on it (a comment only)."""
        body: dict[str, str] = {"environment_name": environment, "comment": comment[:COMMENT_LIMIT]}
        if state:
            body["state"] = state
        path = f"/repos/{repository}/actions/runs/{run_id}/deployment_protection_rule"

        async def post(token: str) -> Any:
            return await self._api().post(path, data=body, oauth_token=token)

        await self._as_installation(installation_id, post)

    async def pull_requests_of(
        self, repository: str, installation_id: int, sha: str
    ) -> tuple[str, ...]:
        """The pull requests a commit belongs to, as `owner/repo#n`. GitHub refusing to say
        (403 or 404: on a private repository the app needs Pull requests: read; 422: no such
        commit) is none: the deployment is then tied by its ref alone."""
        path = f"/repos/{repository}/commits/{sha}/pulls"

        async def get(token: str) -> Any:
            return await self._api().getitem(path, oauth_token=token)

        try:
            found = await self._as_installation(installation_id, get)
        except BadRequest as error:
            if error.status_code not in CANNOT_LIST:
                raise
            log.warning(
                "GitHub would not list the pull requests of %s@%s (%s): tying it by its ref "
                "alone; on a private repository the app needs Pull requests: read",
                repository,
                sha[:7],
                int(error.status_code),
            )
            return ()
        keys = (pull_request_key(str(pr.get("html_url", ""))) for pr in found or [])
        return tuple(key for key in keys if key)

    async def _as_installation(
        self, installation_id: int, call: Callable[[str], Awaitable[Any]]
    ) -> Any:
        """`call(token)` with the installation's token; once more with a new one if GitHub
        no longer takes it (401: revoked, or this machine's clock is behind GitHub's)."""
        token = await self.installation_token(installation_id)
        try:
            return await call(token)
        except BadRequest as error:
            if error.status_code != HTTPStatus.UNAUTHORIZED:
                raise
            held = self._tokens.get(installation_id)
            if held is not None and held.token == token:  # not renewed meanwhile
                del self._tokens[installation_id]
            log.warning("GitHub installation %s: token refused (401); renewing", installation_id)
        return await call(await self.installation_token(installation_id))

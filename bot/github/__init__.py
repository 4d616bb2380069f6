"""changebot as a GitHub deployment protection rule: the webhook GitHub calls, the App that
answers, and the worker that decides and answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from bot.github.app import GithubApp
from bot.github.webhook import Webhook
from bot.github.worker import GithubGate
from bot.settings import Settings
from workflows.policy import Policy
from workflows.ports import Clock


@dataclass
class Github:
    worker: GithubGate
    webhook: Webhook


def connect(
    settings: Settings,
    engine: Engine,
    clock: Clock,
    policy: Policy,
    *,
    owner: str,
    lease: timedelta,
) -> Github | None:
    """The GitHub side, if GitHub is configured (ConfigError naming the variable if half)."""
    if not settings.github_enabled:
        return None
    app = GithubApp(settings.github_app_id, settings.github_private_key(), settings.github_api_url)
    worker = GithubGate(engine, clock, policy, app, owner=owner, lease=lease)
    webhook = Webhook(engine, clock, settings.github_webhook_secret, kick=worker.kick)
    return Github(worker, webhook)

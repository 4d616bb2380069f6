"""Configuration from the environment, checked once at start-up with one clear line per problem."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from storage.db import DEFAULT_URL
from workflows.durations import format_duration, parse_duration

SLACK_API_DEFAULT = "https://slack.com/api/"
GITHUB_API_DEFAULT = "https://api.github.com"
_HOW = "create the Slack app from manifest.yml (see the README's 'Install in a workspace')"


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


def _seconds(name: str, env: Mapping[str, str], default: float) -> float:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {value!r}.") from None
    if not 0.05 <= seconds <= 3600:
        raise ConfigError(f"{name} must be between 0.05 and 3600 seconds.")
    return seconds


def _public_url(env: Mapping[str, str]) -> str:
    value = env.get("CHANGEBOT_PUBLIC_URL", "").strip().rstrip("/")
    if value and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        raise ConfigError(
            f"CHANGEBOT_PUBLIC_URL must be the address people reach changebot at, such as "
            f"https://changebot.example.com, not {value!r}."
        )
    return value


#: How often digests of the audit trail are written, unless CHANGEBOT_DIGEST_EVERY says.
DIGEST_EVERY = timedelta(hours=1)
_DIGEST_EVERY_RANGE = (timedelta(minutes=1), timedelta(days=1))


def _digest_every(env: Mapping[str, str]) -> timedelta:
    value = env.get("CHANGEBOT_DIGEST_EVERY", "").strip()
    if not value:
        return DIGEST_EVERY
    try:
        every = parse_duration(value)
    except ValueError as error:
        raise ConfigError(f"CHANGEBOT_DIGEST_EVERY: {error}.") from None
    least, most = _DIGEST_EVERY_RANGE
    if not least <= every <= most:
        raise ConfigError(
            f"CHANGEBOT_DIGEST_EVERY must be between {format_duration(least)} and "
            f"{format_duration(most)}, not {value!r}."
        )
    return every


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_URL
    policy_path: str = ""
    bot_token: str = ""
    signing_secret: str = ""
    app_token: str = ""
    slack_api_url: str = SLACK_API_DEFAULT
    #: How often each replica's timer sweeps for due reminders and undelivered messages.
    sweep_seconds: float = 5.0
    #: How long a replica holds what it claimed before another may take it over.
    lease_seconds: float = 60.0
    #: The GitHub App that makes changebot a deployment protection rule (all optional).
    github_app_id: str = ""
    github_private_key_path: str = ""
    github_webhook_secret: str = ""
    github_api_url: str = GITHUB_API_DEFAULT
    #: Where people reach changebot from outside (https://changebot.example.com): the base of
    #: the calendar feed's URL that `changebot token create` prints.
    public_url: str = ""
    #: Signed digests of the audit trail: where they go and the key that signs them.
    digest_dir: str = ""
    digest_key_path: str = ""
    digest_every: timedelta = DIGEST_EVERY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        api = env.get("SLACK_API_URL", "").strip() or SLACK_API_DEFAULT
        return cls(
            database_url=env.get("DATABASE_URL", "").strip() or DEFAULT_URL,
            policy_path=env.get("CHANGEBOT_POLICY", "").strip(),
            bot_token=env.get("SLACK_BOT_TOKEN", "").strip(),
            signing_secret=env.get("SLACK_SIGNING_SECRET", "").strip(),
            app_token=env.get("SLACK_APP_TOKEN", "").strip(),
            # slack_sdk drops the last path segment of a base URL without a trailing slash.
            slack_api_url=api if api.endswith("/") else api + "/",
            sweep_seconds=_seconds("CHANGEBOT_SWEEP_SECONDS", env, 5.0),
            lease_seconds=_seconds("CHANGEBOT_LEASE_SECONDS", env, 60.0),
            github_app_id=env.get("GITHUB_APP_ID", "").strip(),
            github_private_key_path=env.get("GITHUB_APP_PRIVATE_KEY", "").strip(),
            github_webhook_secret=env.get("GITHUB_WEBHOOK_SECRET", "").strip(),
            github_api_url=(env.get("GITHUB_API_URL", "").strip() or GITHUB_API_DEFAULT).rstrip(
                "/"
            ),
            public_url=_public_url(env),
            digest_dir=env.get("CHANGEBOT_DIGEST_DIR", "").strip(),
            digest_key_path=env.get("CHANGEBOT_DIGEST_KEY", "").strip(),
            digest_every=_digest_every(env),
        )

    @property
    def digests_enabled(self) -> bool:
        return bool(self.digest_dir or self.digest_key_path)

    def check_digests(self) -> None:
        """Both digest settings or neither: half a configuration stops, naming what is missing."""
        how = "see the README's 'Signed digests'"
        if self.digest_dir and not self.digest_key_path:
            raise ConfigError(
                "CHANGEBOT_DIGEST_DIR is set but CHANGEBOT_DIGEST_KEY is not: give the path of "
                f"the private key that signs digests (`changebot audit keygen`); {how}."
            )
        if self.digest_key_path and not self.digest_dir:
            raise ConfigError(
                "CHANGEBOT_DIGEST_KEY is set but CHANGEBOT_DIGEST_DIR is not: give the "
                f"directory digests are written to, outside the database; {how}."
            )

    @property
    def github_enabled(self) -> bool:
        return bool(
            self.github_app_id or self.github_private_key_path or self.github_webhook_secret
        )

    def github_private_key(self) -> bytes:
        """The GitHub App's private key, checked to be one: ConfigError naming the variable."""
        how = "see the README's 'GitHub environments'"
        if not self.github_app_id.isdigit():
            raise ConfigError(
                "GITHUB_APP_ID must be your GitHub App's numeric ID (its 'About' page); "
                f"{'it is not set' if not self.github_app_id else 'it is not a number'}: {how}."
            )
        if not self.github_webhook_secret:
            raise ConfigError(
                f"GITHUB_WEBHOOK_SECRET is not set: give the webhook secret of your GitHub App; "
                f"{how}."
            )
        if not self.github_private_key_path:
            raise ConfigError(
                "GITHUB_APP_PRIVATE_KEY is not set: give the path of the App's private key "
                f"(.pem); {how}."
            )
        try:
            pem = Path(self.github_private_key_path).read_bytes()
        except OSError as error:
            raise ConfigError(
                f"GITHUB_APP_PRIVATE_KEY: cannot read {self.github_private_key_path} "
                f"({error.strerror})."
            ) from error
        try:
            serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as error:
            raise ConfigError(
                f"GITHUB_APP_PRIVATE_KEY: {self.github_private_key_path} is not an unencrypted "
                "PEM private key (download one from your GitHub App's settings)."
            ) from error
        return pem

    def check_slack(self, *, socket_mode: bool) -> None:
        """Refuse to start without usable Slack credentials, naming the variable."""
        if not self.bot_token:
            raise ConfigError(
                "SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-...) from "
                f"your app's 'OAuth & Permissions' page; {_HOW}."
            )
        if not self.bot_token.startswith("xoxb-"):
            raise ConfigError(
                "SLACK_BOT_TOKEN does not look like a bot token (it starts with xoxb-): copy "
                "the Bot User OAuth Token from your app's 'OAuth & Permissions' page."
            )
        if socket_mode:
            if not self.app_token.startswith("xapp-"):
                what = "is not set" if not self.app_token else "does not start with xapp-"
                raise ConfigError(
                    f"SLACK_APP_TOKEN {what}: Socket Mode needs an app-level token with the "
                    "connections:write scope, from your app's 'Basic Information' page."
                )
            return
        if not self.signing_secret:
            raise ConfigError(
                "SLACK_SIGNING_SECRET is not set: copy the Signing Secret from your app's "
                f"'Basic Information' page; {_HOW}."
            )
        if not re.fullmatch(r"[0-9a-f]{32}", self.signing_secret):
            raise ConfigError(
                "SLACK_SIGNING_SECRET does not look like a signing secret (32 hexadecimal "
                "characters): copy it from your app's 'Basic Information' page."
            )

"""GitHub's settings are all given or none: half of them stops start-up with one line that
names the variable and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import GITHUB_API_DEFAULT, ConfigError, Settings
from standin.github import new_private_key


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("github") / "app.pem"
    path.write_bytes(new_private_key())
    return path


def test_without_any_github_setting_github_is_off() -> None:
    settings = Settings.from_env({})

    assert not settings.github_enabled
    assert settings.github_api_url == GITHUB_API_DEFAULT


def test_all_three_settings_give_the_apps_key(pem: Path) -> None:
    settings = Settings.from_env(
        {
            "GITHUB_APP_ID": "123",
            "GITHUB_APP_PRIVATE_KEY": str(pem),
            "GITHUB_WEBHOOK_SECRET": "s3cret",
            "GITHUB_API_URL": "https://ghe.example.com/api/v3/",
        }
    )

    assert settings.github_private_key() == pem.read_bytes()
    assert settings.github_api_url == "https://ghe.example.com/api/v3"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GITHUB_WEBHOOK_SECRET": "s"}, "GITHUB_APP_ID must be your GitHub App's numeric ID"),
        ({"GITHUB_APP_ID": "my-app"}, "GITHUB_APP_ID must be your GitHub App's numeric ID"),
        ({"GITHUB_APP_ID": "1"}, "GITHUB_WEBHOOK_SECRET is not set"),
        ({"GITHUB_APP_ID": "1", "GITHUB_WEBHOOK_SECRET": "s"}, "GITHUB_APP_PRIVATE_KEY is not set"),
        (
            {"GITHUB_APP_ID": "1", "GITHUB_WEBHOOK_SECRET": "s", "GITHUB_APP_PRIVATE_KEY": "/no"},
            "GITHUB_APP_PRIVATE_KEY: cannot read /no",
        ),
    ],
)
def test_half_a_github_configuration_names_what_is_missing(
    env: dict[str, str], message: str
) -> None:
    settings = Settings.from_env(env)

    assert settings.github_enabled
    with pytest.raises(ConfigError, match=message):
        settings.github_private_key()


def test_a_key_that_is_not_a_pem_private_key_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "app.pem"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    settings = Settings.from_env(
        {"GITHUB_APP_ID": "1", "GITHUB_WEBHOOK_SECRET": "s", "GITHUB_APP_PRIVATE_KEY": str(bad)}
    )

    with pytest.raises(ConfigError, match="is not an unencrypted PEM private key"):
        settings.github_private_key()

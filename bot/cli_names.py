"""`changebot policy check` on the policy's @handles and #names: resolved in Slack when a bot
token is set, as `changebot serve` will resolve them; listed as written when not, offline."""

from __future__ import annotations

import asyncio

from bot.settings import ConfigError, Settings
from workflows.names import Reference, Workspace, nobody_approves, references
from workflows.policy import Policy


def print_names(policy: Policy, settings: Settings, source: str) -> None:
    """The names and what they stand for, then who cannot approve. An unknown name raises
    PolicyError, as it stops `changebot serve`."""
    named = [r for r in references(policy) if r.is_name]
    if not settings.bot_token:
        if named:
            print("  names (resolved in Slack when changebot serve starts; set SLACK_BOT_TOKEN")
            print("  to resolve them now):")
            for reference in named:
                print(f"    {reference.key}: {reference.written}")
        _print_warnings(nobody_approves(policy, Workspace()))
        return
    try:
        resolved, warnings, _ = asyncio.run(_resolve(policy, settings, source))
    except ConfigError as error:
        print(f"  names: not resolved: {error}")
        _print_warnings(nobody_approves(policy, Workspace()))
        return
    if named:
        print("  names, as Slack resolves them now:")
        for reference, found in resolved:
            print(f"    {reference.key}: {reference.written} is {found}")
    _print_warnings(warnings)


async def _resolve(
    policy: Policy, settings: Settings, source: str
) -> tuple[tuple[tuple[Reference, str], ...], list[str], Policy]:
    from bot.app import web_client
    from bot.names import PolicyNames

    names = PolicyNames(policy, web_client(settings), source)
    resolved, warnings = await names.at_start()
    return names.current.names, warnings, resolved


def resolved(policy: Policy, settings: Settings, source: str) -> Policy:
    """The policy with its names resolved in Slack, for a command that compares or records
    IDs (`policy reviewed`); ConfigError when it has names and no token to resolve them."""
    if not any(r.is_name for r in references(policy)):
        return policy
    if not settings.bot_token:
        raise ConfigError(
            "the policy names people, groups or channels by @handle or #name: set "
            "SLACK_BOT_TOKEN so changebot can resolve them in Slack, or write their IDs."
        )
    return asyncio.run(_resolve(policy, settings, source))[2]


def _print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"  warning: {warning}")

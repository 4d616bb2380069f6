"""Listeners, by Slack surface. Each one: ack, parse, call one use case, render."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.listeners import buttons, catalog, commands, home, modals, unknown


def register(app: AsyncApp) -> None:
    commands.register(app)
    buttons.register(app)
    modals.register(app)
    home.register(app)
    catalog.register(app)
    unknown.register(app)  # last: it answers only what no other listener claims

"""The Web API methods the stand-in implements, by Slack method name."""

from standin.api import chat, conversations, directory, files, views
from standin.api.base import ApiRequest, Handler, SlackState

HANDLERS: dict[str, Handler] = {
    **chat.HANDLERS,
    **views.HANDLERS,
    **conversations.HANDLERS,
    **directory.HANDLERS,
    **files.HANDLERS,
}

# Slack issues app-level (xapp-) tokens for this method only, and refuses them elsewhere.
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})

__all__ = ["APP_TOKEN_METHODS", "HANDLERS", "ApiRequest", "Handler", "SlackState"]

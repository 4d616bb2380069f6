"""Errors the stand-in answers with, shaped like Slack's Web API failures."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Slack Web API error, answered as HTTP 200 `{"ok": false, "error": ...}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def to_body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}


def invalid_arguments(*messages: str) -> ApiError:
    """Slack reports malformed arguments with a list of human-readable messages."""
    return ApiError("invalid_arguments", response_metadata={"messages": list(messages)})

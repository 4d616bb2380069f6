"""The bot's logs: one line per request and per state change, each carrying the ID of the
request it belongs to, as text for people or as one JSON object per line for log shippers.

Secrets never reach the output: slack_sdk and Bolt log requests (with their tokens) at DEBUG,
so those loggers are held at INFO; and a filter on the handler redacts anything shaped like a
Slack token, and the configured secrets, from every record that gets through regardless."""

from __future__ import annotations

import json
import logging
import random
import re
import sys
import time
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime

#: The ID of the request being served, set by `Served`. Listener tasks
#: and worker threads copy the context they start in, so their records carry it too.
request_id: ContextVar[str] = ContextVar("request_id", default="-")
#: Where request IDs come from: a generator seeded once from the system's randomness. An ID
#: labels log lines and guards nothing, so it need not cost a system call per request, as
#: uuid4's os.urandom does (one that also lets go of the interpreter's lock in a burst).
_ids = random.Random()

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
#: Loggers that print tokens or request bodies below INFO.
CHATTY = ("slack_sdk", "slack_bolt", "aiohttp", "sqlalchemy", "apscheduler")
#: The loggers our Web API clients and our Bolt app write to (see `own_level`).
WEB_API_LOGGER = "changebot.slack.web_api"
BOLT_LOGGER = "changebot.slack.bolt"
_TOKEN = re.compile(r"\bx(?:ox[abpre]|app)-[A-Za-z0-9-]+")
REDACTED = "[redacted]"


def new_request_id() -> str:
    """12 hex digits (48 random bits): unique enough to follow one request through the logs of
    every replica."""
    return f"{_ids.getrandbits(48):012x}"


class Served:
    """One request served, over HTTP or Socket Mode: inside `with`, every log line carries its
    new ID; on leaving, one line of its own, `what`, its status and how long it took (500
    unless `status` was set, as when it failed)."""

    __slots__ = ("_started", "_token", "id", "log", "quiet", "status", "what")

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.id = new_request_id()
        self.status = 500
        #: Counted elsewhere instead of logged (the gate's answers, see bot/api/tally.py).
        self.quiet = False

    def __enter__(self) -> Served:
        self._token = request_id.set(self.id)
        self._started = time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        if not self.quiet:
            elapsed = (time.monotonic() - self._started) * 1000
            self.log.info("%s %s %.1fms", self.what, self.status, elapsed)
        request_id.reset(self._token)


class WithRequestId(logging.Filter):
    """Adds `request_id` to every record, "-" outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class RedactSecrets(logging.Filter):
    """Replaces Slack tokens and the given secrets in a record's message and traceback."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return _TOKEN.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, and ref if known."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id.get()),
        }
        ref = getattr(record, "ref", None)
        if ref:
            line["ref"] = ref
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def configure(log_format: str = "text", *, secrets: Iterable[str] = ()) -> None:
    """Send INFO and above to stderr, in `log_format` ("text" or "json"), secrets redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler.addFilter(WithRequestId())
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in CHATTY:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))


def own_level(name: str) -> logging.Logger:
    """A logger for slack_sdk or Bolt to write to, with a level of its own (INFO).

    Both decide whether to build a debug line by `logger.level <= DEBUG`: the logger's own
    level, not the effective one. A logger left NOTSET (0) passes, so slack_sdk formatted every
    Web API request and response in full (a whole form, for views.open) and Bolt named each
    middleware, on every call, for lines that were then thrown away."""
    logger = logging.getLogger(name)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return logger

"""Message prose: jinja2 templates with Slack's escaping on by default.

Slack's mrkdwn treats `&`, `<` and `>` as control characters, so text a person wrote has
exactly those three escaped (`&amp;`, `&lt;`, `&gt;`) and nothing else: `<!channel>` typed
into a title shows literally and pings nobody, `<https://evil|docs>` does not become a link,
and "we've", emoji and right-to-left text are left alone. HTML autoescape is off on purpose.

Every `{{ value }}` is escaped unless the value is `Mrkdwn`: markup the bot built itself
(a mention of a known user ID, a group mention, a link to a checked URL, a date).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from workflows.model import GITHUB_PIPELINE, PIPELINE_PREFIX, SYSTEM, is_pipeline

#: Longest text Slack accepts in each place (characters).
MRKDWN_LIMIT = 3000  # a section's text, a context element
FIELD_LIMIT = 2000  # one of a section's fields
HEADER_LIMIT = 150  # a header block's plain_text
BUTTON_LIMIT = 75  # a button's label
OPTION_LIMIT = 75  # a select option's text and description
MESSAGE_TEXT_LIMIT = 3000  # kept well below chat.postMessage's 40,000 for the fallback text

CUT_MARKER = "… (cut)"
BOT_NAME = "changebot"

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
_URL = re.compile(r"^https?://[^\s<>|]+$")


class Mrkdwn(str):
    """Text the bot built itself, already valid mrkdwn: interpolated as it is."""

    __slots__ = ()


def escape(value: object) -> str:
    """Escape `&`, `<` and `>` Slack-style, unless the value is bot-built `Mrkdwn`."""
    if isinstance(value, Mrkdwn):
        return str(value)
    text = str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user_id: object) -> Mrkdwn:
    """`<@U…>` for a Slack user ID, "changebot" for the process itself, a pipeline by its
    token's name (GitHub by its own), else the escaped text."""
    user_id = str(user_id)
    if user_id == SYSTEM:
        return Mrkdwn(BOT_NAME)
    if is_pipeline(user_id):
        return pipeline(user_id.removeprefix(PIPELINE_PREFIX))
    if _USER_ID.match(user_id):
        return Mrkdwn(f"<@{user_id}>")
    return Mrkdwn(escape(user_id))


def pipeline(name: str) -> Mrkdwn:
    """A pipeline as people read it: `ci-prod` (pipeline), or GitHub for its own rule."""
    if name == GITHUB_PIPELINE:
        return Mrkdwn("GitHub")
    return Mrkdwn(f"pipeline `{escape(name.replace('`', ''))}`")


def mentions(user_ids: object) -> Mrkdwn:
    """Several people, comma-separated."""
    if isinstance(user_ids, str):
        user_ids = [user_ids]
    if not isinstance(user_ids, list | tuple | set | frozenset):
        return Mrkdwn(escape(user_ids))
    return Mrkdwn(", ".join(mention(str(u)) for u in user_ids))


def group_mention(group_id: str) -> Mrkdwn:
    if _GROUP_ID.match(group_id):
        return Mrkdwn(f"<!subteam^{group_id}>")
    return Mrkdwn(escape(group_id))


def channel_mention(channel_id: str) -> Mrkdwn:
    if re.fullmatch(r"[CG][A-Z0-9]{2,}", channel_id):
        return Mrkdwn(f"<#{channel_id}>")
    return Mrkdwn(escape(channel_id))


def is_web_address(url: str) -> bool:
    return bool(_URL.match(url))


def link(url: str, label: object = None) -> Mrkdwn:
    """A link for an http(s) URL (the label escaped); anything else shown literally."""
    if not is_web_address(url):
        return Mrkdwn(escape(url))
    shown = escape(label if label is not None else url)
    return Mrkdwn(f"<{url.replace('&', '&amp;')}|{shown}>")


def slack_date(moment: datetime) -> Mrkdwn:
    """A date each reader sees in their own time zone, with a UTC fallback."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    fallback = utc.strftime("%Y-%m-%d %H:%M UTC")
    return Mrkdwn(f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>")


def truncate(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else cut short with a visible marker.

    The cut never splits an escape (`&amp;`) or a bot-built `<…>` token, so what remains is
    still valid mrkdwn. A `Mrkdwn` value stays `Mrkdwn`.
    """
    if len(text) <= limit:
        return text
    if limit <= len(CUT_MARKER):
        return CUT_MARKER[:limit]
    kept = text[: limit - len(CUT_MARKER)]
    amp = kept.rfind("&")
    if amp != -1 and ";" not in kept[amp:] and len(kept) - amp < len("&amp;"):
        kept = kept[:amp]
    opened = kept.rfind("<")
    if opened != -1 and ">" not in kept[opened:]:
        kept = kept[:opened]
    cut = kept.rstrip() + CUT_MARKER
    return Mrkdwn(cut) if isinstance(text, Mrkdwn) else cut


def cut(value: object, limit: int) -> str:
    """Template filter: cut a person's text before it is escaped (so escapes stay whole)."""
    return truncate(str(value), limit)


def plain_label(text: str, limit: int) -> str:
    """Text for a plain_text object (Slack parses nothing there): one line, within `limit`."""
    return truncate(" ".join(text.split()), limit)


def _finalize(value: Any) -> str:
    return escape(value)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("bot", "templates"),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=_finalize,
        # The templates ship with the bot: no need to look at the disk for a newer copy every
        # time one is used (that was a stat() per card, reply and form).
        auto_reload=False,
    )
    env.filters.update(
        mention=mention,
        mentions=mentions,
        pipeline=pipeline,
        group_mention=group_mention,
        channel_mention=channel_mention,
        link=link,
        slack_date=slack_date,
        cut=cut,
        safe_mrkdwn=Mrkdwn,
    )
    return env


def render(template_name: str, **context: Any) -> str:
    """Render a whole template; every interpolated value is escaped unless it is `Mrkdwn`."""
    return environment().get_template(template_name).render(**context).strip()


def has_macro(template_name: str, name: str) -> bool:
    """Whether a template of several macros (`replies.j2`: one per audit action) has `name`."""
    module = environment().get_template(template_name).module
    return not name.startswith("_") and callable(getattr(module, name, None))


def render_macro(template_name: str, name: str, **context: Any) -> str:
    """Call one macro of a template with keyword arguments; escaping as for `render`."""
    if not has_macro(template_name, name):
        raise LookupError(f"{template_name} has no macro {name!r}")
    found = getattr(environment().get_template(template_name).module, name)
    return str(found(**context)).strip()

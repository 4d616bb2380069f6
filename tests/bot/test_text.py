"""Message prose: Slack's escaping by default, bot-built markup by exception, cuts with a
visible marker."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from jinja2 import UndefinedError

from bot import text
from bot.text import CUT_MARKER, Mrkdwn
from tests.bot.blockkit import HOSTILE, HOSTILE_ESCAPED, UNICODE


def test_escape_touches_only_ampersand_and_angle_brackets() -> None:
    assert text.escape(HOSTILE) == HOSTILE_ESCAPED
    assert text.escape('we\'ve "quoted" it *bold* _it_') == 'we\'ve "quoted" it *bold* _it_'
    assert text.escape(UNICODE) == UNICODE


def test_bot_built_markup_is_not_escaped() -> None:
    assert text.escape(Mrkdwn("<@UANNA>")) == "<@UANNA>"


def test_every_interpolated_value_is_escaped_unless_it_is_mrkdwn() -> None:
    env = text.environment()
    template = env.from_string("{{ a }} | {{ b }} | {{ a|mention }} | {{ b|safe_mrkdwn }}")
    rendered = template.render(a="UANNA", b="<!here> & co")
    assert rendered == "UANNA | &lt;!here&gt; &amp; co | <@UANNA> | <!here> & co"


def test_html_autoescape_is_off() -> None:
    assert text.environment().from_string("{{ v }}").render(v='we\'ve "won"') == ('we\'ve "won"')


def test_a_missing_value_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(UndefinedError):
        text.environment().from_string("{{ nothing }}").render()


def test_mentions_only_for_slack_ids_and_changebot_for_the_system() -> None:
    assert text.mention("UANNA") == "<@UANNA>"
    assert text.mention("WENTERPRISE1") == "<@WENTERPRISE1>"
    assert text.mention("system") == "changebot"
    assert text.mention("<!channel>") == "&lt;!channel&gt;"
    assert text.mentions(["UANNA", "UBOB"]) == "<@UANNA>, <@UBOB>"
    assert text.group_mention("SCAB") == "<!subteam^SCAB>"
    assert text.group_mention("S1|x> <!here") == "S1|x&gt; &lt;!here"


def test_links_are_built_only_for_web_addresses() -> None:
    assert text.link("https://example.com/a?b=1&c=2", "PR") == (
        "<https://example.com/a?b=1&amp;c=2|PR>"
    )
    assert (
        text.link("https://example.com", "<b> & co") == "<https://example.com|&lt;b&gt; &amp; co>"
    )
    assert text.link("javascript:alert(1)", "x") == "javascript:alert(1)"
    assert text.link("https://evil|docs") == "https://evil|docs"
    assert text.link("<https://evil|docs>") == "&lt;https://evil|docs&gt;"


def test_dates_show_in_each_readers_time_zone_with_a_utc_fallback() -> None:
    moment = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    assert text.slack_date(moment) == (
        f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|2026-11-24 09:30 UTC>"
    )


def test_short_text_is_not_cut() -> None:
    assert text.truncate("short", 10) == "short"
    assert text.truncate("x" * 10, 10) == "x" * 10


def test_long_text_is_cut_with_a_visible_marker_within_the_limit() -> None:
    cut = text.truncate("word " * 1000, 3000)
    assert len(cut) <= 3000
    assert cut.endswith(CUT_MARKER)


def test_a_cut_never_splits_an_escape_or_a_bot_token() -> None:
    escaped = text.escape("&" * 100)
    for limit in range(10, 40):
        cut = text.truncate(escaped, limit)
        assert len(cut) <= limit
        assert cut.removesuffix(CUT_MARKER).replace("&amp;", "") == ""
    token = Mrkdwn("see <https://example.com/a-long-path|the runbook> now")
    for limit in range(10, len(token)):
        kept = text.truncate(token, limit).removesuffix(CUT_MARKER)
        assert kept.count("<") == kept.count(">")
    assert isinstance(text.truncate(token, 20), Mrkdwn)


def test_every_template_compiles() -> None:
    env = text.environment()
    names = env.list_templates(extensions=["j2"])
    assert {"card.j2", "replies.j2", "notices.j2", "home.j2", "help.j2"} <= set(names)
    assert {"report.html.j2", "report_change.html.j2"} <= set(names)
    # HTML pages are compiled by their own environment, which escapes HTML.
    for name in names:
        if not name.endswith(".html.j2"):
            env.get_template(name)
    from bot.views.report import environment

    html = environment()
    assert callable(html.autoescape) and html.autoescape("report.html.j2")
    for name in names:
        if name.endswith(".html.j2"):
            html.get_template(name)


def test_render_macro_refuses_a_macro_that_is_not_there() -> None:
    with pytest.raises(LookupError):
        text.render_macro("replies.j2", "no_such_action")
    assert not text.has_macro("replies.j2", "_private")


def test_templates_are_read_from_disk_once(monkeypatch: pytest.MonkeyPatch) -> None:
    text.has_macro("replies.j2", "approved")  # loaded
    looks: list[str] = []
    real_isfile = os.path.isfile
    monkeypatch.setattr(os.path, "isfile", lambda path: looks.append(path) or real_isfile(path))
    for _ in range(3):
        text.has_macro("replies.j2", "approved")
    assert looks == []

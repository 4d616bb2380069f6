"""`/change list WORD` with a word it does not know names the word back, cut and escaped: a
paste of 5,000 characters is not echoed whole, and `<!channel>` notifies nobody."""

from __future__ import annotations

from typing import Any, cast

from bot.listeners.commands import list_response


async def test_an_unknown_list_is_named_back_cut_and_escaped() -> None:
    nobody = cast(Any, None)  # an unknown list is answered before anything is looked up

    long = await list_response(nobody, "U0ALICE", "x" * 5000)
    channel = await list_response(nobody, "U0ALICE", "<!channel>")

    assert long["text"].startswith("I can list mine, open or awaiting-me changes, not 'xxx")
    assert len(long["text"]) < 120
    assert channel["text"].endswith("not '&lt;!channel&gt;'.")

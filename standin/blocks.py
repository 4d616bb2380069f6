"""Block Kit bookkeeping Slack does on the server side: ids for blocks, finding elements.

Slack gives every block without a `block_id` a random one, and interaction payloads name the
block an element lives in; the stand-in and the driver both need to find elements by action_id.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from typing import Any, TypeVar

Block = dict[str, Any]
T = TypeVar("T")

# Seeded so that two runs of a test produce the same ids, which keeps failures reproducible.
_ids = random.Random(20231123)


def _random_id() -> str:
    return "".join(_ids.choices(string.ascii_letters + string.digits, k=5))


def json_copy(value: T) -> T:
    """A deep copy of JSON-shaped data (all the stand-in keeps): about ten times cheaper than
    copy.deepcopy, which matters because the stand-in shares the machine with the bot it serves
    in the benchmarks."""
    copied: T = json.loads(json.dumps(value))
    return copied


def with_block_ids(blocks: list[Block], *, copy: bool = True) -> list[Block]:
    """A copy of `blocks` (or, without `copy`, `blocks` itself) where each block has a
    block_id and each element an action_id, as Slack stores them."""
    stored = json_copy(blocks) if copy else blocks
    for block in stored:
        if isinstance(block, dict) and not block.get("block_id"):
            block["block_id"] = _random_id()
    for _, element in interactive_elements(stored):
        if element.get("type") not in (None, "image", "mrkdwn", "plain_text"):
            element.setdefault("action_id", _random_id())
    return stored


def interactive_elements(blocks: list[Block]) -> Iterator[tuple[Block, Block]]:
    """(block, element) for every element that can carry an action_id."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        # Other blocks have "elements" too (context, rich_text), but nothing to act on.
        if block.get("type") == "actions":
            for element in block.get("elements") or []:
                if isinstance(element, dict):
                    yield block, element
        for key in ("accessory", "element"):
            element = block.get(key)
            if isinstance(element, dict):
                yield block, element


def find_element(blocks: list[Block], action_id: str) -> tuple[Block, Block] | None:
    """The (block, element) whose action_id is `action_id`, or None."""
    return next(
        ((b, e) for b, e in interactive_elements(blocks) if e.get("action_id") == action_id), None
    )


def input_blocks(blocks: list[Block]) -> Iterator[Block]:
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "input":
            yield block

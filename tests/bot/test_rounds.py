"""Work brought by many requests at once is done in rounds: everything that came together in
one, each told its own result, or the round's error."""

from __future__ import annotations

import asyncio

import pytest

from bot.rounds import Rounds


@pytest.mark.parametrize("in_thread", [False, True])
async def test_what_comes_together_is_done_in_one_round_each_getting_its_result(
    in_thread: bool,
) -> None:
    rounds_seen: list[list[int]] = []
    after: list[int] = []

    def double(items: list[int]) -> list[int]:
        rounds_seen.append(items)
        return [2 * i for i in items]

    rounds = Rounds(double, in_thread=in_thread, after=lambda r: after.append(len(r)))

    results = await asyncio.gather(*(rounds.submit(i) for i in range(30)))
    alone = await rounds.submit(7)

    assert results == [2 * i for i in range(30)] and alone == 14
    assert rounds_seen == [list(range(30)), [7]]
    assert after == [30, 1]


async def test_a_round_that_fails_fails_each_of_its_items_and_the_next_round_goes_on() -> None:
    def fragile(items: list[int]) -> list[int]:
        if 13 in items:
            raise RuntimeError("the database is down")
        return items

    rounds = Rounds(fragile, in_thread=False, batch=5)

    results = await asyncio.gather(
        *(rounds.submit(i) for i in range(10, 20)), return_exceptions=True
    )

    assert [r if isinstance(r, int) else "error" for r in results] == [
        *(["error"] * 5),
        15,
        16,
        17,
        18,
        19,
    ]
    assert str(results[0]) == "the database is down"

"""The gate's front desk: questions from many pipelines answered together, one commit each
round, like a database's group commit.

A question waits in a list while a round is being answered; the next round takes every
question that came meanwhile (up to `BATCH`), checks their tokens in one query and answers
and records them all in one transaction (workflows.gate.ask_many). Fifty pipelines asking
at once cost a few commits, not fifty; one pipeline alone is answered at once. A failure
reaches every question of its round as an error, never as an answer: the gate fails closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import Engine

from storage import tokens
from storage.uow import SqlUnitOfWork
from workflows.errors import StaleChange
from workflows.gate import Answer, Question, ask_many, record_answers
from workflows.policy import Policy
from workflows.ports import Clock
from workflows.tokens import Scope, refusal

log = logging.getLogger(__name__)

#: Questions answered in one transaction, at most.
BATCH = 100
#: Another replica (or an approval) saved a change of the round first: answer it again.
CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class Refused:
    """A question the token may not ask: 401 (unknown or revoked) or 403 (wrong scope)."""

    status: int
    message: str


Waiting = tuple[str, Question, "asyncio.Future[Answer | Refused]"]


class GateDesk:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        policy: Policy,
        *,
        kick: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.policy = policy
        self.kick = kick
        self._waiting: list[Waiting] = []
        self._answering: asyncio.Task[None] | None = None

    async def ask(self, credential: str, question: Question) -> Answer | Refused:
        """Answer `question` for the token whose secret hashes to `credential`."""
        future: asyncio.Future[Answer | Refused] = asyncio.get_running_loop().create_future()
        self._waiting.append((credential, question, future))
        if self._answering is None:
            self._answering = asyncio.create_task(self._answer_rounds(), name="gate-desk")
        return await future

    async def _answer_rounds(self) -> None:
        try:
            while self._waiting:
                round_, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
                try:
                    results = await asyncio.to_thread(self._answer, [(c, q) for c, q, _ in round_])
                except Exception as error:  # fail closed: an error, never an answer
                    log.exception("the gate could not answer %d questions", len(round_))
                    for _, _, future in round_:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, _, future), result in zip(round_, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                if any(isinstance(r, Answer) and r.news for r in results):
                    self.kick()
        finally:
            self._answering = None

    def _answer(self, round_: list[tuple[str, Question]]) -> list[Answer | Refused]:
        """The tokens checked and the questions answered and recorded, in one transaction;
        again on the changes as they are now if one was saved meanwhile."""
        for attempt in range(CONFLICT_RETRIES):
            try:
                return self._answer_once(round_)
            except StaleChange:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
                log.info("a change asked about was saved meanwhile; answering again")
        raise AssertionError("unreachable")

    def _answer_once(self, round_: list[tuple[str, Question]]) -> list[Answer | Refused]:
        uow = SqlUnitOfWork(self.engine)
        with uow:
            now = self.clock.now()
            known = tokens.authenticate(uow.session, {c for c, _ in round_}, now)
            results: list[Answer | Refused | None] = []
            allowed: list[Question] = []
            for credential, question in round_:
                token = known.get(credential)
                refused = refusal(token, Scope.GATE)
                if refused is not None or token is None:
                    status, message = refused or (401, "")
                    results.append(Refused(status, message))
                    continue
                asked = replace(question.asked, pipeline=token.name)
                allowed.append(replace(question, asked=asked))
                results.append(None)
            answers = iter(record_answers(uow, now, self.policy, allowed) if allowed else [])
            uow.commit()
        return [r if r is not None else next(answers) for r in results]


def ask_again_if_stale(
    engine: Engine, clock: Clock, policy: Policy, questions: list[Question]
) -> list[Answer]:
    """Answer and record `questions`; if another replica (or an approval) saved one of their
    changes meanwhile, answer again on the change as it is now."""
    if not questions:
        return []
    for _ in range(CONFLICT_RETRIES - 1):
        try:
            return ask_many(SqlUnitOfWork(engine), clock, policy, questions)
        except StaleChange:
            log.info("a change asked about was saved meanwhile; answering again")
    return ask_many(SqlUnitOfWork(engine), clock, policy, questions)

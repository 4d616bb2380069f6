"""The gate's front desk: the questions of many pipelines answered in rounds (bot/rounds.py),
their tokens checked and their answers recorded in one transaction per round. A round that
fails reaches each of its questions as an error, never as an answer: the gate fails closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.rounds import Rounds
from storage import tokens
from storage.db import is_sqlite
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
        self._rounds: Rounds[tuple[str, Question], Answer | Refused] = Rounds(
            self._answer,
            in_thread=not is_sqlite(engine),
            batch=BATCH,
            name="gate-desk",
            after=self._shown,
        )

    async def ask(self, credential: str, question: Question) -> Answer | Refused:
        """Answer `question` for the token whose secret hashes to `credential`."""
        return await self._rounds.submit((credential, question))

    def _shown(self, results: Sequence[Answer | Refused | BaseException]) -> None:
        """News for a change's card: the publisher looks now."""
        if any(isinstance(r, Answer) and r.news for r in results):
            self.kick()

    def _answer(self, round_: list[tuple[str, Question]]) -> Sequence[Answer | Refused | Exception]:
        """The tokens checked and the questions answered and recorded, in one transaction;
        again on the changes as they are now if one was saved meanwhile. A round that fails
        on anything but the database (which fails every question: the gate fails closed) is
        answered again a question at a time, so that what one pipeline sent fails it alone."""
        try:
            return self._answer_again_if_stale(round_)
        except SQLAlchemyError:
            raise
        except Exception:
            if len(round_) == 1:
                raise
            log.exception("a round of %d questions failed; answering each alone", len(round_))
        alone: list[Answer | Refused | Exception] = []
        for item in round_:
            try:
                alone.extend(self._answer_again_if_stale([item]))
            except Exception as error:
                alone.append(error)
        return alone

    def _answer_again_if_stale(self, round_: list[tuple[str, Question]]) -> list[Answer | Refused]:
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
                allowed.append(question.asked_by(token.name))
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

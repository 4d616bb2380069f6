"""The gate's front desk: the questions of many pipelines answered in rounds (bot/rounds.py),
their tokens checked and their answers recorded in one transaction per round. A round that
fails reaches each of its questions as an error, never as an answer: the gate fails closed.

The desk keeps a database connection of its own from round to round, in autocommit (a round
sends its own BEGIN and COMMIT with its statements), rather than take one from the pool and
set it up for every round. A connection the server dropped meanwhile (a restart, an idle
timeout) fails the round's first statement, before anything is written; the round is then
answered again on a new connection, once. (Lost once the round's COMMIT is sent, it may
have been committed: the round fails, 503, rather than be recorded twice.)
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, ResourceClosedError, SQLAlchemyError

from bot.api.tally import Tally
from bot.rounds import Rounds
from storage import driver, tokens
from storage.db import is_sqlite
from storage.uow import SqlUnitOfWork, sends_its_transactions
from workflows.errors import StaleChange
from workflows.gate import Answer, Question, ask_many, record_answers
from workflows.policy import Policy
from workflows.ports import Clock
from workflows.tokens import Scope, refusal

log = logging.getLogger(__name__)

#: Questions answered in one transaction, at most.
BATCH = 100
#: Tokens remembered as good, at most (a hint for locking early; see _answer_once).
GOOD_TOKENS = 1024
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
        self._connection: Connection | None = None
        self._closed = False
        #: The hashes of tokens good in a recent round (see _answer_once).
        self._good: OrderedDict[str, None] = OrderedDict()
        #: Whether the round under way has sent its writes and COMMIT.
        self._committing = False
        #: Rounds run one at a time; this guards the connection against close() during one.
        self._lock = threading.Lock()
        #: The answers and the rounds, summed up in the log a line a minute.
        self.tally = Tally()
        self._rounds: Rounds[tuple[str, Question], Answer | Refused] = Rounds(
            self._answer,
            in_thread=not is_sqlite(engine),
            batch=BATCH,
            name="gate-desk",
            after=self._shown,
            timed=self.tally.round,
        )

    async def ask(self, credential: str, question: Question) -> Answer | Refused:
        """Answer `question` for the token whose secret hashes to `credential`."""
        return await self._rounds.submit((credential, question))

    async def close(self) -> None:
        """Give the desk's connection back, once a round under way is done; a question asked
        after this is refused (503)."""
        if self._rounds.in_thread:
            await asyncio.to_thread(self._close)
        else:
            self._close()

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            self._forget_connection()

    def _bind(self) -> Connection:
        """The desk's connection, opened at its first round (see the module's docstring)."""
        if self._closed:
            # A database error: the question is refused as when the database is away (503).
            raise ResourceClosedError("the gate's desk is closed: the server is stopping")
        if self._connection is None:
            # Its transactions are begun and committed by statements sent with the round's
            # own (SqlUnitOfWork's `sent`); the pool takes it back as it was.
            self._connection = sends_its_transactions(self.engine.connect())
        return self._connection

    def _remember(self, credentials: set[str], known: Mapping[str, object]) -> None:
        """Which of these tokens were good: a hint for the next rounds (see _answer_once),
        never a check, which every round makes on the database."""
        for credential in credentials:
            if credential in known:
                self._good[credential] = None
                self._good.move_to_end(credential)
            else:
                self._good.pop(credential, None)
        while len(self._good) > GOOD_TOKENS:
            self._good.popitem(last=False)

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
            with self._lock:
                return self._answered_on_a_live_connection(round_)
        except SQLAlchemyError:
            raise
        except Exception:
            if len(round_) == 1:
                raise
            log.exception("a round of %d questions failed; answering each alone", len(round_))
        alone: list[Answer | Refused | Exception] = []
        for item in round_:
            try:
                with self._lock:
                    alone.extend(self._answered_on_a_live_connection([item]))
            except Exception as error:
                alone.append(error)
        return alone

    def _answered_on_a_live_connection(
        self, round_: list[tuple[str, Question]]
    ) -> list[Answer | Refused]:
        try:
            return self._answer_again_if_stale(round_)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            self._forget_connection()
            if self._committing:  # it may have been committed: answered again, twice recorded
                raise
            log.warning("the gate's database connection was lost; answering on a new one")
        try:
            return self._answer_again_if_stale(round_)
        except DBAPIError as error:
            if error.connection_invalidated:
                self._forget_connection()
            raise

    def _forget_connection(self) -> None:
        """The connection closed: the next round opens a new one, set up as the first was
        (after a lost one, SQLAlchemy would reconnect underneath, but not in autocommit)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

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
        self._committing = False
        uow = SqlUnitOfWork(self._bind(), sent=True)
        with uow:
            now = self.clock.now()
            # What every round reads first, in one round trip to PostgreSQL: the tokens, the
            # versions of the changes asked about, and the audit chain's head (locked), if a
            # token of the round was good last time (else when the first answer is recorded:
            # questions with no good token never hold the chain up).
            credentials = {c for c, _ in round_}
            known_tokens = tokens.reading(credentials)
            head = not credentials.isdisjoint(self._good)
            ahead = uow.reading_ahead([q.number for _, q in round_], head=head)
            driver.together(uow.session, [*ahead, known_tokens])
            if known_tokens.rows and not head:
                # Before a token's use is noted: every writer takes the head first (a
                # revocation too), so none waits on another that waits on it.
                uow.lock_head()
            known = tokens.authenticated(uow.session, known_tokens, now)
            self._remember(credentials, known)
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
            self._committing = True  # from here a lost connection may have committed
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

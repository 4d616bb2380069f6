"""Catalog proposals: one row each, with the columns the catalog is read by and a JSON
document for the rest, translated explicitly as a change's row is."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Index, and_, or_, update
from sqlmodel import Field, Session, SQLModel, col, select

from storage import driver
from storage.tables import ChangeRow, _Document, _when, compare_and_set
from workflows.catalog import Draft, Proposal, ProposalKind, ProposalStage, format_ref
from workflows.errors import NotFound
from workflows.model import Outcome, Stage, parse_ref

Json = dict[str, Any]


class ProposalRow(SQLModel, table=True):
    __tablename__ = "catalog_proposals"
    # The catalog in force is the adopted proposals in the order they were adopted.
    __table_args__ = (Index("ix_catalog_proposals_stage_decided", "stage", "decided_at"),)

    number: int | None = Field(default=None, primary_key=True)
    version: int = 0
    stage: str = Field(max_length=20)
    kind: str = Field(max_length=10)
    procedure_id: str = Field(max_length=60, index=True)
    proposer: str = Field(max_length=40)
    created_at: datetime = _when()
    updated_at: datetime | None = _when(nullable=True)
    decided_at: datetime | None = _when(nullable=True)
    #: Where the proposal's thread is in Slack, once posted.
    channel: str = Field(default="", max_length=40)
    thread_ts: str = Field(default="", max_length=40)
    document: dict[str, Any] = Field(sa_column=Column(_Document, nullable=False))


def _document(p: Proposal) -> Json:
    d = p.draft
    return {
        "name": d.name,
        "scope": d.scope,
        "runbook": d.runbook,
        "services": list(d.services),
        "why": d.why,
        "evidence": list(d.evidence),
        "decided_by": p.decided_by,
        "reason": p.reason,
        "procedure_version": p.procedure_version,
    }


def _values(p: Proposal) -> Json:
    return {
        "stage": p.stage.value,
        "kind": p.draft.kind.value,
        "procedure_id": p.draft.procedure_id,
        "proposer": p.proposer,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "decided_at": p.decided_at,
        "document": _document(p),
    }


def proposal_from_row(row: ProposalRow) -> Proposal:
    j = row.document
    assert row.number is not None
    draft = Draft(
        kind=ProposalKind(row.kind),
        procedure_id=row.procedure_id,
        name=j["name"],
        scope=j["scope"],
        runbook=j["runbook"],
        services=tuple(j["services"]),
        why=j["why"],
        evidence=tuple(int(n) for n in j["evidence"]),
    )
    return Proposal(
        number=row.number,
        draft=draft,
        proposer=row.proposer,
        created_at=row.created_at,
        stage=ProposalStage(row.stage),
        version=row.version,
        updated_at=row.updated_at,
        decided_by=j["decided_by"],
        decided_at=row.decided_at,
        reason=j["reason"],
        procedure_version=j["procedure_version"],
    )


class SqlProposals:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, draft: Draft, proposer: str, at: datetime) -> Proposal:
        proposal = Proposal(number=0, draft=draft, proposer=proposer, created_at=at)
        row = ProposalRow(version=0, **_values(proposal))
        self.session.add(row)
        self.session.flush()
        assert row.number is not None
        proposal.number = row.number
        return proposal

    def get(self, number: int) -> Proposal:
        row = self.session.get(ProposalRow, number)
        if row is None:
            raise NotFound("catalog proposal", format_ref(number))
        return proposal_from_row(row)

    def save(self, proposal: Proposal) -> None:
        """Compare-and-set on the version, as a change's save."""
        values = _values(proposal)
        del values["created_at"]
        compare_and_set(
            self.session,
            ProposalRow,
            proposal.number,
            proposal.version,
            values,
            "catalog proposal",
            proposal.ref,
        )
        proposal.version += 1

    def open_for(self, procedure_id: str) -> list[Proposal]:
        query = (
            select(ProposalRow)
            .where(col(ProposalRow.procedure_id) == procedure_id)
            .where(col(ProposalRow.stage) == ProposalStage.PROPOSED.value)
            .order_by(col(ProposalRow.number))
        )
        return [proposal_from_row(row) for row in self.session.exec(query)]

    def adopted(self) -> list[Proposal]:
        query = (
            select(ProposalRow)
            .where(col(ProposalRow.stage) == ProposalStage.ADOPTED.value)
            .order_by(col(ProposalRow.decided_at), col(ProposalRow.number))
        )
        return [proposal_from_row(row) for row in self.session.exec(query)]


def adopted_count(session: Session, counted: driver.Statement | None = None) -> int:
    """How many proposals were ever adopted: it grows with each, so a replica that has seen
    as many knows the catalog in force already. Read now, or already read by `counted`
    (`counting_adopted`, run with other statements)."""
    if counted is None:
        counted = counting_adopted()
        driver.together(session, [counted])
    assert counted.rows is not None, "the count of adopted proposals was not read"
    return int(counted.rows[0][0])


def counting_adopted() -> driver.Statement:
    """`adopted_count`'s read, to run with other statements (`driver.together`)."""
    return driver.Statement(_ADOPTED_COUNT_SQL, (ProposalStage.ADOPTED.value,))


_ADOPTED_COUNT_SQL = "SELECT count(*) FROM catalog_proposals WHERE stage = ?"


#: What `thread_ts` holds while a replica posts the proposal's card: the claim and its time.
POSTING = "posting:"
#: A claim to post older than this died with its replica (or its attempt): taken over.
POSTING_LEASE = timedelta(minutes=2)


def thread_of(session: Session, number: int) -> tuple[str, str]:
    """Where the proposal's thread is (channel, ts), or ("", "") before it is posted."""
    row = session.get(ProposalRow, number)
    if row is None or not row.thread_ts or row.thread_ts.startswith(POSTING):
        return ("", "")
    return (row.channel, row.thread_ts)


def set_thread(session: Session, number: int, channel: str, ts: str) -> None:
    session.execute(
        update(ProposalRow)
        .where(col(ProposalRow.number) == number)
        .values(channel=channel, thread_ts=ts)
    )
    session.commit()


def claim_posting(session: Session, number: int, now: datetime, origin: str = "") -> str | None:
    """Claim the posting of a proposal's card, compare-and-set: None when it is posted
    already or another replica is posting it now; else where it was proposed (`origin`, kept
    for a later try), and this replica posts it."""
    row = session.get(ProposalRow, number)
    if row is None or (row.thread_ts and not _claim_lapsed(row.thread_ts, now)):
        return None
    where = row.channel or origin
    claimed = session.execute(
        update(ProposalRow)
        .where(col(ProposalRow.number) == number)
        .where(col(ProposalRow.thread_ts) == row.thread_ts)
        .values(channel=where, thread_ts=f"{POSTING}{now.timestamp():.0f}")
    )
    session.commit()
    return where if claimed.rowcount == 1 else None  # type: ignore[attr-defined]


def release_posting(session: Session, number: int) -> None:
    """The card could not be posted: the next sweep tries again."""
    session.execute(
        update(ProposalRow)
        .where(col(ProposalRow.number) == number)
        .where(col(ProposalRow.thread_ts).startswith(POSTING))
        .values(thread_ts="")
    )
    session.commit()


def unposted(session: Session, now: datetime, grace: timedelta) -> list[int]:
    """Undecided proposals whose card is not in Slack: never posted (and proposed more than
    `grace` ago, so the post that follows the form goes first), or claimed by a post that
    lapsed."""
    query = select(ProposalRow.number, ProposalRow.thread_ts, ProposalRow.created_at).where(
        col(ProposalRow.stage) == ProposalStage.PROPOSED.value,
        (col(ProposalRow.thread_ts) == "") | col(ProposalRow.thread_ts).startswith(POSTING),
    )
    found: list[int] = []
    for number, ts, created in session.exec(query):
        if number is not None and (
            (not ts and created < now - grace) or (ts and _claim_lapsed(ts, now))
        ):
            found.append(number)
    return found


def _claim_lapsed(ts: str, now: datetime) -> bool:
    if not ts.startswith(POSTING):
        return False
    claimed = datetime.fromtimestamp(float(ts.removeprefix(POSTING)), now.tzinfo)
    return claimed < now - POSTING_LEASE


def proven_changes(
    session: Session, limit: int = 100, *, matching: str = ""
) -> list[tuple[int, str]]:
    """The changes a proposal may cite, newest outcome first: closed, with a successful
    outcome (filtered in SQL, however many changes the record holds), as (number, title).
    `matching`: only those whose title holds these words (in any case), or the change it
    names (`CHG-42`, `42`)."""
    outcome = col(ChangeRow.document)["outcome"].as_string()
    query = (
        select(col(ChangeRow.number), col(ChangeRow.title))
        .where(col(ChangeRow.stage) == Stage.CLOSED.value)
        .where(outcome == Outcome.SUCCESSFUL.value)
        .order_by(col(ChangeRow.outcome_at).desc(), col(ChangeRow.number).desc())
        .limit(limit)
    )
    wanted = " ".join(matching.split())
    if wanted:
        title = col(ChangeRow.title)
        named = parse_ref(wanted)
        words = [title.icontains(word, autoescape=True) for word in wanted.split()]
        query = query.where(
            or_(and_(*words), col(ChangeRow.number) == named) if named else and_(*words)
        )
    return [(int(number or 0), str(title)) for number, title in session.exec(query)]

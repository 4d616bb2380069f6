"""`changebot policy check` on the Standard change catalog: the file is the starting catalog,
and the proposals decided in Slack (in the database) change it; both are listed, and the
catalog in force they make."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from bot.settings import Settings
from storage import migrate
from storage.db import DatabaseUrlError, make_engine, normalise_url
from storage.proposals import SqlProposals
from storage.uow import read_session
from workflows.catalog import Proposal, ProposalKind, catalog_in_force
from workflows.policy import Policy, Procedure


def print_catalog(policy: Policy, settings: Settings) -> None:
    print(f"  catalog in the file: {_listed(policy.catalog)}")
    adopted, unread = _adopted(settings)
    if unread:
        print(f"  catalog decided in Slack: not read ({unread})")
        return
    decided = "; ".join(_decision(p) for p in adopted) or "(none yet)"
    print(f"  catalog decided in Slack: {decided}")
    print(f"  catalog in force: {_listed(catalog_in_force(policy.catalog, adopted))}")


def _listed(procedures: tuple[Procedure, ...]) -> str:
    return ", ".join(f"{p.id} v{p.version}" for p in procedures) or "(empty)"


def _decision(proposal: Proposal) -> str:
    when = f"{proposal.decided_at:%Y-%m-%d}" if proposal.decided_at else ""
    if proposal.draft.kind is ProposalKind.RETIRE:
        return f"{proposal.ref} retired {proposal.procedure_id} ({when})"
    verb = "added" if proposal.draft.kind is ProposalKind.ADD else "revised"
    return f"{proposal.ref} {verb} {proposal.procedure_id} v{proposal.procedure_version} ({when})"


def _adopted(settings: Settings) -> tuple[list[Proposal], str]:
    """The adopted proposals, or why they could not be read (the check of a file must not
    need a database, nor make one)."""
    try:
        url = make_url(normalise_url(settings.database_url))
    except DatabaseUrlError as error:
        return [], str(error)
    where = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return [], f"no database at {where}"
    engine = make_engine(settings.database_url)
    try:
        if not migrate.status(engine).is_current:
            return [], f"the database at {where} needs `changebot db upgrade`"
        with read_session(engine) as session:
            return SqlProposals(session).adopted(), ""
    except (OperationalError, SQLAlchemyError) as error:
        return [], f"cannot reach the database at {where}: {type(error).__name__}"
    finally:
        engine.dispose()

"""Schema migrations with alembic, run from code: `changebot db upgrade` and the start-up check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str
    #: The database's revision is one this changebot does not have: a newer release wrote it.
    ahead: bool = False

    @property
    def is_current(self) -> bool:
        return self.current == self.head

    def problem(self) -> str:
        """What is wrong with the schema, in a sentence that says what to do ("" if current)."""
        if self.is_current:
            return ""
        if self.ahead:
            return (
                f"is at schema {self.current}, which this changebot (schema {self.head}) does not "
                "know: a newer release upgraded it, so run that release or a newer one"
            )
        return (
            f"is at schema {self.current or 'none'} but this changebot needs {self.head}: run "
            "`changebot db upgrade` first"
        )


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def status(engine: Engine) -> SchemaStatus:
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return SchemaStatus(current, head_revision(), ahead=current is not None and not _known(current))


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(_config()).get_revision(revision) is not None
    except CommandError:  # alembic's "Can't locate revision"
        return False


def upgrade(engine: Engine, revision: str = "head") -> SchemaStatus:
    """Bring the database to `revision` (the latest by default); safe to run again."""
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return status(engine)

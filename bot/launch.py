"""The `changebot` command's entry point. What a pipeline runs (`changebot gate`,
`changebot deployment ...`) only speaks HTTP to a running changebot, so it starts without
loading the database, Slack, cryptography and chart libraries that the other commands need:
a pipeline step waits a fraction of a second, not a whole one, before it asks."""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: The commands bot/cli_pipeline.py adds, named here so that telling them apart imports
#: nothing (tests/integration/test_cli_start.py checks the two agree).
PIPELINE_COMMANDS = frozenset({"gate", "deployment"})


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in PIPELINE_COMMANDS:
        from bot import cli_pipeline

        return cli_pipeline.main(args)
    from bot import cli

    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main())

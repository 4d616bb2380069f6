"""`changebot`: serve the bot, migrate its database, verify and export the audit trail."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, OperationalError

from bot import cli_digests, cli_names, cli_pipeline, cli_report, cli_tokens
from bot.cli_catalog import print_catalog
from bot.cli_pipeline import ClientError
from bot.digester import Busy, Signer
from bot.export import write_csv, write_jsonl
from bot.files import CannotWrite, replacing
from bot.settings import ConfigError, Settings
from bot.signing import KeyProblem
from storage import migrate
from storage.db import DatabaseUrlError, is_sqlite, make_engine, missing_sqlite_file, normalise_url
from storage.digests import DirectoryProblem
from storage.repositories import read_trail
from storage.uow import read_session
from workflows.durations import format_duration
from workflows.errors import ChangeError, PolicyError
from workflows.freezes import Allows
from workflows.model import Level, format_ref, parse_ref
from workflows.policy import Policy, load_policy
from workflows.risk import format_number


class Stop(Exception):
    """Stop the command with a message for the person at the terminal, and an exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args, Settings.from_env()))
    except (
        Stop,
        ClientError,
        ConfigError,
        PolicyError,
        DatabaseUrlError,
        KeyProblem,
        DirectoryProblem,
        Busy,
    ) as error:
        print(f"changebot: {error}", file=sys.stderr)
        return int(getattr(error, "code", 2))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`changebot audit export ... | head`): nothing more to say, and
        # Python's own flush of stdout at exit must not fail on it too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="changebot",
        description="Run your change-management policy in Slack.",
        epilog="Configuration comes from the environment: see the README.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the Slack app")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000)")
    serve.add_argument(
        "--socket-mode", action="store_true", help="connect out to Slack instead (SLACK_APP_TOKEN)"
    )
    serve.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text for people (default) or one JSON object per line for log shippers",
    )
    serve.set_defaults(run=_serve)

    demo = commands.add_parser(
        "demo", help="run a scripted change end to end against a local Slack stand-in"
    )
    demo.set_defaults(run=_demo)

    db = commands.add_parser("db", help="the database schema").add_subparsers(metavar="ACTION")
    db.add_parser("upgrade", help="bring the database to the current schema").set_defaults(
        run=_db_upgrade
    )
    db.add_parser("status", help="show the schema revision").set_defaults(run=_db_status)

    audit = commands.add_parser("audit", help="the audit trail").add_subparsers(metavar="ACTION")
    verify = audit.add_parser(
        "verify",
        help="check the hash chain (and the signed digests); exit 1 if broken",
        description="Check the audit trail's hash chain. With --digests and --public-key, also "
        "check every signed digest and that the trail is still what they signed.",
    )
    cli_digests.add_verify_options(verify)
    verify.set_defaults(run=_audit_verify)
    export = audit.add_parser("export", help="write the trail for auditors")
    export.add_argument("--change", metavar="CHG-n", help="only this change")
    export.add_argument("--since", metavar="YYYY-MM-DD", help="only events on or after this date")
    export.add_argument("--format", choices=("csv", "jsonl"), required=True)
    export.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    export.set_defaults(run=_audit_export)
    cli_digests.add_commands(audit)

    policy = commands.add_parser("policy", help="the change policy").add_subparsers(
        metavar="ACTION"
    )
    check = policy.add_parser("check", help="validate a policy file and summarise it")
    check.add_argument("file", nargs="?", help="default: CHANGEBOT_POLICY, else the built-in one")
    check.set_defaults(run=_policy_check)
    reviewed = policy.add_parser(
        "reviewed", help="record that the policy was reviewed (stops the reminders)"
    )
    reviewed.add_argument("--by", required=True, metavar="USER_ID", help="who reviewed it")
    reviewed.add_argument("--note", default="", help="what the review concluded")
    reviewed.set_defaults(run=_policy_reviewed)
    cli_tokens.add_commands(commands)
    cli_pipeline.add_commands(commands)
    cli_report.add_commands(commands)
    return parser


# -- database ------------------------------------------------------------------------------


def _where(settings: Settings) -> str:
    return make_url(normalise_url(settings.database_url)).render_as_string(hide_password=True)


def _unreachable(settings: Settings, error: DatabaseError) -> Stop:
    """One line: where (without the password) and the driver's first line of why."""
    reason = str(error.orig).strip().splitlines()[0] if error.orig else "unknown error"
    verb = "reach" if isinstance(error, OperationalError) else "read"  # "file is not a database"
    return Stop(f"cannot {verb} the database at {_where(settings)}: {reason}")


def open_database(settings: Settings, *, upgrade_embedded: bool = False) -> Engine:
    """An engine on a reachable database whose schema is current, or Stop saying what to do.
    An SQLite file that is not there is not made (a mistyped path would leave an empty one
    behind), unless the command sets the embedded database up (`upgrade_embedded`)."""
    missing = missing_sqlite_file(settings.database_url)
    if missing is not None and not upgrade_embedded:
        raise Stop(
            f"there is no database at {missing}: check DATABASE_URL, or run `changebot db "
            "upgrade` to create one there."
        )
    engine = make_engine(settings.database_url)
    try:
        state = migrate.status(engine)
        if not state.is_current and not state.ahead and upgrade_embedded and is_sqlite(engine):
            state = migrate.upgrade(engine)
    except DatabaseError as error:
        raise _unreachable(settings, error) from error
    if not state.is_current:
        raise Stop(f"the database at {_where(settings)} {state.problem()}.")
    return engine


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        state = migrate.status(engine)
        if state.ahead:  # nothing to upgrade to: this release is the older one
            raise Stop(f"the database at {_where(settings)} {state.problem()}.")
        before = state.current
        after = migrate.upgrade(engine)
    except DatabaseError as error:
        raise _unreachable(settings, error) from error
    if before == after.current:
        print(f"{_where(settings)} is already at the current schema ({after.current}).")
    else:
        print(f"Upgraded {_where(settings)} from {before or 'empty'} to {after.current}.")
    return 0


def _db_status(args: argparse.Namespace, settings: Settings) -> int:
    if missing_sqlite_file(settings.database_url) is not None:  # looked at, not made
        head = migrate.head_revision()
        print(
            f"{_where(settings)}: no such file yet; schema none, latest {head} (behind: run "
            "`changebot db upgrade`)"
        )
        return 1
    try:
        state = migrate.status(make_engine(settings.database_url))
    except DatabaseError as error:
        raise _unreachable(settings, error) from error
    verdict = (
        "current"
        if state.is_current
        else "ahead: a newer release upgraded it; run that release or a newer one"
        if state.ahead
        else "behind: run `changebot db upgrade`"
    )
    print(f"{_where(settings)}: schema {state.current or 'none'}, latest {state.head} ({verdict})")
    return 0 if state.is_current else 1


# -- audit ---------------------------------------------------------------------------------


def _audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    # The digests and the key are read first: a bad one stops before the trail is read.
    digests = cli_digests.digest_check(args)
    walked = cli_digests.walk_trail(open_database(settings), digests)
    broken = walked.broken
    if broken is not None:
        print(f"Audit trail BROKEN at {broken}.", file=sys.stderr)
        print(
            f"Events from #{broken.seq} on cannot be trusted; checked {walked.count}.",
            file=sys.stderr,
        )
    else:
        print(f"Audit trail intact: {walked.count} events{walked.ending}.")
    borne_out = digests.report(complete=broken is None) if digests else True
    return 0 if broken is None and borne_out else 1


def _audit_export(args: argparse.Namespace, settings: Settings) -> int:
    ref = None
    if args.change:
        number = parse_ref(args.change)
        if number is None:
            raise Stop(f"--change {args.change!r} is not a change reference such as CHG-0042.")
        ref = format_ref(number)
    since = None
    if args.since:
        try:
            since = datetime.combine(date.fromisoformat(args.since), datetime.min.time(), UTC)
        except ValueError as error:
            raise Stop(f"--since {args.since!r} is not a date such as 2026-01-31.") from error
    engine = open_database(settings)
    writer = write_csv if args.format == "csv" else write_jsonl
    with read_session(engine) as session:
        events = read_trail(session, ref=ref, since=since)
        if args.output:
            try:  # whole or not at all: an earlier export stands if this one fails
                with replacing(Path(args.output), newline="") as out:
                    count = writer(events, out)
            except CannotWrite as error:  # no such directory, no permission, a full disk
                raise Stop(str(error)) from error
            print(f"Wrote {count} audit events to {args.output}.", file=sys.stderr)
        else:
            writer(events, sys.stdout)
    return 0


# -- policy and serving ----------------------------------------------------------------------


def _policy_check(args: argparse.Namespace, settings: Settings) -> int:
    policy = load_policy(args.file or settings.policy_path or None)
    source = args.file or settings.policy_path or "the built-in default policy"
    e = policy.emergency
    print(f"{source}: valid.")
    print(f"  {policy.policy.name}; owner {policy.policy.owner or '(none named)'}")
    print(f"  scope: {', '.join(s.id for s in policy.scope)}")
    print_catalog(policy, settings)
    a = policy.approvals
    print(
        f"  approvals: normal {a.normal}, high risk {a.normal_high_risk}, emergency {a.emergency}"
    )
    print(f"  risk: {_risk_summary(policy)}")
    who = [*policy.approvers.users, *policy.approvers.groups]
    print(f"  approvers: {', '.join(who) or '(none yet: nobody can approve)'}")
    _print_approval_rules(policy)
    print(
        f"  emergency review due {format_duration(e.review_deadline)} after the outcome, "
        f"reminders every {format_duration(e.reminder_every)}"
    )
    print(f"  deploy gate: {', '.join(policy.gate.environments)}")
    for target in policy.gate.github:
        services = ", ".join(target.services)
        print(f"    GitHub {target.repository} {target.environment}: {services}")
    _print_freezes(policy, datetime.now(UTC))
    print(f"  next policy review due {policy.policy_review_due():%Y-%m-%d}")
    cli_names.print_names(policy, settings, source)
    return 0


def _risk_summary(policy: Policy) -> str:
    risk = policy.risk
    if not risk.question:
        return "picked by the requester (no questionnaire)"
    low, medium, high = risk.band(Level.LOW), risk.band(Level.MEDIUM), risk.band(Level.HIGH)
    n = format_number
    return (
        f"{len(risk.question)} questions asked of Normal changes "
        f"({', '.join(q.id for q in risk.question)}); totals {n(risk.lowest_total())} to "
        f"{n(risk.highest_total())}: low below {n(low.below or 0)}, medium from "
        f"{n(medium.start or 0)}, high from {n(high.start or 0)}"
    )


def _print_approval_rules(policy: Policy) -> None:
    """Who else a Normal change may need: the owners of its services, the high-risk group."""
    high_risk = policy.approvals.high_risk_approvers
    if not high_risk.is_empty:
        who = ", ".join([*high_risk.groups, *high_risk.users])
        print(f"  high-risk approvers: {who} (1 more approval for high risk)")
    if not policy.owners:
        return
    print("  owners (a Normal change also needs an approval from each entry owning its services):")
    for owners in policy.owners:
        who = ", ".join([*owners.groups, *owners.users])
        needed = f"{owners.approvals} approvals" if owners.approvals > 1 else "1 approval"
        print(f"    {owners.label}: {who} ({needed}); services {', '.join(owners.services)}")


#: Occurrences of each freeze that `policy check` shows.
NEXT_FREEZES = 3


def _print_freezes(policy: Policy, now: datetime) -> None:
    """Each freeze and its next occurrences, in its own time zone, so the author can see the
    rule says what they meant."""
    if not policy.freeze:
        print("  freezes: (none)")
        return
    print("  freezes:")
    for freeze in policy.freeze:
        covers = ", ".join(freeze.services) or "every service"
        allows = "emergencies only" if freeze.allows is Allows.EMERGENCY else "nothing"
        print(f"    {freeze.name} ({covers}; allows {allows}): {freeze.reason}")
        upcoming = freeze.next_occurrences(now, NEXT_FREEZES)
        if not upcoming:
            print("      no occurrence to come")
        for one in upcoming:
            start, end = one.start.astimezone(freeze.zone), one.end.astimezone(freeze.zone)
            print(f"      {start:%a %Y-%m-%d %H:%M} to {end:%a %Y-%m-%d %H:%M} {freeze.timezone}")


def _policy_reviewed(args: argparse.Namespace, settings: Settings) -> int:
    from storage.uow import SqlUnitOfWork
    from workflows.followup import record_policy_review
    from workflows.model import Actor
    from workflows.ports import SystemClock
    from workflows.validation import check_text

    source = settings.policy_path or "the default policy"
    # The owner may be named by @handle: the review is recorded against their ID.
    policy = cli_names.resolved(load_policy(settings.policy_path or None), settings, source)
    engine = open_database(settings)
    try:
        check_text("note", args.note, "comment")
    except ChangeError as error:
        raise Stop(str(error)) from error
    try:
        following = record_policy_review(
            SqlUnitOfWork(engine), SystemClock(), policy, Actor(args.by), note=args.note
        )
    except ChangeError as error:
        raise Stop(str(error)) from error
    print(
        f"Policy review recorded by {args.by}. The next one is due {following.deadline:%Y-%m-%d}."
    )
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import run

    return run()


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from bot import logs, memory
    from bot.app import create_app
    from bot.server import serve_http, serve_socket_mode

    memory.limit_arenas()  # before any thread starts
    memory.tune_collector()

    password = make_url(normalise_url(settings.database_url)).password
    secrets = (
        settings.bot_token,
        settings.signing_secret,
        settings.app_token,
        settings.github_webhook_secret,
        str(password or ""),
    )
    logs.configure(args.log_format, secrets=secrets)
    policy = load_policy(settings.policy_path or None)
    settings.check_slack(socket_mode=args.socket_mode)
    if settings.github_enabled:
        settings.github_private_key()  # half a GitHub configuration stops here, named
    # Half a digest configuration, an unreadable key or directory stops here, named.
    signer = Signer.from_settings(settings) if settings.digests_enabled else None
    engine = open_database(settings, upgrade_embedded=True)
    bot = create_app(settings, engine, policy, socket_mode=args.socket_mode, signer=signer)
    if args.socket_mode:
        asyncio.run(serve_socket_mode(bot, settings.app_token))
    else:
        serve_http(bot, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())

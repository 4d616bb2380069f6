"""What a pipeline runs: `changebot gate` before it deploys, `changebot deployment start` and
`finish` around the deployment. They call a running changebot's API (CHANGEBOT_URL) with an
API token (CHANGEBOT_TOKEN), and say what they were answered in words a CI log can show.

Exit codes: 0 allowed (or reported), 1 prevented, 3 still awaiting, 2 invalid, refused or
unreachable: a pipeline step fails unless the deployment may go ahead.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from workflows.durations import format_duration, parse_duration
from workflows.model import OUTCOME_NAMES, GateStatus, format_ref, outcome_named, parse_ref

EXIT = {
    GateStatus.ALLOWED.value: 0,
    GateStatus.PREVENTED.value: 1,
    GateStatus.INVALID.value: 2,
    GateStatus.AWAITING.value: 3,
}
FAILED = 2
TIMEOUT = 30.0


class ClientError(Exception):
    """The API could not be asked (not configured, unreachable) or refused the request."""

    code = FAILED


@dataclass(frozen=True)
class Client:
    url: str
    token: str
    timeout: float = TIMEOUT

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Client:
        url, token = env.get("CHANGEBOT_URL", "").strip(), env.get("CHANGEBOT_TOKEN", "").strip()
        if not url:
            raise ClientError(
                "CHANGEBOT_URL is not set: give the address changebot serves on, e.g. "
                "https://changebot.example.com."
            )
        if not token:
            raise ClientError(
                "CHANGEBOT_TOKEN is not set: make a token with `changebot token create` and "
                "keep it in your CI's secrets."
            )
        if not url.lower().startswith(("http://", "https://")):
            raise ClientError(
                f"CHANGEBOT_URL is {url!r}: give the address with its scheme, e.g. "
                "https://changebot.example.com."
            )
        if not (token.isascii() and token.isprintable()):
            raise ClientError(
                "CHANGEBOT_TOKEN holds characters no API token has: copy the token "
                "`changebot token create` printed."
            )
        return cls(url.rstrip("/"), token)

    def call(self, method: str, path: str, body: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The API's status and JSON answer; ClientError if it could not be reached, or what
        answered does not speak HTTP (another service on that port, a connection cut)."""
        try:
            request = urllib.request.Request(
                f"{self.url}/api/v1/{path}",
                data=json.dumps(body).encode("utf-8"),
                method=method,
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                    "User-Agent": "changebot-cli",
                },
            )
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as error:
            try:
                return error.code, _json(error.read())
            except (http.client.HTTPException, OSError) as cut:
                raise _unreachable(self.url, cut) from cut
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise _unreachable(self.url, getattr(error, "reason", error)) from error
        except (http.client.InvalidURL, ValueError) as error:  # a port that is not a number
            raise ClientError(f"CHANGEBOT_URL {self.url!r} is not an address: {error}") from error
        except http.client.HTTPException as error:  # not HTTP, or cut short
            raise _unreachable(self.url, f"{type(error).__name__} {error}".strip()) from error


def _unreachable(url: str, reason: object) -> ClientError:
    return ClientError(f"cannot reach changebot at {url}: {reason}")


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"message": raw[:200].decode("utf-8", "replace") or "no answer"}
    return value if isinstance(value, dict) else {"message": str(value)}


# -- what CI systems say about the run -------------------------------------------------------


def ci_context(env: Mapping[str, str]) -> dict[str, str]:
    """What GitHub Actions or GitLab CI tells a job about its run: the defaults of --run-url,
    --triggered-by, --repository and --commit."""
    if env.get("GITHUB_ACTIONS") == "true":
        server, repository = env.get("GITHUB_SERVER_URL", ""), env.get("GITHUB_REPOSITORY", "")
        run = env.get("GITHUB_RUN_ID", "")
        return {
            "run_url": f"{server}/{repository}/actions/runs/{run}" if server and run else "",
            "triggered_by": env.get("GITHUB_ACTOR", ""),
            "repository": repository,
            "commit": env.get("GITHUB_SHA", ""),
        }
    if env.get("GITLAB_CI") == "true":
        return {
            "run_url": env.get("CI_PIPELINE_URL", ""),
            "triggered_by": env.get("GITLAB_USER_LOGIN", ""),
            "repository": env.get("CI_PROJECT_PATH", ""),
            "commit": env.get("CI_COMMIT_SHA", ""),
        }
    return {}


# -- the commands -----------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """`changebot gate|deployment ...` alone: what a pipeline runs needs no database, Slack
    or chart library, so it does not load them (a tenth of the time to start)."""
    parser = argparse.ArgumentParser(
        prog="changebot", description="Ask the deploy gate, and report deployments."
    )
    add_commands(parser.add_subparsers(title="commands", metavar="COMMAND"))
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):  # `changebot deployment` with no action: as the others say it
        from bot import cli

        return cli.main(argv)
    try:
        return int(args.run(args, None))
    except ClientError as error:
        print(f"changebot: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return 130


def add_commands(commands: Any) -> None:
    gate = commands.add_parser(
        "gate",
        help="ask the deploy gate whether a deployment may go ahead (for pipelines)",
        description="Ask a running changebot whether CHANGE may be deployed now. Exits 0 when "
        "allowed, 1 when prevented, 3 when awaiting, 2 when invalid, refused or unreachable. "
        "Reads CHANGEBOT_URL and CHANGEBOT_TOKEN.",
    )
    gate.add_argument("change", metavar="CHANGE", help="the change's reference, e.g. CHG-42")
    _target(gate)
    gate.add_argument("--repository", help="owner/name being deployed (default: from the CI)")
    gate.add_argument("--commit", help="the commit being deployed (default: from the CI)")
    gate.add_argument("--run-url", help="a link to this pipeline run (default: from the CI)")
    gate.add_argument("--triggered-by", help="who started the pipeline (default: from the CI)")
    gate.add_argument(
        "--wait",
        metavar="DURATION",
        help="while the answer is awaiting, ask again until this long has passed (e.g. 30m)",
    )
    gate.add_argument(
        "--every", metavar="DURATION", default="10s", help="how often to ask while waiting"
    )
    gate.add_argument("--json", action="store_true", help="print the last answer as JSON")
    gate.set_defaults(run=_gate)

    deployment = commands.add_parser(
        "deployment", help="report a deployment's start and outcome on its change (pipelines)"
    ).add_subparsers(metavar="ACTION")
    start = deployment.add_parser("start", help="a deployment under CHANGE has started")
    start.add_argument("change", metavar="CHANGE")
    _target(start)
    start.add_argument("--id", required=True, help="this deployment's id (the run id, say)")
    start.add_argument("--triggered-by", help="who started the pipeline (default: from the CI)")
    start.set_defaults(run=_start)

    finish = deployment.add_parser("finish", help="a deployment under CHANGE has ended")
    finish.add_argument("change", metavar="CHANGE")
    finish.add_argument("--id", required=True, help="the id given when it started")
    finish.add_argument(
        "--outcome",
        required=True,
        type=_outcome,
        metavar="{" + ",".join(OUTCOME_NAMES) + "}",
        help="how it went",
    )
    finish.add_argument("--notes", default="", help="what happened, for anything but success")
    finish.add_argument("--service", help="if its start was never reported: what it deployed")
    finish.add_argument("--environment", help="... and where")
    finish.add_argument(
        "--triggered-by",
        help="who started the pipeline, if its start was never reported (default: from the CI)",
    )
    finish.set_defaults(run=_finish)


def _outcome(name: str) -> str:
    """The outcome's name as the API takes it, or a usage error listing the names."""
    outcome = outcome_named(name)
    if outcome is None:
        raise argparse.ArgumentTypeError(
            f"{name!r} is not an outcome: use one of {', '.join(OUTCOME_NAMES)}"
        )
    return next(key for key, named in OUTCOME_NAMES.items() if named is outcome)


def _target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--service", required=True, type=_named("--service"), help="the service being deployed"
    )
    parser.add_argument(
        "--environment", required=True, type=_named("--environment"), help="where, e.g. production"
    )


def _named(option: str) -> Callable[[str], str]:
    """A value that must say something: an unset CI variable (`--service "$SERVICE"`) is a
    usage error naming the option, not a question about nothing."""

    def named(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{option} is empty (an unset CI variable?)")
        return text

    return named


Say = Callable[[str], None]


def _gate(args: argparse.Namespace, settings: object) -> int:
    env = os.environ
    client = Client.from_env(env)
    ref = _ref(args.change)
    context = ci_context(env)
    body = {
        "change": ref,
        "service": args.service,
        "environment": args.environment,
        "repository": _given(args.repository, context, "repository"),
        "commit": _given(args.commit, context, "commit"),
        "run_url": _given(args.run_url, context, "run_url"),
        "triggered_by": _given(args.triggered_by, context, "triggered_by"),
    }
    body = {k: v for k, v in body.items() if v}
    wait = _duration("--wait", args.wait) if args.wait else timedelta()
    every = max(_duration("--every", args.every).total_seconds(), 1.0)
    say = _quiet if args.json else _out
    answer = _ask_until_decided(client, body, wait.total_seconds(), every, say)
    if args.json:
        print(json.dumps(answer, ensure_ascii=False))
    return EXIT.get(str(answer.get("status")), FAILED)


def _ask_until_decided(
    client: Client, body: dict[str, str], wait: float, every: float, say: Say
) -> dict[str, Any]:
    started = time.monotonic()
    shown: list[str] = []
    asked = 0
    while True:
        asked += 1
        # A changebot not reached at the first question is a mistake to tell at once (a wrong
        # CHANGEBOT_URL), not an outage to wait out: a later one is waited out.
        answer = _ask(client, body, waiting=wait > 0, first=asked == 1)
        waited = time.monotonic() - started
        status = str(answer.get("status", "error"))
        reasons = [str(r) for r in answer.get("reasons") or [answer.get("message", "")]]
        if reasons != shown or status != "awaiting":
            after = f" after {_spent(waited)}" if asked > 1 else ""
            where = f"{body['service']} to {body['environment']}"
            say(f"{body['change']}: {where} is {status.upper()}{after}")
            for reason in reasons:
                say(f"  - {reason}")
            shown = reasons
        if status != "awaiting" or waited >= wait:
            if status == "awaiting" and wait > 0:
                say(f"Still awaiting after {_spent(waited)}: giving up (--wait {_spent(wait)}).")
            return answer
        if asked == 1:
            say(f"Waiting up to {_spent(wait)}, asking every {_spent(every)}.")
        elif asked % max(1, int(60 / every)) == 0:
            say(f"  ... still awaiting after {_spent(waited)}")
        time.sleep(min(every, wait - waited))


def _ask(client: Client, body: dict[str, str], *, waiting: bool, first: bool) -> dict[str, Any]:
    """One question; while waiting, a changebot that answers with an error of its own, or
    (after the first question) cannot be reached, is asked again."""
    try:
        status, answer = client.call("POST", "gate", body)
    except ClientError as error:
        if first or not waiting:
            raise
        return {"status": "awaiting", "reasons": [f"{error}; asking again."]}
    if status >= 500 and waiting:
        return {"status": "awaiting", "reasons": [f"{answer.get('message')} Asking again."]}
    if status != 200:
        return {"status": "error", "message": answer.get("message", f"HTTP {status}")}
    return answer


def _start(args: argparse.Namespace, settings: object) -> int:
    env = os.environ
    client = Client.from_env(env)
    ref = _ref(args.change)
    body = {
        "service": args.service,
        "environment": args.environment,
        "triggered_by": _given(args.triggered_by, ci_context(env), "triggered_by"),
    }
    status, answer = client.call("PUT", f"changes/{ref}/deployments/{quote(args.id, '')}", body)
    return _reported(status, answer, f"Deployment {args.id} of {args.service} started")


def _finish(args: argparse.Namespace, settings: object) -> int:
    env = os.environ
    client = Client.from_env(env)
    ref = _ref(args.change)
    body = {"outcome": args.outcome, "notes": args.notes}
    if args.service or args.environment:
        body |= {"service": args.service or "", "environment": args.environment or ""}
    triggered_by = _given(args.triggered_by, ci_context(env), "triggered_by")
    if triggered_by:
        body["triggered_by"] = triggered_by
    path = f"changes/{ref}/deployments/{quote(args.id, '')}/outcome"
    status, answer = client.call("PUT", path, body)
    return _reported(status, answer, f"Deployment {args.id} ended {args.outcome}")


def _reported(status: int, answer: dict[str, Any], what: str) -> int:
    if status not in (200, 201):
        print(f"changebot refused: {answer.get('message', f'HTTP {status}')}", file=sys.stderr)
        return FAILED
    if not all(answer.get(key) for key in ("change", "stage", "deployment")):
        # A 200 from something else at that address: a login page, a proxy, another service.
        print(
            f"the answer is not changebot's, so nothing is known to be recorded: "
            f"{str(answer.get('message') or answer)[:200]}",
            file=sys.stderr,
        )
        return FAILED
    change, stage = answer.get("change"), answer.get("stage")
    again = "" if answer.get("recorded") else " (already recorded)"
    print(f"{what}: recorded on {change}, now in {stage}{again}.")
    deployment = answer.get("deployment") or {}
    if deployment.get("gated") is False:
        told = (
            "the policy owner has been told"
            if answer.get("policy_owner_told")
            else "the policy names no owner to tell"
        )
        print(
            f"WARNING: no allowed gate decision covered this deployment; {told}.", file=sys.stderr
        )
    if answer.get("review_owed"):
        print(f"A post-change review of {change} is owed.")
    return 0


# -- small things -----------------------------------------------------------------------------


def _ref(text: str) -> str:
    number = parse_ref(text)
    if number is None:
        raise ClientError(f"{text!r} is not a change reference such as CHG-42.")
    return format_ref(number)


def _duration(option: str, text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise ClientError(f"{option}: {error}") from error


def _given(value: str | None, context: dict[str, str], key: str) -> str:
    return value if value is not None else context.get(key, "")


def _spent(seconds: float) -> str:
    return format_duration(timedelta(seconds=round(seconds)))


def _out(line: str) -> None:
    print(line, flush=True)


def _quiet(line: str) -> None:
    print(line, file=sys.stderr, flush=True)

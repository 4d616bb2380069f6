"""The load: signed requests from Slack's side, sent from a process of their own.

`python -m bench.load --url URL --secret S --requests FILE --concurrency 50 --out RESULT`
reads one request per line (`{"kind", "content_type", "body"}`, as written by `bench.ack`),
sends them over `--concurrency` kept-alive connections, each signed as Slack signs it at the
moment it is sent, and writes every request's kind, HTTP status and time to the answer (the
acknowledgement, for Slack) as JSON. Running apart from the server keeps the load's own work
off the measured process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from standin.signing import signed_headers
from standin.transport import SLACK_HEADERS


@dataclass(frozen=True)
class Request:
    kind: str
    content_type: str
    body: bytes


def read_requests(path: Path) -> list[Request]:
    requests = []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        requests.append(Request(item["kind"], item["content_type"], item["body"].encode()))
    return requests


def write_requests(path: Path, requests: list[Request]) -> None:
    lines = (
        json.dumps({"kind": r.kind, "content_type": r.content_type, "body": r.body.decode()})
        for r in requests
    )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def drive(
    url: str,
    secret: str,
    requests: list[Request],
    concurrency: int,
    timeout: float = 10.0,
    *,
    bearer: str = "",
) -> dict[str, Any]:
    """Send everything; return when the last answer is in. With `bearer`, requests carry it
    as a pipeline's API token instead of Slack's signature."""
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    samples: list[tuple[str, int, float]] = []
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    client_timeout = aiohttp.ClientTimeout(total=timeout)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            request = queue.get_nowait()
            if bearer:
                headers = {
                    "Authorization": f"Bearer {bearer}",
                    "Content-Type": request.content_type,
                }
            else:
                headers = {
                    **SLACK_HEADERS,
                    "Content-Type": request.content_type,
                    **signed_headers(request.body, secret),
                }
            started = time.perf_counter()
            try:
                async with session.post(url, data=request.body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            samples.append((request.kind, status, time.perf_counter() - started))

    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall = time.perf_counter() - began
    return {"wall": wall, "samples": samples}


#: How far ahead of the Slack stand-in, which shares its core(s), the load asks to run.
AHEAD = -5


def run_ahead() -> bool:
    """Run ahead of the Slack stand-in, which shares the load's core(s) (`bench.serving.
    pin_apart`): otherwise the stand-in's work for an app's Web API calls (forms, cards)
    delays the load's reading of that app's answers, and its timings of acknowledgements
    grow with work that in production runs on Slack's servers. Raising a priority takes
    the right to (root, or CAP_SYS_NICE); without it, False, and the load runs as it is."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, AHEAD)
    except (OSError, AttributeError):
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--url", required=True, help="the app's request URL")
    parser.add_argument("--secret", default="", help="the app's signing secret (Slack)")
    parser.add_argument("--bearer", default="", help="an API token to send instead (pipelines)")
    parser.add_argument("--requests", type=Path, required=True, help="JSON lines to send")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--out", type=Path, required=True, help="where to write the results")
    args = parser.parse_args(argv)
    ahead = run_ahead()
    result = asyncio.run(
        drive(
            args.url,
            args.secret,
            read_requests(args.requests),
            args.concurrency,
            bearer=args.bearer,
        )
    )
    args.out.write_text(json.dumps({**result, "ahead": ahead}), encoding="utf-8")


if __name__ == "__main__":
    main()

"""The gate's baseline: an aiohttp endpoint that checks a bearer token and answers a fixed JSON.

`python -m bench.bare_gate --port 3001 --token SECRET` serves `POST /api/v1/gate` as changebot
serves it (aiohttp, the same body limit), reading the JSON body and checking the token's hash
against the one it was given, and nothing else. Whatever changebot costs beyond this is its
own: the database, the decision, the audit trail.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json

from aiohttp import web

from bot import memory
from workflows.tokens import hash_secret

ANSWER = {
    "status": "allowed",
    "change": "CHG-0001",
    "service": "payments",
    "environment": "production",
    "reasons": ["CHG-0001 is authorised, approved by U0CAROL."],
    "recheck_at": None,
}


def web_app(token: str) -> web.Application:
    expected = hash_secret(token)

    async def gate(request: web.Request) -> web.Response:
        _, _, secret = request.headers.get("Authorization", "").partition(" ")
        if not hmac.compare_digest(hash_secret(secret.strip()), expected):
            return web.json_response({"error": "unauthorized"}, status=401)
        body = json.loads(await request.content.read(16 * 1024 + 1))
        if not isinstance(body, dict):
            return web.json_response({"error": "malformed"}, status=400)
        return web.json_response(ANSWER)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/api/v1/gate", gate)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(host: str, port: int, token: str) -> None:
    runner = web.AppRunner(web_app(token), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_gate", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    memory.limit_arenas()
    memory.tune_collector()
    asyncio.run(serve(args.host, args.port, args.token))


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: MIT
"""A small ASGI app for uvicorn and gunicorn under corrald: answers
GET /slow?ms=N after N milliseconds (at most 10 s) with the pid that
served it, and any other path at once."""
import asyncio
import os
from urllib.parse import parse_qs


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        query = parse_qs(scope["query_string"].decode())
        ms = min(int(query.get("ms", ["0"])[0]), 10000)
        await asyncio.sleep(ms / 1000)
    body = f"{os.getpid()}\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

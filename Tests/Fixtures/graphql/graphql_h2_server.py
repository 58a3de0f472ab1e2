#!/usr/bin/python3
"""The fixture GraphQL server of graphql_server.py (same schema, same
execution by graphene 2 / graphql-core 2.3) as an ASGI app served by
Hypercorn, so clients can speak HTTP/2 cleartext with prior knowledge.

Transport (GraphQL over HTTP):
  POST application/json  {"query", "operationName", "variables"} or a list of them (batch)
  POST application/graphql  the document itself
  GET  /graphql?query=...&operationName=...&variables=...
  POST /api/...  plain JSON echoed back (not GraphQL)
Usage: graphql_h2_server.py [PORT] (0 = a free port). Prints "listening on PORT"
once ready; serves until killed (SIGKILL is fine).
"""
import asyncio
import json
import os
import socket
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from graphql_server import execute  # noqa: E402

from hypercorn.asyncio import serve  # noqa: E402
from hypercorn.config import Config  # noqa: E402


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    status, payload = handle(scope["method"], scope["path"], scope["query_string"].decode(),
                             dict(scope["headers"]).get(b"content-type", b"").decode(), body)
    out = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})


def handle(method, path, query, ctype, raw):
    if method == "GET":
        if path != "/graphql":
            return 404, {"error": "not found"}
        return 200, execute(dict(urllib.parse.parse_qsl(query)))
    if ctype.split(";")[0].strip().lower() == "application/graphql":
        return 200, execute({"query": raw.decode()})
    try:
        req = json.loads(raw)
    except ValueError:
        return 400, {"errors": [{"message": "Body is not JSON."}]}
    if path.startswith("/api/"):
        return 200, {"ok": True, "echo": req}
    if isinstance(req, list):
        return 200, [execute(r) for r in req]
    return 200, execute(req)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if port == 0:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
    config = Config()
    config.bind = ["127.0.0.1:%d" % port]
    config.accesslog = None
    config.errorlog = "-"
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.create_task(serve(app, config))
    async def announce():
        for _ in range(100):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                print("listening on %d" % port, flush=True)
                return
            except OSError:
                await asyncio.sleep(0.05)
    loop.run_until_complete(announce())
    loop.run_until_complete(server)


if __name__ == "__main__":
    main()

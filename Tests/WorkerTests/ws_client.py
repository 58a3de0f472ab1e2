#!/usr/bin/python3
"""A real WebSocket client for the worker API tests (python3-websockets).

Connects to ws://HOST:PORT/ws?q=QUERY, prints every message received as one
line on stdout, and stops when --want entries arrived, the connection closed,
or --idle seconds passed without a message. Optional steps exercise the rest
of the protocol: --fetch-first asks for the first entry in full; --run CMD
runs a command once the session is open (traffic made after connecting);
--flush-then-pcap FILE forces a ring flush over REST and then downloads the
first entry's stream as a pcap.
"""
import argparse
import asyncio
import json
import subprocess
import sys
import urllib.parse
import urllib.request

import websockets


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")  # http://127.0.0.1:PORT
    ap.add_argument("--query", default="")
    ap.add_argument("--want", type=int, default=0)
    ap.add_argument("--idle", type=float, default=3.0)
    ap.add_argument("--fetch-first", action="store_true")
    ap.add_argument("--run")
    ap.add_argument("--flush-then-pcap")
    ap.add_argument("--pcap-first", help="download the first entry's stream as a pcap, session still open")
    ap.add_argument("--no-read", type=float, default=0.0, help="sleep this long before reading anything")
    args = ap.parse_args()

    url = args.base.replace("http://", "ws://") + "/ws?q=" + urllib.parse.quote(args.query)
    entries = []
    async with websockets.connect(url, max_size=None, max_queue=None) as ws:
        if args.no_read:
            await asyncio.sleep(args.no_read)
        fetched = got_full = False
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=args.idle)
            except asyncio.TimeoutError:
                break
            except websockets.ConnectionClosed as closed:
                print(json.dumps({"type": "_closed", "code": closed.code, "reason": closed.reason}), flush=True)
                break
            print(raw, flush=True)
            msg = json.loads(raw)
            if msg.get("type") == "session" and args.run:
                subprocess.run(args.run, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=sys.stderr)
            if msg.get("type") == "entry":
                if msg.get("full"):
                    got_full = True
                else:
                    entries.append(msg)
                    if args.fetch_first and not fetched:
                        fetched = True
                        await ws.send(json.dumps({"type": "fetch", "id": msg["entry"]["id"]}))
            if args.want and len(entries) >= args.want and (got_full or not args.fetch_first):
                break
        if args.pcap_first and entries:
            first = entries[0]
            path = "/api/sessions/%s/entries/%s/pcap" % (first["session"], urllib.parse.quote(first["entry"]["id"]))
            with urllib.request.urlopen(args.base + path) as r, open(args.pcap_first, "wb") as out:
                out.write(r.read())
        if args.flush_then_pcap and entries:
            first = entries[0]
            req = urllib.request.Request(args.base + "/api/ring/flush-oldest", method="POST")
            print(json.dumps({"type": "_flush", "body": urllib.request.urlopen(req).read().decode()}), flush=True)
            # The salvage thread copies the flows out; give it a moment.
            await asyncio.sleep(1.0)
            path = "/api/sessions/%s/entries/%s/pcap" % (first["session"], first["entry"]["id"])
            with urllib.request.urlopen(args.base + path) as r, open(args.flush_then_pcap, "wb") as out:
                out.write(r.read())
            with urllib.request.urlopen(args.base + "/api/sessions") as r:
                print(json.dumps({"type": "_sessions", "body": json.loads(r.read())}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())

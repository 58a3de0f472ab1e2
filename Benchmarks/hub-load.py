#!/usr/bin/python3
"""Measurements for Benchmarks/hub.sh, with a real WebSocket client (python3-websockets).

  hub-load.py count BASE QUERY N          seconds to receive N entries (prints JSON)
  hub-load.py latency BASE POD_URL PROBES TAG  wire-to-entry latency of PROBES requests (prints JSON)
"""
import asyncio
import json
import sys
import time
import urllib.parse
import urllib.request

import websockets


def ws_url(base, query):
    return base.replace("http://", "ws://") + "/ws?q=" + urllib.parse.quote(query)


async def count(base, query, n):
    """Entries until N arrived or none came for 3 s; the rate over those received.
    (A live session emits an exchange when it completes; the last few of a file
    wait for the end of the capture, which a live session never reaches.)"""
    async with websockets.connect(ws_url(base, query), max_size=None, max_queue=None) as ws:
        got = 0
        start = last = None
        while got < n:
            try:
                msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=3))
            except asyncio.TimeoutError:
                break
            if msg.get("type") == "session":
                start = time.monotonic()
            elif msg.get("type") == "entry" and not msg.get("full"):
                got += 1
                last = time.monotonic()
            elif msg.get("type") == "closing":
                raise SystemExit("dropped as too slow: %s" % msg)
        elapsed = (last or time.monotonic()) - start
    print(json.dumps({"entries": got, "seconds": elapsed, "per_second": got / elapsed}))


async def latency(base, pod, probes, tag):
    # Paths unique to this run: a session replays the ring first, where earlier
    # runs' probes are.
    query = 'request.path.startsWith("/probe-%s-")' % tag
    async with websockets.connect(ws_url(base, query), max_size=None, max_queue=None) as ws:
        while json.loads(await ws.recv()).get("type") != "session":
            pass
        await asyncio.sleep(1.0)  # the session has caught up with the ring
        results = []
        loop = asyncio.get_event_loop()
        for i in range(probes):
            path = "/probe-%s-%d" % (tag, i)
            t0 = time.monotonic()
            await loop.run_in_executor(None, lambda: fetch(pod + path))
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                if msg.get("type") == "entry" and msg.get("entry", {}).get("summary", "") == path:
                    results.append(time.monotonic() - t0)
                    break
            await asyncio.sleep(0.1)
    results.sort()
    print(json.dumps({"probes": len(results), "median": results[len(results) // 2],
                      "p95": results[int(len(results) * 0.95) - 1], "max": results[-1]}))


def fetch(url):
    try:
        urllib.request.urlopen(url, timeout=5).read()
    except Exception:
        pass  # a 404 is an answer too


if __name__ == "__main__":
    if sys.argv[1] == "count":
        asyncio.run(count(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    else:
        asyncio.run(latency(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))

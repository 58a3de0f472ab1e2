#!/usr/bin/python3
"""Drives the real dashboard in headless Chromium for DashboardTests.swift.

Starts `chromium --headless --remote-debugging-port=0` with a fresh profile,
talks the Chrome DevTools Protocol to its page over a WebSocket
(python3-websockets), and walks a user through the dashboard with real key
presses and clicks: load, wait for the entries, apply a filter, apply a bad
filter, open an entry, download its pcap. Prints one JSON object per step on
stdout; the Swift test decides what is right. Chromium is always killed
(SIGKILL) at the end.
"""
import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets


class CDP:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.waiting = {}
        self.events = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self.waiting:
                self.waiting.pop(msg["id"]).set_result(msg)
            elif "method" in msg:
                self.events.append(msg)

    async def send(self, method, **params):
        self.next_id += 1
        fut = asyncio.get_event_loop().create_future()
        self.waiting[self.next_id] = fut
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        msg = await asyncio.wait_for(fut, 30)
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg.get("result", {})

    async def js(self, expression):
        r = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def wait(self, expression, timeout=15.0):
        end = time.time() + timeout
        while time.time() < end:
            try:
                v = await self.js(expression)
            except RuntimeError:  # the page is not there yet
                v = None
            if v:
                return v
            await asyncio.sleep(0.1)
        return None

    async def key(self, key, code=None, text=None, vk=0):
        base = {"key": key, "code": code or key, "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk}
        down = dict(base, type="keyDown")
        if text is not None:
            down["text"] = text
        await self.send("Input.dispatchKeyEvent", **down)
        await self.send("Input.dispatchKeyEvent", **dict(base, type="keyUp"))

    async def enter(self):
        await self.key("Enter", "Enter", "\r", 13)

    async def escape(self):
        await self.key("Escape", "Escape", None, 27)

    async def type_char(self, ch):
        await self.key(ch, "Key" + ch.upper() if ch.isalpha() else ch, ch, ord(ch.upper()) if ch.isalpha() else 0)

    def errors(self):
        out = []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append({"kind": "console", "text": " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))})
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append({"kind": "exception", "text": d.get("exception", {}).get("description", d.get("text", ""))})
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                en = p["entry"]
                out.append({"kind": "log", "text": en.get("text", ""), "url": en.get("url", "")})
        return out


def emit(step, **values):
    print(json.dumps(dict(step=step, **values)), flush=True)


ROWS = "[...document.querySelectorAll('#list .row:not([hidden])')].map(r => [...r.children].map(c => c.textContent))"
COUNT = "Number(document.getElementById('count').dataset.count)"


async def scenario(cdp, args, downloads):
    await cdp.send("Runtime.enable")
    await cdp.send("Log.enable")
    await cdp.send("Page.enable")
    await cdp.send("Page.setDownloadBehavior", behavior="allow", downloadPath=downloads)
    await cdp.send("Page.navigate", url=args.base + "/")

    # 1. The entries of the capture arrive.
    await cdp.wait(f"{COUNT} >= {args.expect_count}")
    await cdp.wait("!!document.querySelector('[data-stat=received]') && "
                   "document.getElementById('pods-count').textContent !== ''")
    await asyncio.sleep(0.5)  # anything beyond the expected count would show now
    stats = await cdp.js("Object.fromEntries([...document.querySelectorAll('#stats-list dd')]"
                         ".map(d => [d.dataset.stat, d.textContent]))")
    emit("load", count=await cdp.js(COUNT), rows=await cdp.js(ROWS), stats=stats,
         ring=await cdp.js("document.getElementById('ring-text').textContent"),
         pods=await cdp.js("document.getElementById('pods').textContent"),
         conn=await cdp.js("document.getElementById('conn').textContent"),
         title=await cdp.js("document.title"))
    if args.screenshot:
        await cdp.send("Emulation.setDeviceMetricsOverride", width=1400, height=800, deviceScaleFactor=1, mobile=False)

    # 2. "/" focuses the filter; typing a query and Enter narrows the list.
    if args.filter is not None:
        await cdp.type_char("/")
        focused = await cdp.js("document.activeElement && document.activeElement.id")
        await cdp.send("Input.insertText", text=args.filter)
        await cdp.enter()
        ok = await cdp.wait(f"location.search.includes('q=') && {COUNT} === {args.filter_count} && "
                            "document.getElementById('conn').dataset.state === 'live'")
        await asyncio.sleep(0.5)
        emit("filter", focused=focused, count=await cdp.js(COUNT), rows=await cdp.js(ROWS),
             url=await cdp.js("location.href"), settled=bool(ok))

    # 3. A bad query: the error with its position, the list kept.
    if args.bad_filter is not None:
        before = await cdp.js(COUNT)
        await cdp.escape()  # out of the filter field (where "/" is just a character)
        await cdp.type_char("/")
        await cdp.send("Input.insertText", text=args.bad_filter)
        await cdp.enter()
        await cdp.wait("!document.getElementById('filter-error').hidden")
        await asyncio.sleep(0.3)
        emit("bad-filter", before=before, count=await cdp.js(COUNT),
             error=await cdp.js("document.getElementById('filter-error').textContent"),
             position=await cdp.js("document.getElementById('filter-error').dataset.position"),
             marked=await cdp.js("(document.querySelector('#filter-error mark')||{}).textContent"),
             invalid=await cdp.js("document.getElementById('filter').getAttribute('aria-invalid')"),
             url=await cdp.js("location.href"))
        await cdp.escape()

    if args.expect_count > 0:
        await open_and_download(cdp, args, downloads)
    await later_steps(cdp, args)
    emit("errors", errors=cdp.errors())


async def open_and_download(cdp, args, downloads):
    # 4. Keyboard: g selects the first row, Enter opens it.
    await cdp.js("document.getElementById('list').focus()")
    await cdp.type_char("g")
    await cdp.enter()
    got = await cdp.wait("!!document.querySelector('#detail-body .resp-status, #detail-body .side table')")
    await asyncio.sleep(0.2)
    emit("detail", opened=bool(got),
         title=await cdp.js("document.getElementById('detail-title').textContent"),
         tls=await cdp.js("(document.querySelector('#detail-title .tls-badge')||{}).textContent || ''"),
         meta=await cdp.js("[...document.querySelectorAll('#detail-meta dt')].map(t => [t.textContent, t.nextElementSibling.textContent])"),
         selected=await cdp.js("(document.querySelector('#list .row[aria-selected=true]')||{}).textContent"),
         requestHeaders=await cdp.js("[...document.querySelectorAll('#detail-body section[aria-label=Request] table[aria-label=headers] tr')].map(r => [r.children[0].textContent, r.children[1].textContent])"),
         responseStatus=await cdp.js("(document.querySelector('#detail-body section[aria-label=Response] .resp-status')||{}).textContent"),
         body=await cdp.js("[...document.querySelectorAll('#detail-body pre.body')].map(p => p.textContent)"),
         elements=await cdp.js("document.querySelectorAll('#detail img, #list img, #detail script, #list script').length"),
         sides=await cdp.js("[...document.querySelectorAll('#detail-body section')].map(s => s.textContent)"),
         pcap=await cdp.js("document.getElementById('pcap').getAttribute('href')"))

    if args.screenshot:
        shot = await cdp.send("Page.captureScreenshot", format="png")
        with open(args.screenshot, "wb") as f:
            import base64
            f.write(base64.b64decode(shot["data"]))
        for name, width, dark in (("narrow", 760, False), ("dark", 1400, True)):
            await cdp.send("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
            await cdp.send("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}])
            await asyncio.sleep(0.4)
            shot = await cdp.send("Page.captureScreenshot", format="png")
            with open(args.screenshot.replace(".png", f"-{name}.png"), "wb") as f:
                f.write(base64.b64decode(shot["data"]))

    # 5. The pcap link, clicked: Chromium downloads the file.
    await cdp.js("document.getElementById('pcap').click()")
    path = None
    end = time.time() + 15
    while time.time() < end and path is None:
        done = [n for n in os.listdir(downloads) if not n.endswith(".crdownload")]
        if done:
            path = os.path.join(downloads, done[0])
            time.sleep(0.2)
        else:
            await asyncio.sleep(0.1)
    if path and args.pcap_out:
        shutil.copyfile(path, args.pcap_out)
    emit("pcap", downloaded=os.path.basename(path) if path else None, bytes=os.path.getsize(path) if path else 0)

    # 6. Esc closes the detail.
    await cdp.escape()
    emit("close", hidden=await cdp.js("document.getElementById('detail').hidden"))


async def later_steps(cdp, args):
    # 7. Pause (p) buffers what a new query brings, Resume shows it; j moves the selection.
    if args.pause_query is not None:
        await cdp.type_char("p")
        paused = await cdp.js("document.getElementById('conn').textContent")
        await cdp.type_char("/")
        await cdp.send("Input.insertText", text=args.pause_query)
        await cdp.enter()
        await cdp.wait("Number(document.getElementById('pause').dataset.waiting) > 0")
        await asyncio.sleep(0.5)
        while_paused = dict(count=await cdp.js(COUNT), button=await cdp.js("document.getElementById('pause').textContent"))
        await cdp.escape()
        await cdp.type_char("p")
        await cdp.wait(f"{COUNT} > 0")
        await cdp.type_char("g")
        await cdp.type_char("j")
        await asyncio.sleep(0.3)  # the selection is drawn on the next frame
        emit("pause", conn=paused, whilePaused=while_paused, count=await cdp.js(COUNT),
             button=await cdp.js("document.getElementById('pause').textContent"),
             active=await cdp.js("document.getElementById('list').getAttribute('aria-activedescendant')"))

    # 8. The Scripts panel shows the scripts and their log lines.
    if args.scripts_log:
        await cdp.wait("document.getElementById('scripts-log').textContent.includes(" + json.dumps(args.scripts_log) + ")")
        emit("scripts", hidden=await cdp.js("document.getElementById('scripts').hidden"),
             table=await cdp.js("document.getElementById('scripts-body').textContent"),
             log=await cdp.js("document.getElementById('scripts-log').textContent"))

    # 8b. Load a script from the panel's form and deactivate it with its button, by keyboard.
    if args.script_load:
        title = args.script_load.split("\n")[0].lstrip("/ ").strip()
        await cdp.js("document.getElementById('scripts').open = true")
        await cdp.js("document.getElementById('script-code').focus()")
        await cdp.send("Input.insertText", text=args.script_load)
        await cdp.js("document.getElementById('script-load').focus()")
        await cdp.enter()
        button = "[...document.querySelectorAll('#scripts-body button')].find(b => b.getAttribute('aria-label') === %s)"
        loaded = await cdp.wait((button % json.dumps("Deactivate " + title)) + " !== undefined")
        await cdp.js((button % json.dumps("Deactivate " + title)) + ".focus()")
        await cdp.enter()
        deactivated = await cdp.wait((button % json.dumps("Activate " + title)) + " !== undefined")
        await asyncio.sleep(2.5)  # a poll redraws the table: the focus must stay on the button
        emit("script-ui", loaded=bool(loaded), deactivated=bool(deactivated),
             textarea=await cdp.js("document.getElementById('script-code').value"),
             focused=await cdp.js("document.activeElement && document.activeElement.getAttribute('aria-label') || ''"),
             error=await cdp.js("document.getElementById('script-error').textContent"))

    # 9. The connection state over a while (a worker that drops slow clients).
    if args.watch_conn:
        seen = []
        end = time.time() + args.watch_conn
        while time.time() < end:
            text = await cdp.js("document.getElementById('conn').textContent")
            if not seen or seen[-1] != text:
                seen.append(text)
            await asyncio.sleep(0.05)
        emit("conn", states=seen)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("--chromium", default="chromium")
    ap.add_argument("--expect-count", type=int, default=1)
    ap.add_argument("--filter")
    ap.add_argument("--filter-count", type=int, default=0)
    ap.add_argument("--bad-filter")
    ap.add_argument("--pcap-out")
    ap.add_argument("--screenshot")
    ap.add_argument("--pause-query")
    ap.add_argument("--watch-conn", type=float, default=0)
    ap.add_argument("--scripts-log", help="wait for this text in the Scripts panel's log")
    ap.add_argument("--script-load", help="type this script into the Scripts panel's form, load it, then deactivate it")
    args = ap.parse_args()

    profile = tempfile.mkdtemp(prefix="ks-chromium-")
    downloads = tempfile.mkdtemp(prefix="ks-downloads-")
    chromium = subprocess.Popen(
        [args.chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--disable-background-networking", "--disable-sync", "--mute-audio",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1400,800", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = None
        for _ in range(300):
            try:
                with open(os.path.join(profile, "DevToolsActivePort")) as f:
                    port = int(f.readline())
                    break
            except (OSError, ValueError):
                time.sleep(0.05)
        if port is None:
            raise RuntimeError("chromium did not open its DevTools port")
        targets = []
        for _ in range(100):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
                targets = [t for t in json.loads(r.read()) if t.get("type") == "page"]
            if targets:
                break
            time.sleep(0.05)
        async with websockets.connect(targets[0]["webSocketDebuggerUrl"], max_size=None) as ws:
            cdp = CDP(ws)
            await scenario(cdp, args, downloads)
    finally:
        chromium.send_signal(signal.SIGKILL)
        chromium.wait()
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(downloads, ignore_errors=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as e:  # the test shows what went wrong
        emit("failed", error=f"{type(e).__name__}: {e}")
        sys.exit(1)

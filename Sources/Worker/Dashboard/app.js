// kubeshark dashboard: the live entry list, the KFL filter, the entry detail and the
// statistics, over the worker's API (docs/api.md; what is on screen: docs/dashboard.md).
// Plain JavaScript, no dependencies. Everything taken from traffic is rendered with
// textContent, never as HTML.
"use strict";

(() => {
  const MAX_ENTRIES = 100000;   // summaries kept; the oldest are dropped beyond
  const ROW_H = 28;             // px, the same as --row-h in style.css
  const OVERSCAN = 8;           // rows rendered above and below the viewport
  const STATS_EVERY_MS = 2000;

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };

  // ---- State --------------------------------------------------------------------
  const state = {
    entries: [],          // summaries shown, oldest first; each gets ._s (its session)
    pending: [],          // arrived, not yet shown (next frame, or while paused)
    droppedOldest: 0,     // summaries dropped to stay under MAX_ENTRIES
    selected: -1,         // index into entries
    openId: null,         // the entry shown in the detail
    paused: false,
    follow: true,         // keep the newest row in view
    query: new URLSearchParams(location.search).get("q") || "",
    session: null,
    raw: false,
    lastFull: null,
  };

  // ---- Connection ---------------------------------------------------------------
  // One live socket; a new query opens a second one and swaps it in only once the
  // worker accepted the query, so a refused query leaves the list and stream as they were.
  let live = null;        // {ws, query, session}
  let trying = null;      // {ws, query}
  let backoffMs = 1000;
  let reconnectTimer = null;

  function wsURL(query) {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}/ws?q=${encodeURIComponent(query)}`;
  }

  function setConn(stateName, text) {
    const c = $("conn");
    c.dataset.state = stateName;
    c.textContent = text;
    c.title = text;
  }

  function connect(query) {
    clearTimeout(reconnectTimer);
    if (trying) { trying.abandoned = true; trying.ws.close(1000, "superseded"); }
    const attempt = { ws: new WebSocket(wsURL(query)), query, accepted: false, refused: false, abandoned: false };
    trying = attempt;
    if (!live) setConn("connecting", "connecting…");
    attempt.ws.onmessage = (ev) => onMessage(attempt, ev.data);
    attempt.ws.onclose = (ev) => onClose(attempt, ev);
    attempt.ws.onerror = () => {};  // the close event carries what we can know
  }

  function onMessage(conn, data) {
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    switch (msg.type) {
      case "entry":
        if (msg.full) { onFull(msg.id, msg.entry); return; }
        if (conn !== live) return;
        msg.entry._s = msg.session || conn.session;
        state.pending.push(msg.entry);
        if (state.pending.length > MAX_ENTRIES) {
          const n = state.pending.length - MAX_ENTRIES;
          state.pending.splice(0, n);
          state.droppedOldest += n;
        }
        schedule();
        return;
      case "session":
        conn.accepted = true;
        conn.session = msg.session;
        if (conn === trying) {
          const old = live;
          live = conn; trying = null;
          if (old) { old.abandoned = true; old.ws.close(1000, "new query"); }
          state.query = conn.query;
          state.session = msg.session;
          rememberQuery(conn.query);
          resetList();
          showFilterError(null);
          conn.liveSince = Date.now();
          setConn(state.paused ? "paused" : "live", state.paused ? "paused (live)" : "live");
          $("session").textContent = `session ${msg.session}`;
        }
        return;
      case "error":
        if (msg.id !== undefined) { onFetchError(msg.id, msg.error); return; }
        if (!conn.accepted) {
          conn.refused = true;
          if (typeof msg.position === "number") {
            showFilterError({ query: conn.query, error: msg.error, position: msg.position });
          } else {
            showFilterError({ query: conn.query, error: msg.error });
          }
        }
        return;
      case "closing":
        conn.closingReason = msg.reason;
        return;
      default:
        return;
    }
  }

  function onClose(conn, ev) {
    if (conn.abandoned) return;
    if (conn === trying) trying = null;
    if (conn.refused) {
      // A refused query: the old stream (if any) goes on; nothing to retry.
      if (!live) setConn("closed", "closed: query refused");
      return;
    }
    if (conn !== live && conn.accepted === false && live) {
      return;  // a new query failed to connect; the old one still streams
    }
    if (conn === live) live = null;
    // The wait grows while connections keep failing, also those the worker accepted
    // and then dropped at once (a client too slow at the start of the ring).
    if (conn.liveSince && Date.now() - conn.liveSince > 10000) backoffMs = 1000;
    const reason = conn.closingReason || ev.reason || (ev.code === 1006 ? "connection lost" : `code ${ev.code}`);
    const secs = Math.round(backoffMs / 1000);
    setConn("closed", `closed: ${reason} — reconnecting in ${secs}s`);
    reconnectTimer = setTimeout(() => { setConn("connecting", "reconnecting…"); connect(conn.query); }, backoffMs);
    backoffMs = Math.min(backoffMs * 2, 30000);
  }

  // ---- Filter -------------------------------------------------------------------
  function applyFilter(query) {
    // Sent as typed (the error position then points into the field); only blank means all.
    if (!query.trim()) query = "";
    connect(query);
  }

  // The URL names the query being shown, so a link reproduces the view; a refused
  // query never gets there.
  function rememberQuery(query) {
    const url = new URL(location.href);
    if (query) url.searchParams.set("q", query); else url.searchParams.delete("q");
    history.replaceState(null, "", url);
  }

  function showFilterError(err) {
    const box = $("filter-error");
    const input = $("filter");
    box.replaceChildren();
    if (!err) { box.hidden = true; input.removeAttribute("aria-invalid"); return; }
    input.setAttribute("aria-invalid", "true");
    box.hidden = false;
    box.appendChild(el("div", "", err.error));
    if (typeof err.position === "number") {
      const q = err.query;
      const p = Math.max(0, Math.min(err.position, q.length));
      const pre = el("pre");
      pre.appendChild(document.createTextNode(q.slice(0, p)));
      const mark = el("mark", "", p < q.length ? q[p] : " ");
      mark.title = `position ${err.position}`;
      pre.appendChild(mark);
      pre.appendChild(document.createTextNode(q.slice(p + 1)));
      pre.appendChild(document.createTextNode("\n" + " ".repeat(p)));
      pre.appendChild(el("span", "caret", `^ position ${err.position}`));
      box.appendChild(pre);
      box.dataset.position = String(err.position);
      if (document.activeElement === input) input.setSelectionRange(p, p);
    } else {
      delete box.dataset.position;
    }
    box.appendChild(el("div", "muted", live ? `Still showing: ${live.query || "(every entry)"}` : ""));
  }

  // ---- The list (virtual scrolling) ---------------------------------------------
  const list = $("list");
  const spacer = $("spacer");
  const pool = [];        // row elements, reused
  let frameQueued = false;

  function schedule() {
    if (!frameQueued) { frameQueued = true; requestAnimationFrame(frame); }
  }

  function frame() {
    frameQueued = false;
    if (!state.paused && state.pending.length) {
      const add = state.pending;
      state.pending = [];
      for (let i = 0; i < add.length; i++) state.entries.push(add[i]);
      const over = state.entries.length - MAX_ENTRIES;
      if (over > 0) {
        state.entries.splice(0, over);
        state.droppedOldest += over;
        if (state.selected >= 0) state.selected = state.selected >= over ? state.selected - over : -1;
        // Someone reading older rows keeps seeing the same rows while the oldest go.
        if (!state.follow) list.scrollTop = Math.max(0, list.scrollTop - over * ROW_H);
      }
    }
    render();
  }

  function resetList() {
    state.entries = [];
    state.pending = [];
    state.droppedOldest = 0;
    state.selected = -1;
    state.follow = true;
    list.scrollTop = 0;
    schedule();
  }

  function render() {
    const n = state.entries.length;
    spacer.style.height = `${n * ROW_H}px`;
    if (state.follow && n) list.scrollTop = n * ROW_H;
    const top = list.scrollTop;
    const height = list.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(n, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const need = last - first;
    while (pool.length < need) {
      const row = makeRow();
      pool.push(row);
      list.appendChild(row);
    }
    for (let i = 0; i < pool.length; i++) {
      const row = pool[i];
      const idx = first + i;
      if (i >= need) { row.hidden = true; row._idx = -1; continue; }
      row.hidden = false;
      fillRow(row, idx, state.entries[idx]);
    }
    list.setAttribute("aria-activedescendant", state.selected >= first && state.selected < last ? `row-${state.selected}` : "");
    $("empty").hidden = n > 0;
    const countEl = $("count");
    countEl.dataset.count = String(n);
    countEl.textContent = `${n.toLocaleString()} entr${n === 1 ? "y" : "ies"}`;
    countEl.title = `The list keeps the last ${MAX_ENTRIES.toLocaleString()} entries.`;
    $("dropped").textContent = state.droppedOldest
      ? `${state.droppedOldest.toLocaleString()} oldest dropped (keeps the last ${MAX_ENTRIES.toLocaleString()})` : "";
    $("follow").hidden = state.follow || n === 0 || list.scrollHeight <= list.clientHeight;
    const pause = $("pause");
    const waiting = state.pending.length;
    pause.textContent = state.paused ? `Resume${waiting ? ` (${waiting.toLocaleString()} new)` : ""}` : "Pause";
    pause.dataset.waiting = String(waiting);
  }

  function makeRow() {
    const row = el("div", "row");
    row.setAttribute("role", "option");
    row._cells = {};
    for (const c of ["proto", "method", "summary", "status", "src", "dst", "time", "lat", "size"]) {
      const span = el("span", `c-${c}`);
      row._cells[c] = span;
      row.appendChild(span);
    }
    row._badge = el("span", "badge");
    row._cells.proto.appendChild(row._badge);
    // A lock on entries decrypted from a process's TLS calls (empty otherwise, so the cell's text stays the protocol's).
    row._tls = el("span", "tls-mark");
    row._cells.proto.appendChild(row._tls);
    row._idx = -1;
    return row;
  }

  // The process a TLS entry's plaintext came from: "nginx (pid 4242)".
  function tlsOrigin(e) {
    return `${e.process || "a process"}${typeof e.pid === "number" ? ` (pid ${e.pid})` : ""}`;
  }

  function fillRow(row, idx, e) {
    row.style.top = `${idx * ROW_H}px`;
    row.id = `row-${idx}`;
    row.classList.toggle("alt", idx % 2 === 1);
    row.setAttribute("aria-selected", idx === state.selected ? "true" : "false");
    if (row._idx === idx && row._entry === e) return;
    row._idx = idx; row._entry = e;
    const c = row._cells;
    const p = e.protocol || {};
    row._badge.textContent = p.abbr || p.name || "?";
    row._badge.style.background = p.backgroundColor || "";
    row._badge.style.color = p.foregroundColor || "";
    row._badge.title = p.longName || p.name || "";
    row._tls.textContent = e.tls === true ? "🔒" : "";
    row._tls.title = e.tls === true ? `TLS, decrypted in ${tlsOrigin(e)}` : "";
    c.method.textContent = e.method || "";
    c.summary.textContent = e.summary || "";
    c.summary.title = e.summary || "";
    const st = statusOf(e);
    c.status.textContent = st.text;
    c.status.className = `c-status st ${st.cls}`;
    c.src.textContent = endpoint(e.src);
    c.src.title = endpointLong(e.src);
    c.dst.textContent = endpoint(e.dst);
    c.dst.title = endpointLong(e.dst);
    c.time.textContent = clock(e.timestamp);
    c.lat.textContent = latency(e.elapsedTime);
    c.size.textContent = `${bytes(e.requestSize)} / ${bytes(e.responseSize)}`;
    row.setAttribute("aria-label", `${p.abbr || ""} ${e.method || ""} ${e.summary || ""} ${st.text}`.trim());
  }

  function statusOf(e) {
    if (typeof e.status === "number" && e.status > 0) {
      const k = Math.floor(e.status / 100);
      return { text: String(e.status), cls: k >= 1 && k <= 5 ? `st-${k}` : "st-x" };
    }
    const t = e.statusText || (e.unanswered ? "no reply" : "");
    // "NOERROR" (DNS) and "NONE" (Kafka) are fine; error, fail, SERVFAIL, NXDOMAIN... are not.
    const bad = /(^|[^a-z])(error|err|fail|failed|refused|denied)|servfail|nxdomain|^no reply$/i.test(t);
    return { text: t, cls: bad ? "st-err" : "st-x" };
  }

  function endpoint(x) {
    if (!x) return "";
    if (x.name) return x.namespace ? `${x.namespace}/${x.name}` : x.name;
    const ip = x.ip && x.ip.includes(":") ? `[${x.ip}]` : x.ip || "";
    return x.port !== undefined ? `${ip}:${x.port}` : ip;
  }
  function endpointLong(x) {
    if (!x) return "";
    const ip = x.ip && x.ip.includes(":") ? `[${x.ip}]` : x.ip || "";
    const addr = x.port !== undefined ? `${ip}:${x.port}` : ip;
    return x.name ? `${x.namespace ? x.namespace + "/" : ""}${x.name} (${addr})` : addr;
  }
  function pad(n, w) { return String(n).padStart(w, "0"); }
  function clock(ms) {
    if (typeof ms !== "number") return "";
    const d = new Date(ms);
    return `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.${pad(d.getMilliseconds(), 3)}`;
  }
  function latency(ms) {
    if (typeof ms !== "number") return "";
    if (ms < 1) return `${Math.round(ms * 1000)} µs`;
    if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
    return `${(ms / 1000).toFixed(2)} s`;
  }
  function bytes(n) {
    if (typeof n !== "number") return "–";
    if (n < 1024) return `${n} B`;
    if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
    if (n < 1073741824) return `${(n / 1048576).toFixed(1)} MiB`;
    return `${(n / 1073741824).toFixed(2)} GiB`;
  }

  const head = document.querySelector(".list-head-wrap");
  list.addEventListener("scroll", () => {
    head.scrollLeft = list.scrollLeft;
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - ROW_H;
    state.follow = atBottom;
    schedule();
  }, { passive: true });
  list.addEventListener("click", (ev) => {
    const row = ev.target.closest(".row");
    if (!row || row._idx < 0) return;
    select(row._idx, false);
    open(row._idx);
  });
  window.addEventListener("resize", schedule);

  function select(idx, scrollInto) {
    const n = state.entries.length;
    if (!n) return;
    idx = Math.max(0, Math.min(n - 1, idx));
    state.selected = idx;
    if (scrollInto) {
      const top = idx * ROW_H;
      if (top < list.scrollTop) list.scrollTop = top;
      else if (top + ROW_H > list.scrollTop + list.clientHeight) list.scrollTop = top + ROW_H - list.clientHeight;
      state.follow = idx === n - 1;
    }
    schedule();
  }

  // ---- Detail -------------------------------------------------------------------
  let detailTimer = null;

  function open(idx) {
    const e = state.entries[idx];
    if (!e) return;
    state.openId = e.id;
    showDetailFrame(e);
    const session = e._s || state.session;
    fetch(`/api/sessions/${encodeURIComponent(session)}/entries/${encodeURIComponent(e.id)}`)
      .then(async (r) => {
        if (!r.ok) throw new Error((await r.text()).trim() || `HTTP ${r.status}`);
        return r.json();
      })
      .then((full) => { if (state.openId === e.id) onFull(e.id, full); })
      .catch((err) => { if (state.openId === e.id) onFetchError(e.id, err.message); });
  }

  function showDetailFrame(e) {
    $("main").classList.add("with-detail");
    const d = $("detail");
    d.hidden = false;
    const title = $("detail-title");
    title.replaceChildren();
    const p = e.protocol || {};
    const badge = el("span", "badge", p.abbr || p.name || "?");
    badge.style.background = p.backgroundColor || "";
    badge.style.color = p.foregroundColor || "";
    title.appendChild(badge);
    if (e.tls === true) title.appendChild(el("span", "badge tls-badge", "🔒 TLS"));
    title.appendChild(el("span", "", `${e.method || ""} ${e.summary || ""}`.trim() || e.id));
    const st = statusOf(e);
    if (st.text) title.appendChild(el("span", `st ${st.cls}`, st.text));
    const session = e._s || state.session;
    const pcap = $("pcap");
    pcap.href = `/api/sessions/${encodeURIComponent(session)}/entries/${encodeURIComponent(e.id)}/pcap`;
    pcap.setAttribute("download", `${e.id}.pcap`);
    const meta = $("detail-meta");
    meta.replaceChildren();
    const add = (k, v) => { if (v !== "" && v !== undefined) { meta.appendChild(el("dt", "", k)); meta.appendChild(el("dd", "", v)); } };
    const longName = p.longName || p.name || "";
    add("protocol", p.version && !longName.includes(p.version) ? `${longName} ${p.version}` : longName);
    if (e.tls === true) add("TLS", `decrypted in ${tlsOrigin(e)} (OpenSSL calls)`);
    add("source", endpointLong(e.src));
    add("destination", endpointLong(e.dst));
    if (typeof e.timestamp === "number") add("time", new Date(e.timestamp).toISOString());
    add("latency", latency(e.elapsedTime));
    add("sizes", `request ${bytes(e.requestSize)}, response ${bytes(e.responseSize)}`);
    add("id", `${e.id} (stream ${e.stream ?? "?"}, session ${session})`);
    $("detail-body").replaceChildren(el("p", "note side", "loading…"));
  }

  function onFull(id, full) {
    if (id !== state.openId) return;
    state.lastFull = full;
    renderFull(full);
  }

  function onFetchError(id, message) {
    if (id !== state.openId) return;
    const body = $("detail-body");
    body.className = "detail-body single";
    body.replaceChildren(el("p", "note side", `Could not load the entry: ${message}`));
  }

  function renderFull(full) {
    const body = $("detail-body");
    body.replaceChildren();
    if (state.raw) {
      body.className = "detail-body single";
      const side = el("div", "side");
      side.appendChild(el("pre", "body raw", JSON.stringify(full, null, 2)));
      body.appendChild(side);
      return;
    }
    body.className = "detail-body";
    body.appendChild(renderSide("Request", full.request, full, true));
    body.appendChild(renderSide("Response", full.response, full, false));
  }

  function isHeaderList(v) {
    return Array.isArray(v) && v.every((h) => h && typeof h === "object" && "name" in h && "value" in h);
  }

  function renderSide(title, msg, full, isRequest) {
    const side = el("section", "side");
    side.setAttribute("aria-label", title);
    const h = el("h3", "", title);
    side.appendChild(h);
    if (!msg || typeof msg !== "object") {
      side.appendChild(el("p", "note", isRequest ? "no request" : (full.unanswered ? "no response (unanswered)" : "no response")));
      return side;
    }
    const httpLike = isHeaderList(msg.headers);
    if (!httpLike) {
      side.appendChild(tree(msg, 0));
      return side;
    }
    if (isRequest) {
      side.appendChild(el("div", "startline", `${msg.method || ""} ${msg.path || msg.url || ""} ${msg.httpVersion || ""}`.trim()));
    } else {
      const st = statusOf({ status: msg.status, statusText: msg.statusText });
      const line = el("div", "startline");
      line.appendChild(document.createTextNode(`${msg.httpVersion || ""} `));
      line.appendChild(el("span", `st ${st.cls} resp-status`, msg.status ?? ""));
      line.appendChild(document.createTextNode(` ${msg.statusText || ""}`));
      side.appendChild(line);
    }
    side.appendChild(el("h4", "", `Headers (${msg.headers.length})`));
    side.appendChild(kvTable(msg.headers.map((x) => [x.name, x.value]), "headers"));
    if (isHeaderList(msg.queryString) && msg.queryString.length) {
      side.appendChild(el("h4", "", "Query string"));
      side.appendChild(kvTable(msg.queryString.map((x) => [x.name, x.value]), "query"));
    }
    if (isHeaderList(msg.cookies) && msg.cookies.length) {
      side.appendChild(el("h4", "", "Cookies"));
      side.appendChild(kvTable(msg.cookies.map((x) => [x.name, x.value]), "cookies"));
    }
    const content = isRequest ? msg.postData : msg.content;
    if (content && (content.text !== undefined || content.size)) {
      const mime = content.mimeType || "";
      side.appendChild(el("h4", "", `Body${mime ? ` (${mime})` : ""}${typeof content.size === "number" ? `, ${bytes(content.size)}` : ""}`));
      side.appendChild(el("pre", "body", prettyBody(content)));
    }
    const rest = {};
    for (const k of Object.keys(msg)) {
      if (!["method", "url", "path", "httpVersion", "headers", "queryString", "cookies", "postData", "content",
            "status", "statusText", "headersSize", "bodySize", "redirectURL"].includes(k)) rest[k] = msg[k];
    }
    if (Object.keys(rest).length) {
      side.appendChild(el("h4", "", "More"));
      side.appendChild(tree(rest, 0));
    }
    return side;
  }

  function prettyBody(content) {
    let text = content.text ?? "";
    if (content.encoding === "base64") {
      try { text = atob(text); } catch { /* shown as is */ }
    }
    const mime = (content.mimeType || "").toLowerCase();
    const looksJSON = /json/.test(mime) || /^\s*[{[]/.test(text);
    if (looksJSON) {
      try { return JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON after all */ }
    }
    return text;
  }

  function kvTable(pairs, label) {
    const t = el("table", "kv");
    t.setAttribute("aria-label", label);
    const tb = el("tbody");
    for (const [k, v] of pairs) {
      const tr = el("tr");
      tr.appendChild(el("th", "", k));
      const td = el("td");
      if (v !== null && typeof v === "object") td.appendChild(tree(v, 1)); else td.textContent = v === null ? "null" : String(v);
      tr.appendChild(td);
      tb.appendChild(tr);
    }
    t.appendChild(tb);
    return t;
  }

  // A generic view of any JSON value: objects and arrays as key/value tables,
  // nested ones folded below the first levels.
  function tree(v, depth) {
    if (v === null || typeof v !== "object") return el("span", "", v === null ? "null" : String(v));
    const entries = Array.isArray(v) ? v.map((x, i) => [`[${i}]`, x]) : Object.entries(v);
    if (!entries.length) return el("span", "muted", Array.isArray(v) ? "[]" : "{}");
    const t = kvTable(entries, "fields");
    t.classList.add("nested");
    if (depth < 2) return t;
    const d = el("details", "tree");
    d.appendChild(el("summary", "", Array.isArray(v) ? `${v.length} items` : `${entries.length} fields`));
    const inner = el("div", "tree-nested");
    inner.appendChild(t);
    d.appendChild(inner);
    return d;
  }

  function closeDetail() {
    state.openId = null;
    $("detail").hidden = true;
    $("main").classList.remove("with-detail");
    list.focus();
    schedule();
  }

  // ---- Statistics and pods ------------------------------------------------------
  let podsSource = "unknown";   // "stats", "api", or "none"

  async function pollStats() {
    try {
      const r = await fetch("/api/stats", { cache: "no-store" });
      if (r.ok) renderStats(await r.json());
    } catch { /* the connection state says it */ }
    pollScripts();
    setTimeout(pollStats, STATS_EVERY_MS);
  }

  // ---- Scripts (docs/scripting.md): their state and log lines -----------------
  let scriptLogSeq = 0;
  let scriptsAvailable = true;   // false when the server has no /api/scripts (an older hub)

  async function pollScripts() {
    if (!scriptsAvailable) return;
    try {
      const r = await fetch("/api/scripts", { cache: "no-store" });
      if (!r.ok) { scriptsAvailable = false; return; }
      renderScripts(await r.json());
      const l = await fetch(`/api/scripts/logs?after=${scriptLogSeq}`, { cache: "no-store" });
      if (l.ok) appendScriptLog(await l.json());
    } catch { /* the connection state says it */ }
  }

  // Script changes go to the same API as `kubeshark scripts` (a hub passes them to every worker).
  async function scriptRequest(path, body) {
    const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!r.ok) throw new Error(`${r.status}: ${(await r.text()).slice(0, 300)}`);
  }

  async function scriptAction(action, title) {
    $("script-error").textContent = "";
    try { await scriptRequest(`/api/scripts/${action}`, { title }); } catch (e) { $("script-error").textContent = `${action} ${title}: ${e.message}`; }
    pollScripts();
  }

  $("script-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const code = $("script-code").value;
    if (!code.trim()) return;
    $("script-error").textContent = "";
    try {
      await scriptRequest("/api/scripts", { code, active: true });
      $("script-code").value = "";
    } catch (e) { $("script-error").textContent = `load: ${e.message}`; }
    pollScripts();
  });

  function renderScripts(list) {
    $("scripts").hidden = false;   // the server takes scripts: the panel can load one
    $("scripts-count").textContent = `(${list.filter((x) => x.state === "running").length} running of ${list.length})`;
    const body = $("scripts-body");
    // Redrawn every poll: keep the keyboard focus on the same button.
    const focused = body.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    body.replaceChildren();
    if (!list.length) return;
    const t = el("table");
    const head = el("tr");
    for (const h of ["title", "state", "hooks", "entries", "packets", "errors", "memory", ""]) head.appendChild(el("th", "", h));
    t.appendChild(head);
    for (const x of list) {
      const tr = el("tr");
      // A hub's list says on how many workers each script runs.
      const where = Array.isArray(x.workers) ? ` (${x.workers.length} worker${x.workers.length === 1 ? "" : "s"})` : "";
      const state = el("td", x.state === "failed" ? "bad" : "", x.state + where + (x.reason ? `: ${x.reason}` : ""));
      tr.append(el("td", "", x.title), state, el("td", "", (x.hooks || []).join(", ")),
        el("td", "", String(x.entries ?? "")), el("td", "", String(x.packets ?? "")),
        el("td", x.errors > 0 ? "bad" : "", String(x.errors ?? "")), el("td", "", x.memoryBytes ? bytes(x.memoryBytes) : ""));
      const actions = el("td");
      const running = x.active && x.state !== "failed";
      for (const action of [running ? "deactivate" : "activate", "remove"]) {
        const b = el("button", "", action === "remove" ? "Remove" : action === "activate" ? "Activate" : "Deactivate");
        b.type = "button";
        b.dataset.key = `${action === "remove" ? "remove" : "toggle"} ${x.title}`;   // the toggle keeps focus as it flips
        b.setAttribute("aria-label", `${b.textContent} ${x.title}`);
        b.addEventListener("click", () => scriptAction(action, x.title));
        actions.appendChild(b);
      }
      tr.appendChild(actions);
      t.appendChild(tr);
    }
    body.appendChild(t);
    if (focused) {
      const again = [...body.querySelectorAll("button")].find((b) => b.dataset.key === focused);
      if (again) again.focus();
    }
  }

  function appendScriptLog(lines) {
    const pre = $("scripts-log");
    for (const line of lines) {
      scriptLogSeq = Math.max(scriptLogSeq, line.seq);
      const origin = line.worker ? `${line.worker} ` : "";
      const span = el("span", line.level, `${clock(line.time)} ${origin}[${line.script}] ${line.message}\n`);
      pre.appendChild(span);
    }
    while (pre.childNodes.length > 500) pre.removeChild(pre.firstChild);
    if (lines.length) { $("scripts").hidden = false; pre.scrollTop = pre.scrollHeight; }
  }

  function renderStats(s) {
    const cap = s.capture || {};
    const ring = s.ring || {};
    const dl = $("stats-list");
    dl.replaceChildren();
    const add = (k, v, bad, title) => {
      const div = el("div");
      const dt = el("dt", "", k);
      const dd = el("dd", bad ? "bad" : "", v);
      if (title) div.title = title;
      dd.dataset.stat = k;
      div.append(dt, dd);
      dl.appendChild(div);
    };
    const num = (n) => (typeof n === "number" ? n.toLocaleString() : "–");
    add("worker", s.worker ?? "–");
    add("capture", `${cap.backend ?? "?"}${cap.running ? "" : " (stopped)"}`, !!cap.failure, cap.failure || "");
    add("received", num(cap.received), false, "packets received by the capture");
    add("dropped by kernel", num(cap.droppedByKernel), cap.droppedByKernel > 0);
    add("dropped by us", num((cap.droppedByUs || 0) + (ring.droppedQueueFull || 0) + (ring.droppedDiskError || 0)),
      (cap.droppedByUs || 0) + (ring.droppedQueueFull || 0) + (ring.droppedDiskError || 0) > 0,
      `capture ${num(cap.droppedByUs)}, ring queue full ${num(ring.droppedQueueFull)}, disk errors ${num(ring.droppedDiskError)}`);
    add("segments", num(ring.segments), false, `flushed ${num(ring.segmentsFlushed)}, lost ${num(ring.segmentsLost)}`);
    add("sessions", num(Array.isArray(s.sessions) ? s.sessions.length : undefined));
    if (typeof s.uptimeSeconds === "number") add("up", duration(s.uptimeSeconds));
    if (Array.isArray(s.plugins)) add("plugins", s.plugins.map((p) => p.name).join(", ") || "none", s.plugins.length === 0);
    if (Array.isArray(s.pluginsRefused) && s.pluginsRefused.length > 0) {
      add("plugins refused", num(s.pluginsRefused.length), true, s.pluginsRefused.join("\n"));
    }
    if (cap.failure) add("failure", cap.failure, true);
    const pct = ring.limitBytes ? Math.min(100, (100 * (ring.usageBytes || 0)) / ring.limitBytes) : 0;
    $("ring-bar").style.width = `${pct}%`;
    $("ring-meter").setAttribute("aria-valuenow", String(Math.round(pct)));
    $("ring-text").textContent = `${bytes(ring.usageBytes)} of ${bytes(ring.limitBytes)}`;
    if (Array.isArray(s.pods) || Array.isArray(s.targetedPods)) {
      podsSource = "stats";
      renderPods(s.pods || s.targetedPods, "/api/stats");
    } else if (podsSource === "unknown") {
      podsSource = "asking";
      fetch("/api/pods", { cache: "no-store" })
        .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
        .then((pods) => { podsSource = "api"; renderPods(Array.isArray(pods) ? pods : pods.pods || [], "/api/pods"); })
        .catch(() => { podsSource = "none"; renderPods(null); });
    } else if (podsSource === "api") {
      fetch("/api/pods", { cache: "no-store" }).then((r) => r.json())
        .then((pods) => renderPods(Array.isArray(pods) ? pods : pods.pods || [], "/api/pods")).catch(() => {});
    }
  }

  function renderPods(pods, from) {
    const body = $("pods-body");
    body.replaceChildren();
    if (!pods) {
      $("pods-count").textContent = "(none listed)";
      body.appendChild(el("p", "muted", "No pod list from this worker: it captures what its interface or file holds. The hub lists targeted pods."));
      return;
    }
    $("pods-count").textContent = `(${pods.length})`;
    if (!pods.length) { body.appendChild(el("p", "muted", `No targeted pods (${from}).`)); return; }
    const t = el("table");
    const head = el("tr");
    for (const h of ["namespace", "pod", "IP", "node"]) head.appendChild(el("th", "", h));
    t.appendChild(head);
    for (const p of pods) {
      const tr = el("tr");
      const ip = p.ip || p.podIP || (Array.isArray(p.ips) ? p.ips.join(", ") : "");
      for (const v of [p.namespace ?? "", p.name ?? p.pod ?? "", ip, p.node ?? ""]) tr.appendChild(el("td", "", v));
      t.appendChild(tr);
    }
    body.appendChild(t);
  }

  function duration(s) {
    s = Math.floor(s);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60, 2)}s`;
    return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60), 2)}m`;
  }

  // ---- Controls and keyboard ----------------------------------------------------
  function togglePause() {
    state.paused = !state.paused;
    const b = $("pause");
    b.setAttribute("aria-pressed", String(state.paused));
    if (live) setConn(state.paused ? "paused" : "live", state.paused ? "paused (live)" : "live");
    schedule();
  }

  $("pause").addEventListener("click", togglePause);
  $("clear").addEventListener("click", () => {
    state.entries = []; state.pending = []; state.selected = -1; state.droppedOldest = 0; state.follow = true;
    schedule();
  });
  $("follow").addEventListener("click", () => { state.follow = true; schedule(); });
  $("filter-form").addEventListener("submit", (ev) => { ev.preventDefault(); applyFilter($("filter").value); });
  $("close-detail").addEventListener("click", closeDetail);
  $("raw-toggle").addEventListener("click", () => {
    state.raw = !state.raw;
    $("raw-toggle").setAttribute("aria-pressed", String(state.raw));
    if (state.lastFull && state.openId) renderFull(state.lastFull);
  });

  document.addEventListener("keydown", (ev) => {
    const t = ev.target;
    const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || (t && t.isContentEditable);
    if (ev.key === "Escape") {
      if (typing) { t.blur(); list.focus(); ev.preventDefault(); return; }
      if (!$("detail").hidden) { closeDetail(); ev.preventDefault(); }
      return;
    }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const inDetail = t && t.closest && t.closest("#detail");
    const page = Math.max(1, Math.floor(list.clientHeight / ROW_H) - 1);
    const cur = state.selected < 0 ? (state.entries.length ? Math.floor(list.scrollTop / ROW_H) - 1 : -1) : state.selected;
    switch (ev.key) {
      case "/": $("filter").focus(); $("filter").select(); break;
      case "j": case "ArrowDown": if (inDetail && ev.key === "ArrowDown") return; select(cur + 1, true); followDetail(); break;
      case "k": case "ArrowUp": if (inDetail && ev.key === "ArrowUp") return; select(cur - 1, true); followDetail(); break;
      case "PageDown": if (inDetail) return; select(cur + page, true); break;
      case "PageUp": if (inDetail) return; select(cur - page, true); break;
      case "g": case "Home": if (inDetail) return; select(0, true); break;
      case "G": case "End": if (inDetail) return; select(state.entries.length - 1, true); break;
      case "Enter":
        if (t && (t.tagName === "BUTTON" || t.tagName === "A" || t.tagName === "SUMMARY")) return;
        if (state.selected >= 0) { open(state.selected); }
        break;
      case "p": togglePause(); break;
      default: return;
    }
    ev.preventDefault();
  });

  // With the detail open, moving the selection shows the newly selected entry.
  function followDetail() {
    if ($("detail").hidden) return;
    clearTimeout(detailTimer);
    detailTimer = setTimeout(() => { if (state.selected >= 0) open(state.selected); }, 120);
  }

  // ---- Start --------------------------------------------------------------------
  $("filter").value = state.query;
  connect(state.query);
  pollStats();
  schedule();
})();

extension ConsolePage {
    /// The same text as console/console.html (a test keeps the two equal): the web console served at /.
    public static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Skald console</title>
<link rel="icon" href="data:,">
<style>
:root {
  --bg: #f6f7f9; --panel: #fff; --ink: #1d232b; --muted: #677283; --line: #dde2e8; --accent: #2459c7;
  --running: #2563eb; --compensating: #9333ea; --completed: #15803d; --compensated: #b45309; --cancelled: #b45309;
  --compensation_failed: #b91c1c; --stuck: #dc2626; --abandoned: #4b5563; --pending: #9aa4b2;
  --succeeded: #15803d; --failed: #b91c1c; --outcome_unknown: #ea580c; --compensation_skipped: #9aa4b2;
  --resolved: #0f766e; --compensation_resolved: #0f766e;
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--ink); }
header { display: flex; align-items: center; gap: 20px; padding: 10px 20px; background: #111827; color: #fff; }
header h1 { font-size: 17px; margin: 0; letter-spacing: .5px; }
header nav a { color: #cbd5e1; text-decoration: none; margin-right: 14px; }
header nav a.active, header nav a:hover { color: #fff; }
header .live { margin-left: auto; font-size: 12px; color: #9ca3af; }
main { padding: 18px 20px; max-width: 1400px; margin: 0 auto; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin-bottom: 16px; }
h2 { font-size: 16px; margin: 0 0 10px; }
h3 { font-size: 14px; margin: 0 0 8px; color: var(--muted); text-transform: uppercase; letter-spacing: .4px; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
tr:hover td { background: #f8fafc; }
a { color: var(--accent); }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; white-space: nowrap; }
.counts { display: flex; flex-wrap: wrap; gap: 8px; margin-bottom: 12px; }
.count { border: 1px solid var(--line); border-radius: 8px; padding: 6px 12px; background: var(--panel); cursor: pointer; min-width: 96px; }
.count b { display: block; font-size: 20px; }
.count.selected { outline: 2px solid var(--accent); }
.filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 10px; }
input, select, textarea, button { font: inherit; }
input, select, textarea { border: 1px solid var(--line); border-radius: 6px; padding: 5px 8px; background: #fff; }
button { border: 1px solid var(--line); background: #fff; border-radius: 6px; padding: 5px 12px; cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.danger { background: #b91c1c; border-color: #b91c1c; color: #fff; }
button:disabled { opacity: .5; cursor: default; }
.muted { color: var(--muted); }
.error { color: #b91c1c; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 6px 18px; }
.grid div span { color: var(--muted); margin-right: 6px; }
.grid div { overflow-wrap: anywhere; }
.actions { display: flex; gap: 8px; flex-wrap: wrap; }
pre { background: #f8fafc; border: 1px solid var(--line); border-radius: 6px; padding: 8px; overflow: auto; max-height: 320px; margin: 0; }
.history td:first-child { white-space: nowrap; color: var(--muted); }
dialog { border: 1px solid var(--line); border-radius: 10px; padding: 18px; width: min(480px, 92vw); }
dialog textarea, dialog select { width: 100%; margin: 6px 0 12px; }
svg text { font: 12px system-ui, sans-serif; }
.pager { display: flex; gap: 8px; justify-content: flex-end; margin-top: 10px; }
.legend { display: flex; gap: 12px; flex-wrap: wrap; font-size: 12px; color: var(--muted); margin-top: 6px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
</style>
</head>
<body>
<header>
  <h1>Skald</h1>
  <nav><a href="#/runs" id="nav-runs">Runs</a><a href="#/definitions" id="nav-definitions">Definitions</a><a href="#/participants" id="nav-participants">Participants</a></nav>
  <span class="live" id="live"></span>
</header>
<main id="main"><p class="muted">Loading…</p></main>
<dialog id="token-dialog">
  <form method="dialog" id="token-form">
    <h2>This server needs a token</h2>
    <p class="muted">Enter the token skald serve was started with (--token or SKALD_TOKEN). It is kept for this browser tab only.</p>
    <input id="token-input" type="password" autocomplete="off" style="width:100%" placeholder="token">
    <p class="error" id="token-error"></p>
    <div class="actions"><button class="primary" value="ok">Use this token</button></div>
  </form>
</dialog>
<dialog id="action-dialog">
  <form method="dialog" id="action-form">
    <h2 id="action-title"></h2>
    <p id="action-explain" class="muted"></p>
    <label id="action-step-label">Step<select id="action-step"></select></label>
    <label>Note <span class="muted" id="action-note-hint"></span><textarea id="action-note" rows="3"></textarea></label>
    <label id="action-response-label">Response later steps read <span class="muted">(JSON, optional: the body the participant would have answered)</span><textarea id="action-response" rows="3" class="mono"></textarea></label>
    <label>By <input id="action-by" placeholder="your name" style="width:100%;margin:6px 0 12px"></label>
    <p class="error" id="action-error"></p>
    <div class="actions"><button value="cancel" formnovalidate>Back</button><button class="danger" id="action-confirm" value="confirm">Confirm</button></div>
  </form>
</dialog>
<script>
"use strict";
const STATUSES = ["running", "compensating", "completed", "compensated", "compensation_failed", "stuck", "abandoned"];
const main = document.getElementById("main");
let generation = 0; // bumped on every navigation: loops of an earlier page stop
let token = sessionStorage.getItem("skald.token") || "";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== undefined && value !== null) node.setAttribute(key, value);
  for (const child of children.flat()) if (child !== undefined && child !== null) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}
function color(status) { return getComputedStyle(document.documentElement).getPropertyValue("--" + status).trim() || "#6b7280"; }
function badge(status) { return el("span", { class: "badge", style: `background:${color(status)}`, "data-status": status }, status.replace(/_/g, " ")); }
function when(text) { return text ? new Date(text) : null; }
function relative(date) {
  if (!date) return "";
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return seconds + "s ago";
  if (seconds < 3600) return Math.round(seconds / 60) + "m ago";
  if (seconds < 86400) return Math.round(seconds / 3600) + "h ago";
  return Math.round(seconds / 86400) + "d ago";
}
function duration(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return "";
  if (ms < 1000) return Math.round(ms) + "ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + "s";
  if (ms < 3600000) return Math.floor(ms / 60000) + "m " + Math.round((ms % 60000) / 1000) + "s";
  return Math.floor(ms / 3600000) + "h " + Math.round((ms % 3600000) / 60000) + "m";
}
function runDuration(run) {
  const start = when(run.createdAt), end = ["running", "compensating"].includes(run.status) ? new Date() : when(run.updatedAt);
  return start && end ? end - start : null;
}

class HTTPError extends Error { constructor(status, message) { super(message); this.status = status; } }
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token) headers["Authorization"] = "Bearer " + token;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method: options.method || "GET", headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (response.status === 401) { await askForToken(token ? "That token was refused." : ""); return api(path, options); }
  if (!response.ok) throw new HTTPError(response.status, (body && body.error && body.error.message) || response.statusText);
  return body;
}
let tokenPrompt = null;
function askForToken(message) {
  if (tokenPrompt) return tokenPrompt;
  const dialog = document.getElementById("token-dialog");
  document.getElementById("token-error").textContent = message;
  document.getElementById("token-input").value = "";
  tokenPrompt = new Promise(resolve => {
    dialog.addEventListener("close", () => {
      token = document.getElementById("token-input").value.trim();
      sessionStorage.setItem("skald.token", token);
      tokenPrompt = null;
      resolve();
    }, { once: true });
  });
  dialog.showModal();
  return tokenPrompt;
}
function setLive(text) { document.getElementById("live").textContent = text; }
function sleep(ms) { return new Promise(resolve => setTimeout(resolve, ms)); }

// ---- Runs ----
async function showRuns(query) {
  const mine = ++generation;
  const state = { status: query.get("status") || "", saga: query.get("saga") || "", q: query.get("q") || "", cursors: [], cursor: null, next: null };
  const countsBox = el("div", { class: "counts", id: "counts" });
  const statusSelect = el("select", { id: "filter-status", onchange: () => go({ status: statusSelect.value }) },
    el("option", { value: "" }, "any status"), STATUSES.map(s => el("option", { value: s, selected: s === state.status }, s.replace(/_/g, " "))));
  const sagaSelect = el("select", { id: "filter-saga", onchange: () => go({ saga: sagaSelect.value }) }, el("option", { value: "" }, "any saga"));
  const search = el("input", { id: "search", placeholder: "run id or idempotency key", value: state.q, size: 32 });
  const searchForm = el("form", { onsubmit: event => { event.preventDefault(); go({ q: search.value.trim() }); } }, search, " ", el("button", {}, "Search"));
  const tbody = el("tbody", { id: "runs-body" });
  const message = el("p", { class: "muted", id: "runs-message" });
  const older = el("button", { id: "older", onclick: () => { state.cursors.push(state.cursor); state.cursor = state.next; refresh(); } }, "Older →");
  const newer = el("button", { id: "newer", onclick: () => { state.cursor = state.cursors.pop() || null; refresh(); } }, "← Newer");
  main.replaceChildren(
    el("div", { class: "panel" }, el("h2", {}, "Runs"), countsBox,
      el("div", { class: "filters" }, statusSelect, sagaSelect, searchForm),
      el("table", { id: "runs" }, el("thead", {}, el("tr", {}, ["Run", "Saga", "Status", "Started", "Duration", "Current step / reason"].map(h => el("th", {}, h)))), tbody),
      message, el("div", { class: "pager" }, newer, older)));
  function go(change) {
    const next = new URLSearchParams({ status: state.status, saga: state.saga, q: state.q, ...change });
    for (const [key, value] of [...next]) if (!value) next.delete(key);
    location.hash = "#/runs" + (next.toString() ? "?" + next : "");
  }
  api("/v1/definitions").then(list => {
    const names = [...new Set(list.definitions.map(d => d.name))].sort();
    for (const name of names) sagaSelect.append(el("option", { value: name, selected: name === state.saga }, name));
  }).catch(() => {});

  async function refresh() {
    const counts = await api("/v1/counts");
    countsBox.replaceChildren(...STATUSES.map(s => el("div", {
      class: "count" + (state.status === s ? " selected" : ""), "data-status": s, onclick: () => go({ status: state.status === s ? "" : s })
    }, el("b", { style: `color:${color(s)}` }, counts.counts[s] || 0), s.replace(/_/g, " "))),
      el("div", { class: "count", onclick: () => go({ status: "" }) }, el("b", {}, counts.total), "all"));
    let runs = [], next = null;
    if (state.q) {
      try { runs = [await api("/v1/runs/" + encodeURIComponent(state.q))]; } catch (error) { if (error.status !== 404) throw error; }
      if (runs.length === 0) runs = (await api("/v1/runs?idempotencyKey=" + encodeURIComponent(state.q))).runs;
    } else {
      const params = new URLSearchParams({ limit: "25" });
      if (state.status) params.set("status", state.status);
      if (state.saga) params.set("saga", state.saga);
      if (state.cursor) params.set("cursor", state.cursor);
      const page = await api("/v1/runs?" + params);
      runs = page.runs; next = page.nextCursor;
    }
    state.next = next;
    older.disabled = !next; newer.disabled = state.cursors.length === 0 && !state.cursor;
    tbody.replaceChildren(...runs.map(run => {
      const reason = run.stuck || run.compensationFailure || run.failure;
      return el("tr", { "data-run": run.id },
        el("td", {}, el("a", { href: "#/runs/" + run.id, class: "mono" }, run.id)),
        el("td", {}, run.saga + " v" + run.version),
        el("td", {}, badge(run.status)),
        el("td", { title: run.createdAt }, relative(when(run.createdAt))),
        el("td", {}, duration(runDuration(run))),
        el("td", {}, run.currentStep ? el("b", {}, run.currentStep) : "", reason ? el("span", { class: "muted" }, (run.currentStep ? " · " : "") + (reason.step ? reason.step + ": " : "") + reason.reason) : ""));
    }));
    message.textContent = runs.length ? "" : (state.q ? "No run has this id or idempotency key." : "No runs yet: start one with skald start or POST /v1/runs.");
  }
  while (mine === generation) {
    try { await refresh(); setLive("live · updated " + new Date().toLocaleTimeString()); }
    catch (error) { setLive("not updated: " + error.message); }
    await sleep(2000);
  }
}

// ---- Graph ----
function drawGraph(graph, stepStates) {
  if (!graph || !graph.waves) return el("p", { class: "muted" }, "No graph: the definition does not validate.");
  const boxW = 150, boxH = 44, gapX = 70, gapY = 26, pad = 16;
  const place = {};
  graph.waves.forEach((wave, column) => wave.forEach((name, row) => { place[name] = { x: pad + column * (boxW + gapX), y: pad + row * (boxH + gapY + 14) }; }));
  const rows = Math.max(...graph.waves.map(w => w.length));
  const width = pad * 2 + graph.waves.length * boxW + (graph.waves.length - 1) * gapX;
  const height = pad * 2 + rows * (boxH + gapY + 14);
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "saga graph", id: "graph" },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#94a3b8" }))));
  for (const step of graph.steps) for (const from of step.dependsOn) {
    const a = place[from], b = place[step.name];
    if (!a || !b) continue;
    const x1 = a.x + boxW, y1 = a.y + boxH / 2, x2 = b.x, y2 = b.y + boxH / 2, mid = (x1 + x2) / 2;
    root.append(svg("path", { d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`, fill: "none", stroke: "#94a3b8", "stroke-width": 1.5, "marker-end": "url(#arrow)" }));
  }
  for (const step of graph.steps) {
    const p = place[step.name]; if (!p) continue;
    const state = stepStates ? stepStates[step.name] : null;
    const status = state ? state.status : null;
    const fill = status ? color(status) : "#ffffff";
    const ink = status ? "#ffffff" : "#1d232b";
    const group = svg("g", { "data-step": step.name, "data-status": status || "" },
      svg("title", {}, step.name + (status ? ": " + status : "") + (step.pivot ? " (pivot)" : "") + (step.compensation ? "; compensation declared" : "; no compensation")),
      svg("rect", { x: p.x, y: p.y, width: boxW, height: boxH, rx: 8, fill, stroke: step.pivot ? "#111827" : "#94a3b8", "stroke-width": step.pivot ? 3 : 1.2 }),
      svg("text", { x: p.x + boxW / 2, y: p.y + 18, "text-anchor": "middle", fill: ink, "font-weight": 600 }, step.name.length > 20 ? step.name.slice(0, 19) + "…" : step.name),
      svg("text", { x: p.x + boxW / 2, y: p.y + 35, "text-anchor": "middle", fill: ink, "font-size": 11 }, status ? status.replace(/_/g, " ") : ""),
      svg("text", { x: p.x + boxW / 2, y: p.y + boxH + 13, "text-anchor": "middle", fill: "#677283", "font-size": 11 }, step.compensation ? "↺ compensation" + (step.pivot ? " · pivot" : "") : "no compensation" + (step.pivot ? " · pivot" : "")));
    root.append(group);
  }
  return el("div", { style: "overflow:auto" }, root);
}

// ---- Timeline ----
function drawTimeline(run) {
  const start = when(run.createdAt).getTime();
  const live = ["running", "compensating"].includes(run.status);
  const attempts = [];
  for (const step of run.steps) for (const attempt of step.attemptLog) attempts.push({ step: step.name, ...attempt });
  const ends = attempts.map(a => (a.finishedAt ? when(a.finishedAt) : new Date()).getTime());
  const end = Math.max(live ? Date.now() : when(run.updatedAt).getTime(), ...ends, start + 1);
  const labelW = 150, width = 900, rowH = 26, pad = 20;
  const scale = (width - labelW - pad) / (end - start);
  const height = pad * 2 + run.steps.length * rowH + 20;
  const root = svg("svg", { width: "100%", viewBox: `0 0 ${width} ${height}`, id: "timeline", role: "img", "aria-label": "attempt timeline", style: `max-width:${width}px` });
  const ticks = 6;
  for (let i = 0; i <= ticks; i++) {
    const x = labelW + (width - labelW - pad) * i / ticks;
    root.append(svg("line", { x1: x, y1: pad - 6, x2: x, y2: height - 20, stroke: "#eef1f4" }),
      svg("text", { x, y: height - 6, "text-anchor": "middle", fill: "#677283", "font-size": 11 }, "+" + duration((end - start) * i / ticks)));
  }
  run.steps.forEach((step, row) => {
    const y = pad + row * rowH;
    root.append(svg("text", { x: 0, y: y + 15, fill: "#1d232b" }, step.name));
    for (const attempt of step.attemptLog) {
      const a = when(attempt.startedAt).getTime(), b = attempt.finishedAt ? when(attempt.finishedAt).getTime() : Date.now();
      const x = labelW + (a - start) * scale, w = Math.max(3, (b - a) * scale);
      const outcome = attempt.outcome;
      const timedOut = attempt.error && /timeout|no complete response/i.test(attempt.error);
      const fill = outcome === "succeeded" ? (attempt.phase === "compensate" ? color("compensated") : color("succeeded")) : outcome === "in_flight" ? color("running") : timedOut ? color("outcome_unknown") : color("failed");
      root.append(svg("rect", {
        x, y: y + (attempt.phase === "compensate" ? 12 : 2), width: w, height: 10, rx: 2, fill, "data-phase": attempt.phase, "data-outcome": outcome,
        "stroke": attempt.phase === "compensate" ? "#111827" : "none", "stroke-dasharray": attempt.phase === "compensate" ? "3 2" : null
      }, svg("title", {}, `${step.name} ${attempt.phase} attempt ${attempt.number}: ${outcome}${attempt.httpStatus ? " HTTP " + attempt.httpStatus : ""}${attempt.error ? " — " + attempt.error : ""}${attempt.durationMs !== null ? " (" + duration(attempt.durationMs) + ")" : ""}${attempt.node ? " on " + attempt.node : ""}`)));
    }
  });
  return el("div", {}, el("div", { style: "overflow:auto" }, root),
    el("div", { class: "legend" }, [["succeeded", "forward succeeded"], ["compensated", "compensation succeeded (dashed, lower)"], ["failed", "failed"], ["outcome_unknown", "timed out"], ["running", "in flight"]]
      .map(([s, label]) => el("span", {}, el("i", { style: `background:${color(s)}` }), label))));
}

// ---- A run ----
function allowedActions(run) {
  // A run Skald cannot drive can only be abandoned (when its definition still reads).
  if (run.unrunnable) return { abandon: run.unrunnable.canBeAbandoned };
  const stuckAtPivot = run.status === "stuck" && run.stuck && /outcome of the pivot .* is unknown/.test(run.stuck.reason);
  return {
    cancel: run.status === "running" || stuckAtPivot,
    retry: run.status === "compensation_failed" || run.status === "stuck",
    resolve: run.status === "compensation_failed" || run.status === "stuck",
    abandon: ["running", "compensating", "stuck", "compensation_failed"].includes(run.status),
  };
}
function openAction(run, kind, after) {
  const texts = {
    cancel: ["Cancel run " + run.id, "No new step starts; the steps that completed are compensated, in reverse order.", "why (optional)"],
    retry: ["Retry run " + run.id, run.status === "stuck" ? "The stuck step is sent again with the same idempotency key." : "The failed compensations run again, then the compensation carries on.", "what changed (optional)"],
    resolve: run.status === "stuck"
      ? ["Resolve a step of run " + run.id, "Record that a person did this step's work by hand; the run goes on with the steps after it.", "what was done (required)"]
      : ["Resolve a compensation of run " + run.id, "Record that a person undid this step by hand; the compensation carries on with the next one.", "what was done (required)"],
    abandon: ["Abandon run " + run.id, "Nothing more is sent or undone: the business settled this run outside Skald.", "why (required)"],
  }[kind];
  document.getElementById("action-title").textContent = texts[0];
  document.getElementById("action-explain").textContent = texts[1];
  document.getElementById("action-note-hint").textContent = texts[2];
  document.getElementById("action-note").value = "";
  document.getElementById("action-error").textContent = "";
  const stepSelect = document.getElementById("action-step");
  const failedStatuses = run.status === "stuck" ? ["failed", "outcome_unknown"] : ["compensation_failed"];
  const failedSteps = run.steps.filter(s => failedStatuses.includes(s.status)).map(s => s.name);
  stepSelect.replaceChildren(...failedSteps.map(name => el("option", { value: name }, name)));
  document.getElementById("action-step-label").style.display = kind === "resolve" ? "" : "none";
  document.getElementById("action-response").value = "";
  document.getElementById("action-response-label").style.display = kind === "resolve" && run.status === "stuck" ? "" : "none";
  const dialog = document.getElementById("action-dialog");
  dialog.dataset.kind = kind;
  dialog.returnValue = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "confirm") return;
    const note = document.getElementById("action-note").value.trim();
    const by = document.getElementById("action-by").value.trim();
    const body = {};
    if (by) body.by = by;
    if (kind === "cancel") { if (note) body.reason = note; }
    else if (note) body.note = note;
    if (kind === "resolve") body.step = stepSelect.value;
    const responseText = document.getElementById("action-response").value.trim();
    if (kind === "resolve" && run.status === "stuck" && responseText) {
      try { body.response = JSON.parse(responseText); }
      catch (error) { document.getElementById("action-error").textContent = "The response is not JSON: " + error.message; dialog.showModal(); return; }
    }
    try { await api(`/v1/runs/${run.id}/${kind}`, { method: "POST", body }); after(); }
    catch (error) { document.getElementById("action-error").textContent = error.message; dialog.showModal(); }
  };
  dialog.showModal();
}
async function showRun(id) {
  const mine = ++generation;
  let lastSequence = 0;
  const history = el("tbody", { id: "history" });
  const holder = el("div");
  main.replaceChildren(holder, el("div", { class: "panel" }, el("h3", {}, "History"), el("table", { class: "history" }, history)));
  async function render() {
    const run = await api("/v1/runs/" + encodeURIComponent(id));
    const states = {};
    for (const step of run.steps) states[step.name] = step;
    const can = allowedActions(run);
    const reason = run.stuck || run.compensationFailure || run.failure;
    holder.replaceChildren(
      el("div", { class: "panel" },
        el("h2", {}, el("span", { class: "mono" }, run.id), " ", badge(run.status)),
        el("div", { class: "grid" },
          el("div", {}, el("span", {}, "saga"), el("a", { href: "#/definitions/" + encodeURIComponent(run.saga) }, run.saga + " v" + run.version)),
          el("div", {}, el("span", {}, "started"), new Date(run.createdAt).toLocaleString(), " (" + relative(when(run.createdAt)) + ")"),
          el("div", {}, el("span", {}, "duration"), duration(runDuration(run))),
          el("div", {}, el("span", {}, "idempotency key"), run.idempotencyKey || "—"),
          el("div", {}, el("span", {}, "trace"), el("code", { id: "trace-id" }, run.traceId || "—")),
          run.deadlineAt ? el("div", {}, el("span", {}, "deadline"), new Date(run.deadlineAt).toLocaleString()) : null),
        reason ? el("p", { class: run.status === "completed" ? "" : "error", id: "run-reason" }, (reason.step ? reason.step + ": " : "") + reason.reason) : null,
        run.unrunnable ? el("p", { class: "error", id: "run-unrunnable" },
          "Skald cannot drive this run, so nothing more is sent for it: " + run.unrunnable.problems.join("; ")
            + (run.unrunnable.canBeAbandoned ? ". Settle what it did by hand, then abandon it." : "")) : null,
        el("div", { class: "actions", id: "actions" },
          can.cancel ? el("button", { class: "danger", id: "action-cancel", onclick: () => openAction(run, "cancel", render) }, "Cancel…") : null,
          can.retry ? el("button", { class: "primary", id: "action-retry", onclick: () => openAction(run, "retry", render) }, "Retry…") : null,
          can.resolve ? el("button", { id: "action-resolve", onclick: () => openAction(run, "resolve", render) }, "Resolve…") : null,
          can.abandon ? el("button", { id: "action-abandon", onclick: () => openAction(run, "abandon", render) }, "Abandon…") : null)),
      el("div", { class: "panel" }, el("h3", {}, "Graph"), drawGraph(run.graph, states)),
      el("div", { class: "panel" }, el("h3", {}, "Timeline"), drawTimeline(run)),
      el("div", { class: "panel" }, el("h3", {}, "Steps"),
        el("table", { id: "steps" }, el("thead", {}, el("tr", {}, ["Step", "Status", "Attempts", "Response", "Last error", "Idempotency key"].map(h => el("th", {}, h)))),
          el("tbody", {}, run.steps.map(step => el("tr", { "data-step": step.name },
            el("td", {}, step.name), el("td", {}, badge(step.status), step.outcomeUnknown ? el("span", { class: "muted" }, " outcome unknown") : "",
              step.waiting ? el("div", { class: "muted waiting" }, waitingText(step.waiting)) : "",
              step.resolution ? el("div", { class: "muted resolution" }, (step.status === "resolved" ? "done by hand" : "undone by hand") + (step.resolution.by ? " by " + step.resolution.by : "") + ": " + step.resolution.note) : ""),
            el("td", {}, step.attempts + (step.compensationAttempts ? " + " + step.compensationAttempts + " undo" : "")),
            el("td", {}, step.response ? el("details", {}, el("summary", {}, "HTTP " + step.response.status), el("pre", {}, JSON.stringify(step.response.body, null, 2))) : ""),
            el("td", { class: step.lastError ? "error" : "" }, step.lastError || ""),
            el("td", { class: "mono" }, step.idempotencyKey)))))),
      el("div", { class: "panel" }, el("h3", {}, "Input"), el("pre", { id: "input" }, JSON.stringify(run.input, null, 2))));
    return run;
  }
  async function addEvents(events) {
    for (const event of events) history.append(el("tr", {}, el("td", { title: event.at }, new Date(event.at).toLocaleTimeString()), el("td", {}, el("code", {}, event.kind)), el("td", {}, event.message)));
  }
  try {
    let run = await render();
    const first = await api(`/v1/runs/${encodeURIComponent(id)}/events?after=0`);
    await addEvents(first.events); lastSequence = first.lastSequence;
    setLive("live");
    while (mine === generation) {
      let page;
      try { page = await api(`/v1/runs/${encodeURIComponent(id)}/events?after=${lastSequence}&wait=20s`); }
      catch (error) { setLive("not updated: " + error.message); await sleep(2000); continue; }
      if (mine !== generation) return;
      if (page.events.length) { await addEvents(page.events); lastSequence = page.lastSequence; run = await render(); }
      else if (["running", "compensating"].includes(run.status)) { run = await render(); }
      else await sleep(2000);
      setLive("live · updated " + new Date().toLocaleTimeString());
    }
  } catch (error) {
    holder.replaceChildren(el("div", { class: "panel" }, el("p", { class: "error" }, error.status === 404 ? "No run with id " + id + "." : error.message)));
  }
}

// ---- Definitions ----
async function showDefinitions(name) {
  ++generation;
  setLive("");
  try {
    const list = (await api("/v1/definitions")).definitions;
    const byName = {};
    for (const d of list) (byName[d.name] = byName[d.name] || []).push(d);
    const panels = [el("div", { class: "panel" }, el("h2", {}, "Definitions"),
      el("table", { id: "definitions" }, el("thead", {}, el("tr", {}, ["Saga", "Versions", "Steps", "Description"].map(h => el("th", {}, h)))),
        el("tbody", {}, Object.keys(byName).sort().map(key => {
          const versions = byName[key].sort((a, b) => b.version - a.version);
          return el("tr", {}, el("td", {}, el("a", { href: "#/definitions/" + encodeURIComponent(key) }, key)), el("td", {}, versions.map(v => "v" + v.version).join(", ")),
            el("td", {}, versions[0].steps.join(", ")), el("td", { class: "muted" }, versions[0].description || ""));
        }))),
      list.length ? null : el("p", { class: "muted" }, "No saga is registered: skald define FILE, or skald serve --sagas FOLDER."))];
    if (name && byName[name]) {
      for (const version of byName[name].sort((a, b) => b.version - a.version)) {
        const full = await api(`/v1/definitions/${encodeURIComponent(name)}?version=${version.version}`);
        panels.push(el("div", { class: "panel", "data-definition": name + "@" + version.version },
          el("h2", {}, name + " v" + version.version), el("p", { class: "muted" }, "registered " + new Date(full.registeredAt).toLocaleString() + " · hash " + full.hash.slice(0, 12)),
          drawGraph(full.graph, null),
          el("details", {}, el("summary", {}, "Definition"), el("pre", {}, JSON.stringify(full.definition, null, 2)))));
      }
    }
    main.replaceChildren(...panels);
  } catch (error) { main.replaceChildren(el("div", { class: "panel" }, el("p", { class: "error" }, error.message))); }
}

// ---- Participants ----
function untilText(text) {
  const date = when(text);
  if (!date) return "";
  const seconds = Math.max(0, Math.ceil((date.getTime() - Date.now()) / 1000));
  return "in " + (seconds < 60 ? seconds + "s" : duration(seconds * 1000));
}
function circuitColor(circuit) {
  return { closed: color("completed"), open: color("compensation_failed"), half_open: color("compensated") }[circuit] || "#6b7280";
}
function waitingText(waiting) {
  if (waiting.reason === "circuit_open") return "waiting: " + waiting.participant + " circuit open, next probe " + untilText(waiting.until);
  return "queued at " + waiting.participant;
}
async function showParticipants() {
  const mine = ++generation;
  const tbody = el("tbody", { id: "participants-body" });
  const message = el("p", { class: "muted", id: "participants-message" });
  main.replaceChildren(el("div", { class: "panel" }, el("h2", {}, "Participants"),
    el("p", { class: "muted" }, "Each participant's circuit breaker, bulkhead and rate limit as this server sees them now. They are kept in memory: after a restart every circuit starts closed, and each node of a shared database has its own."),
    el("table", { id: "participants" }, el("thead", {}, el("tr", {}, ["Participant", "Circuit", "Failures", "In flight", "Queued", "Sent", "Held back", "Settings"].map(h => el("th", {}, h)))), tbody),
    message));
  async function refresh() {
    const list = (await api("/v1/participants")).participants;
    tbody.replaceChildren(...list.map(p => {
      const circuit = p.circuit || "none";
      let shown = circuit === "none" ? "no breaker" : circuit.replace(/_/g, "-");
      if (circuit === "open" && p.nextProbeAt) shown += ", probe " + untilText(p.nextProbeAt);
      return el("tr", { "data-participant": p.name, "data-circuit": circuit },
        el("td", {}, el("b", {}, p.name), p.saga ? el("span", { class: "muted" }, " (" + p.saga + ")") : ""),
        el("td", {}, el("span", { class: "badge", style: `background:${circuitColor(circuit)}` }, shown)),
        el("td", {}, p.failureRate === null ? "—" : Math.round(p.failureRate) + "% of " + p.callsInWindow),
        el("td", {}, p.inFlight + (p.settings.bulkhead ? " / " + p.settings.bulkhead.maxInFlight : "")),
        el("td", {}, String(p.queued), p.pausedUntil ? el("span", { class: "muted" }, " Retry-After, " + untilText(p.pausedUntil)) : ""),
        el("td", { class: "sent" }, String(p.sent)),
        el("td", {}, String(p.heldBack)),
        el("td", { class: "muted" }, p.summary));
    }));
    message.textContent = list.length ? "" : "No participants: declare them in a saga's \"participants\", or give skald serve a --participants file.";
  }
  while (mine === generation) {
    try { await refresh(); setLive("live · updated " + new Date().toLocaleTimeString()); }
    catch (error) { setLive("not updated: " + error.message); }
    await sleep(2000);
  }
}

function route() {
  const hash = location.hash.slice(1) || "/runs";
  const [path, queryText] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  document.getElementById("nav-runs").classList.toggle("active", parts[0] !== "definitions" && parts[0] !== "participants");
  document.getElementById("nav-definitions").classList.toggle("active", parts[0] === "definitions");
  document.getElementById("nav-participants").classList.toggle("active", parts[0] === "participants");
  if (parts[0] === "definitions") showDefinitions(parts[1]);
  else if (parts[0] === "participants") showParticipants();
  else if (parts[0] === "runs" && parts[1]) showRun(parts[1]);
  else showRuns(new URLSearchParams(queryText || ""));
}
window.addEventListener("hashchange", route);
route();
</script>
</body>
</html>
"""#
}

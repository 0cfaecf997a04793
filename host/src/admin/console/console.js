// The Projector console: reads the admin endpoint's JSON and SVG, and sends
// its changes with the admin token the user gives (kept for this tab only).
"use strict";

const REFRESH_MS = 2000;
const $ = (id) => document.getElementById(id);

function token() {
  return $("token").value.trim();
}

function say(text, kind) {
  const m = $("message");
  m.textContent = text;
  m.className = kind || "";
}

// Reads of events and the read model need the token too; the host's own state does not.
function headers() {
  return token() ? { Accept: "application/json", Authorization: `Bearer ${token()}` } : { Accept: "application/json" };
}

async function get(path) {
  const response = await fetch(path, { headers: headers() });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${path}: ${response.status}`);
  return body;
}

// One change at a time: every button waits while one is under way.
async function post(path) {
  if (!token()) throw new Error("give the admin token first (the host keeps it in .projector/admin.token)");
  const buttons = [...document.querySelectorAll("button")];
  buttons.forEach((b) => (b.dataset.wasDisabled = b.disabled, b.disabled = true));
  try {
    const response = await fetch(path, { method: "POST", headers: { Authorization: `Bearer ${token()}` } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || (body.refused || []).join("; ") || `${path}: ${response.status}`);
    return body;
  } finally {
    buttons.forEach((b) => (b.disabled = b.dataset.wasDisabled === "true"));
  }
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "-" : String(text);
  if (className) td.className = className;
  return td;
}

function fixed(value, digits) {
  return value === null || value === undefined ? null : Number(value).toFixed(digits);
}

function stateText(p) {
  if (p.state === "retrying") return `retrying ${p.retrying_keys} key${p.retrying_keys === 1 ? "" : "s"}`;
  return p.state.replace("_", " ");
}

// Projections: the table and the chart, refreshed while the page is shown.
async function showProjections() {
  const status = await get("/status");
  const body = $("projection-table").tBodies[0];
  body.replaceChildren();
  for (const p of status.host.projections) {
    const row = body.insertRow();
    row.dataset.projection = p.name;
    cell(row, p.name, "name");
    cell(row, p.build, "build");
    cell(row, stateText(p), `state state-${p.state}`);
    cell(row, p.checkpoint, "number checkpoint");
    cell(row, p.head, "number head");
    cell(row, p.lag_events, "number lag");
    cell(row, fixed(p.lag_seconds, 1), "number lag-seconds");
    cell(row, fixed(p.events_per_second, 0), "number rate");
    cell(row, p.parked, "number parked");
    if (p.quarantined) row.title = `quarantined: ${p.quarantined}`;
  }
  const errors = [status.host.source_error && `source: ${status.host.source_error}`, status.host.sink_error && `sink: ${status.host.sink_error}`];
  $("host-errors").textContent = errors.filter(Boolean).join(" — ");
  const chart = await fetch("/console/rate.svg");
  if (chart.ok && chart.headers.get("Content-Type") === "image/svg+xml") $("rate-chart").innerHTML = await chart.text();
}

// Parked events: a list filtered by projection and key; one shown in full, replayed or discarded.
let chosenParked = null;

async function showParked() {
  const projections = (await get("/status")).host.projections.map((p) => p.name);
  const select = $("parked-projection");
  const chosen = select.value;
  select.replaceChildren(new Option("all", ""), ...projections.map((n) => new Option(n, n)));
  select.value = chosen;
  const query = new URLSearchParams();
  if (select.value) query.set("projection", select.value);
  if ($("parked-key").value) query.set("key", $("parked-key").value);
  if ($("parked-all").checked) query.set("all", "1");
  const { parked } = await get(`/parked?${query}`);
  const body = $("parked-table").tBodies[0];
  body.replaceChildren();
  for (const p of parked) {
    const row = body.insertRow();
    row.dataset.id = p.id;
    row.className = "clickable" + (chosenParked === p.id ? " selected" : "");
    cell(row, `#${p.id}`, "id");
    cell(row, p.projection);
    cell(row, p.key, "key");
    cell(row, p.status, "status");
    cell(row, `${p.event_type} ${p.stream}@${p.revision}`);
    cell(row, p.position, "number");
    cell(row, p.error, "error-text");
    row.addEventListener("click", () => showOneParked(p.id).catch((e) => say(e.message, "error")));
  }
  if (parked.length === 0) {
    const empty = body.insertRow().insertCell();
    empty.colSpan = 7;
    empty.className = "empty";
    empty.textContent = "no parked events";
  }
  if (chosenParked !== null && !parked.some((p) => p.id === chosenParked)) $("parked-detail").hidden = true;
}

async function showOneParked(id) {
  const record = await get(`/parked/show?id=${id}`);
  chosenParked = id;
  $("parked-title").textContent = `#${record.id} ${record.event_type} ${record.stream}@${record.revision} (${record.projection}, key ${record.key}): ${record.status}`;
  $("parked-json").textContent = JSON.stringify(record, null, 2);
  $("parked-detail").hidden = false;
  const waiting = record.status === "parked";
  $("replay").disabled = !waiting;
  $("discard").disabled = !waiting;
  for (const row of $("parked-table").tBodies[0].rows) row.classList.toggle("selected", row.dataset.id === String(id));
}

async function resolveParked(action) {
  if (chosenParked === null) return;
  let path = `/parked/${action}?id=${chosenParked}`;
  if (action === "discard") {
    const reason = $("discard-reason").value.trim();
    if (!reason) throw new Error("say why it is discarded");
    path += `&reason=${encodeURIComponent(reason)}`;
  }
  say(`${action === "replay" ? "replaying" : "discarding"} #${chosenParked}...`, "");
  const { done } = await post(path);
  say(done, "done");
  $("parked-detail").hidden = true;
  chosenParked = null;
  await showParked();
}

// Plugins: the builds each projection runs; reload and rollback.
async function showPlugins() {
  const status = await get("/status");
  const body = $("plugin-table").tBodies[0];
  body.replaceChildren();
  for (const b of status.projections) {
    const row = body.insertRow();
    row.dataset.projection = b.name;
    cell(row, b.name);
    cell(row, b.version, "build");
    cell(row, b.previous);
    cell(row, b.swaps, "number");
    cell(row, b.file);
    const actions = row.insertCell();
    const reload = document.createElement("button");
    reload.textContent = "Reload";
    reload.addEventListener("click", () => change(`/plugins/reload?name=${encodeURIComponent(b.name)}`));
    reload.className = "reload";
    const rollback = document.createElement("button");
    rollback.textContent = "Roll back";
    rollback.className = "rollback";
    rollback.disabled = !b.previous;
    rollback.addEventListener("click", () => change(`/plugins/rollback?name=${encodeURIComponent(b.name)}`));
    actions.append(reload, " ", rollback);
  }
}

async function change(path) {
  try {
    const answer = await post(path);
    const lines = [
      ...(answer.swapped || []),
      ...(answer.started || []).map((s) => `started ${s}`),
      ...(answer.stopped || []).map((s) => `stopped ${s}`),
      ...(answer.upcasters || []).map((u) => `upcasters ${u}`),
      ...(answer.unchanged || []).map((u) => `unchanged ${u}`),
    ];
    say(answer.rolled_back || lines.join("; ") || "done", "done");
  } catch (e) {
    say(e.message, "error");
  }
  await showPlugins();
}

// Explorer: a node by label and key, drawn with its neighbours; click one to go there.
async function showExplorer() {
  const select = $("explore-label");
  if (select.options.length === 0) {
    const stats = await get("/graph/labels");
    const labels = Object.keys(stats.labels || stats.nodes || {}).sort();
    select.replaceChildren(...labels.map((l) => new Option(l, l)));
  }
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  if (params.get("label")) select.value = params.get("label");
  if (params.get("key")) $("explore-key").value = params.get("key");
  if (!params.get("label") || !params.get("key")) return;
  const query = new URLSearchParams({ label: params.get("label"), key: params.get("key") });
  const drawing = await fetch(`/graph/node.svg?${query}`, { headers: headers() });
  if (!drawing.ok || drawing.headers.get("Content-Type") !== "image/svg+xml") {
    $("graph").innerHTML = "";
    $("node-json").textContent = "";
    throw new Error((await drawing.json().catch(() => ({}))).error || `the drawing: ${drawing.status}`);
  }
  $("graph").innerHTML = await drawing.text();
  const node = await get(`/graph/node?${query}`);
  $("node-json").textContent = JSON.stringify(node.node.props, null, 2);
  for (const g of $("graph").querySelectorAll("g.node")) {
    g.addEventListener("click", () => explore(g.dataset.label, g.dataset.key));
  }
}

function explore(label, key) {
  location.hash = `#explorer?${new URLSearchParams({ label, key })}`;
}

// Pages: the hash names the one shown; the projections page refreshes itself.
const PAGES = { projections: showProjections, parked: showParked, plugins: showPlugins, explorer: showExplorer };

function page() {
  const name = location.hash.slice(1).split("?")[0];
  return PAGES[name] ? name : "projections";
}

async function show() {
  const name = page();
  for (const section of document.querySelectorAll(".page")) section.classList.toggle("current", section.id === name);
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("current", link.id === `nav-${name}`);
  try {
    await PAGES[name]();
  } catch (e) {
    say(e.message, "error");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const kept = sessionStorage.getItem("projector-token");
  if (kept) $("token").value = kept;
  $("token").addEventListener("input", () => sessionStorage.setItem("projector-token", token()));
  $("parked-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    showParked().catch((err) => say(err.message, "error"));
  });
  $("replay").addEventListener("click", () => resolveParked("replay").catch((e) => say(e.message, "error")));
  $("discard").addEventListener("click", () => resolveParked("discard").catch((e) => say(e.message, "error")));
  $("reload-all").addEventListener("click", () => change("/plugins/reload"));
  $("explore-form").addEventListener("submit", (e) => {
    e.preventDefault();
    explore($("explore-label").value, $("explore-key").value.trim());
  });
  window.addEventListener("hashchange", () => {
    say("", "");
    show();
  });
  show();
  setInterval(() => {
    if (page() === "projections") show();
  }, REFRESH_MS);
});

// The Running page: polls /ui/api/running every 2 s and updates the rows in place (a row
// leaves when its model does), unloads a model, and shows an engine's log live from
// /ui/api/logs/NAME (server-sent events; EventSource sends the session cookie). The server
// words every cell (`show`); this only puts that text in the cells the page's own <template>
// marks with data-field. Names, errors and log lines are untrusted: text nodes only.

import { announce, getJSON, postJSON } from "./zoo.js";

const REFRESH_MS = 2000;
const MAX_LOG_LINES = 2000; // a long-running engine's log must not grow the page forever

const $ = (id) => document.getElementById(id);
const tbody = $("rp-rows");
const logs = new Map(); // model name -> {row, source, toggle}
let logCount = 0;
const unloading = new Set(); // names whose Unload this page sent and that have not answered
let refreshing = false;
let again = false;

// Every meter's bar, from its data-fraction (CSP allows styles set from a script only).
function drawMeters(root) {
  for (const bar of root.querySelectorAll("[data-fraction]")) {
    const fraction = bar.dataset.fraction === "" ? null : Number(bar.dataset.fraction);
    const meter = bar.parentElement;
    meter.hidden = fraction === null;
    const percent = Math.round((fraction || 0) * 100);
    bar.style.width = `${percent}%`;
    meter.setAttribute("aria-valuenow", String(percent));
    meter.classList.toggle("high", percent >= 90);
  }
}

// Put an item's worded values into the node's data-field elements, its fraction in its meter.
function fill(node, item) {
  for (const cell of node.querySelectorAll("[data-field]")) {
    const text = item.show[cell.dataset.field];
    if (cell.textContent !== text) cell.textContent = text;
  }
  const bar = node.querySelector("[data-fraction]");
  if (bar) {
    bar.dataset.fraction = item.fraction === null ? "" : String(item.fraction);
    bar.parentElement.setAttribute("aria-valuetext", item.show.memory);
  }
  drawMeters(node);
}

function fromTemplate(id) {
  return $(id).content.firstElementChild.cloneNode(true);
}

function newRow(name) {
  const tr = fromTemplate("rp-row-template");
  tr.dataset.model = name;
  tr.querySelector('[data-action="unload"]').setAttribute("aria-label", `Unload ${name}`);
  tr.querySelector(".meter").setAttribute("aria-label", `Memory of ${name}`);
  return tr;
}

function rowsByName() {
  const found = new Map();
  for (const tr of tbody.querySelectorAll("tr[data-model]")) found.set(tr.dataset.model, tr);
  return found;
}

function renderRows(rows) {
  const existing = rowsByName();
  const wanted = new Set(rows.map((r) => r.name));
  for (const [name, tr] of existing) {
    if (!wanted.has(name)) {
      closeLog(name);
      tr.remove();
      existing.delete(name);
    }
  }
  let previous = null;
  for (const r of rows) {
    const tr = existing.get(r.name) || newRow(r.name);
    fill(tr, r);
    tr.querySelector("[data-status]").dataset.status = r.status;
    const button = tr.querySelector('[data-action="unload"]');
    button.disabled = r.status === "unloading" || unloading.has(r.name);
    // Move a row only when it is out of place: moving a node takes the focus from its buttons.
    const slot = previous ? previous.nextElementSibling : tbody.firstElementChild;
    if (slot !== tr) tbody.insertBefore(tr, slot);
    previous = tr;
    const log = logs.get(r.name);
    if (log) {
      if (tr.nextElementSibling !== log.row) tbody.insertBefore(log.row, tr.nextElementSibling);
      previous = log.row;
    }
  }
  $("rp-table").hidden = rows.length === 0;
  $("rp-empty").hidden = rows.length !== 0;
}

// A simple list (places, failures) rebuilt from its template: nothing in it takes the focus.
// `mark(node, item)` sets the item's data attribute (data-place, data-failed).
function renderList(listId, templateId, items, mark) {
  $(listId).replaceChildren(
    ...items.map((item) => {
      const node = fromTemplate(templateId);
      mark(node, item);
      fill(node, item);
      return node;
    }),
  );
}

function render(view) {
  renderRows(view.rows);
  renderList("rp-places", "rp-place-template", view.places, (node, p) => {
    node.dataset.place = p.place;
    node.querySelector(".meter").setAttribute("aria-label", `${p.place} in use`);
  });
  $("rp-no-places").hidden = view.places.length !== 0;
  renderList("rp-failed", "rp-failed-template", view.failed, (node, f) => {
    node.dataset.failed = f.name;
  });
  $("rp-failed-section").hidden = view.failed.length === 0;
}

function problem(message) {
  const line = $("rp-problem");
  line.textContent = message || "";
  line.hidden = !message;
}

// One request at a time; one asked for meanwhile runs after it (an answer fetched before an
// unload ended must not be the last word).
async function refresh() {
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    do {
      again = false;
      render(await getJSON("/ui/api/running"));
      problem("");
    } while (again);
  } catch (error) {
    problem(`Could not refresh: ${error.message}`);
  } finally {
    refreshing = false;
  }
}

async function unload(tr, button) {
  const name = tr.dataset.model;
  if (!window.confirm(`Unload ${name}? Requests in progress finish first.`)) return;
  unloading.add(name);
  button.disabled = true;
  button.textContent = "Unloading…";
  announce(`Unloading ${name}…`);
  try {
    // It answers once the model is gone (its requests in progress end first).
    await postJSON("/ui/api/unload", { model: name });
    announce(`${name} is unloaded.`);
    problem("");
  } catch (error) {
    problem(`Could not unload ${name}: ${error.message}`);
    announce(`Could not unload ${name}.`);
    button.textContent = "Unload";
  } finally {
    unloading.delete(name);
  }
  await refresh();
}

// --- the log panel: a row under the model's, fed by an EventSource -------------------------

function appendLine(pre, text) {
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.append(document.createTextNode(text + "\n"));
  while (pre.childNodes.length > MAX_LOG_LINES) pre.firstChild.remove();
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

function openLog(tr, toggle) {
  const name = tr.dataset.model;
  const id = `rp-log-${++logCount}`;
  const state = document.createElement("span");
  state.className = "muted";
  state.textContent = "connecting…";
  const head = document.createElement("p");
  head.className = "rp-log-head";
  head.append(document.createTextNode(`Log of ${name}: `), state);
  const pre = document.createElement("pre");
  pre.className = "rp-log";
  pre.tabIndex = 0; // scrollable by keyboard
  pre.setAttribute("aria-label", `Log of ${name}`);
  const cell = document.createElement("td");
  cell.colSpan = tr.children.length;
  cell.append(head, pre);
  const row = document.createElement("tr");
  row.className = "rp-log-row";
  row.id = id;
  row.dataset.logFor = name;
  row.append(cell);
  tbody.insertBefore(row, tr.nextElementSibling);

  const source = new EventSource(`/ui/api/logs/${encodeURIComponent(name)}`);
  // A stream starts with `reset` and the log's last lines, unless it resumes where the last
  // one ended (the server ends each after a while; EventSource reconnects with its last id).
  source.addEventListener("open", () => {
    state.textContent = "live";
  });
  source.addEventListener("reset", () => pre.replaceChildren());
  source.addEventListener("message", (event) => appendLine(pre, event.data));
  source.addEventListener("end", (event) => {
    state.textContent = event.data || "ended";
    source.close();
  });
  source.addEventListener("error", () => {
    // CONNECTING: a routine reconnect, nothing to say; CLOSED: refused (it is not running).
    if (source.readyState === EventSource.CLOSED) state.textContent = "not available";
  });
  logs.set(name, { row, source, toggle });
  toggle.setAttribute("aria-expanded", "true");
  toggle.setAttribute("aria-controls", id);
  toggle.textContent = "Hide log";
}

function closeLog(name) {
  const log = logs.get(name);
  if (!log) return;
  log.source.close();
  log.row.remove();
  log.toggle.setAttribute("aria-expanded", "false");
  log.toggle.removeAttribute("aria-controls");
  log.toggle.textContent = "Log";
  logs.delete(name);
}

tbody.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  const tr = button && button.closest("tr[data-model]");
  if (!tr) return;
  if (button.dataset.action === "unload") {
    unload(tr, button);
  } else if (logs.has(tr.dataset.model)) {
    closeLog(tr.dataset.model);
  } else {
    openLog(tr, button);
  }
});

drawMeters(document);
setInterval(() => {
  if (!document.hidden) refresh();
}, REFRESH_MS);
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refresh();
});

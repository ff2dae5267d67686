// The Models pages' behaviour. On the list: filter as one types (the server says which
// families match, `GET /ui/api/models`, the one rule; this script only hides rows) and
// reload for the costly filters (fits, downloaded, host). On a family's page: download a build
// with progress, load and unload models. Everything it writes into the page is text.
import { announce, getJSON, humanBytes, postJSON } from "./zoo.js";

const DEBOUNCE_MS = 150;
const POLL_MS = 1000;

function wireFilters(form) {
  const rows = [...document.querySelectorAll("#model-table tbody tr[data-family]")];
  const table = document.getElementById("model-table");
  const none = document.getElementById("model-none");
  const count = document.getElementById("model-count");
  let timer = null;
  let asked = 0;

  async function refilter() {
    const mine = ++asked;
    const params = new URLSearchParams();
    for (const name of ["q", "kind", "ability", "format"]) {
      const value = form.elements[name].value.trim();
      if (value) params.set(name, value);
    }
    let names;
    try {
      names = new Set((await getJSON("/ui/api/models?" + params)).families);
    } catch (error) {
      announce(error.message);
      return;
    }
    if (mine !== asked) return; // a later keystroke's answer wins
    let shown = 0;
    for (const row of rows) {
      row.hidden = !names.has(row.dataset.family);
      if (!row.hidden) shown += 1;
    }
    table.hidden = shown === 0;
    none.hidden = shown !== 0;
    count.textContent = `${shown} of ${rows.length} model families`;
    for (const name of ["fits", "downloaded", "host"]) {
      const input = form.elements[name];
      const value = input.type === "checkbox" ? (input.checked ? "1" : "") : input.value;
      if (value) params.set(name, value);
    }
    history.replaceState(null, "", "/ui/models" + (params.size ? "?" + params : ""));
  }

  form.addEventListener("input", (event) => {
    if (event.target.hasAttribute("data-reload")) return;
    clearTimeout(timer);
    timer = setTimeout(refilter, DEBOUNCE_MS);
  });
  form.addEventListener("change", (event) => {
    if (event.target.hasAttribute("data-reload")) form.requestSubmit();
  });
}

function statusCell(button) {
  return button.closest("tr").querySelector("[data-status]");
}

function setBusy(row, busy) {
  for (const button of row.querySelectorAll("button")) button.disabled = busy;
}

async function load(button) {
  const row = button.closest("tr");
  const status = statusCell(button);
  setBusy(row, true);
  status.textContent = "loading…";
  announce(`loading ${button.dataset.load}`);
  try {
    const answer = await postJSON("/ui/api/load", { model: button.dataset.load });
    status.textContent = `${answer.status}: ${answer.model}`;
    announce(`${answer.model} ${answer.status}`);
  } catch (error) {
    status.textContent = error.message;
    status.classList.add("error");
    announce(error.message);
  } finally {
    setBusy(row, false);
  }
}

async function unload(button) {
  const row = button.closest("tr");
  const status = statusCell(button);
  setBusy(row, true);
  try {
    const answer = await postJSON("/ui/api/unload", { model: button.dataset.unload });
    status.textContent = answer.unloaded ? "unloaded" : "not loaded";
    announce(`${answer.model} ${status.textContent}`);
  } catch (error) {
    status.textContent = error.message;
    announce(error.message);
  } finally {
    setBusy(row, false);
  }
}

function progressText(job) {
  if (job.state === "failed") return job.error || "the download failed";
  if (job.state === "done") return "downloaded";
  const total = job.total_bytes;
  const done = job.done_bytes || 0;
  if (total) return `downloading ${Math.floor((100 * done) / total)}% of ${humanBytes(total)}`;
  return `downloading ${humanBytes(done)}`;
}

function showJob(row, job) {
  const status = row.querySelector("[data-status]");
  let bar = row.querySelector("progress");
  if (job.state === "running") {
    if (!bar) {
      bar = document.createElement("progress");
      bar.setAttribute("aria-label", `download of ${job.model}`);
      status.before(bar);
    }
    if (job.total_bytes) {
      bar.max = job.total_bytes;
      bar.value = job.done_bytes || 0;
    }
  } else if (bar) {
    bar.remove();
  }
  status.textContent = progressText(job);
  status.classList.toggle("error", job.state === "failed");
  if (job.state === "done") {
    row.querySelector("[data-downloaded]").textContent = "yes";
    const download = row.querySelector("[data-download]");
    if (download) download.remove();
    const loadButton = row.querySelector("[data-load]");
    if (loadButton) loadButton.hidden = false;
  }
}

async function follow(row, jobId) {
  for (;;) {
    let job;
    try {
      job = await getJSON(`/ui/api/downloads/${encodeURIComponent(jobId)}`);
    } catch (error) {
      row.querySelector("[data-status]").textContent = error.message;
      return;
    }
    showJob(row, job);
    if (job.state !== "running") {
      announce(`${job.model}: ${progressText(job)}`);
      return;
    }
    await new Promise((done) => setTimeout(done, POLL_MS));
  }
}

async function download(button) {
  const row = button.closest("tr");
  button.disabled = true;
  try {
    const answer = await postJSON("/ui/api/download", { model: button.dataset.download });
    announce(`downloading ${button.dataset.download}`);
    await follow(row, answer.job);
  } catch (error) {
    statusCell(button).textContent = error.message;
    announce(error.message);
  } finally {
    button.disabled = false;
  }
}

async function resumeDownloads() {
  let jobs;
  try {
    jobs = await getJSON("/ui/api/downloads");
  } catch {
    return; // the page still works; its buttons say what goes wrong
  }
  for (const job of jobs) {
    if (job.state !== "running") continue;
    const row = [...document.querySelectorAll("tr[data-build]")].find(
      (r) => r.dataset.entry === job.model,
    );
    if (row) follow(row, job.job);
  }
}

function wireActions() {
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.load) load(button);
    else if (button.dataset.unload) unload(button);
    else if (button.dataset.download) download(button);
  });
  if (document.querySelector("tr[data-build]")) resumeDownloads();
  const host = document.querySelector(".host-pick [data-reload]");
  if (host) host.addEventListener("change", () => host.form.requestSubmit());
}

const filters = document.getElementById("model-filters");
if (filters) wireFilters(filters);
wireActions();
document.documentElement.dataset.ready = "1";

// Keeps the Metrics page current: every 10 s it asks for the plots fragment of the chosen
// window and puts it in place of the one shown. Changing the window submits the form (which
// works without this script too: it is a plain GET form).
//
// The fragment is HTML this gateway rendered from its own counters through Jinja's
// autoescaping: no catalog text, no model names, nothing a client typed. So parsing it with
// DOMParser and importing its nodes is safe here (DOMParser runs no scripts, and the page's
// CSP forbids inline ones anyway); el() from zoo.js would mean drawing the SVG twice, once
// in Python and once here.
import { announce } from "./zoo.js";

const REFRESH_MS = 10000;
const box = document.getElementById("mx-plots");
const form = document.getElementById("mx-form");
const select = document.getElementById("mx-window");
const note = document.getElementById("mx-note");
let failing = false;

async function refresh() {
  if (!box || document.hidden) return;
  const url = "/ui/metrics/plots?window=" + encodeURIComponent(box.dataset.window || "");
  try {
    const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    const text = await answer.text();
    const fresh = answer.ok
      ? new DOMParser().parseFromString(text, "text/html").querySelector("[data-metrics-fragment]")
      : null;
    if (!fresh) {
      // No fragment in a 200: the session ended and the login form answered instead.
      if (answer.ok || answer.status === 401) {
        location.assign("/ui/login?next=" + encodeURIComponent(location.pathname + location.search));
        return;
      }
      throw new Error(`HTTP ${answer.status}`);
    }
    // Keep the table of numbers open if the reader opened it.
    const open = box.querySelector("details[open]") !== null;
    const node = document.importNode(fresh, true);
    if (open) node.querySelector("details")?.setAttribute("open", "");
    box.replaceChildren(node);
    if (failing && note) note.textContent = "The plots update every 10 s.";
    failing = false;
  } catch (error) {
    if (!failing) announce("Could not update the metrics: " + error.message);
    if (note) note.textContent = "Could not update the plots (" + error.message + "); trying again.";
    failing = true;
  }
}

if (box) {
  setInterval(refresh, REFRESH_MS);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
}
if (form && select) {
  select.addEventListener("change", () => form.requestSubmit());
}

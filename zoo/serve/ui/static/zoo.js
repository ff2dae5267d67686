// What every page's script shares: requests that carry the page's CSRF token, reading a
// server-sent event stream from fetch (POST bodies: EventSource only does GET), building DOM
// from text (never innerHTML: catalog text and model answers are untrusted), and a polite
// status line for screen readers. Pages import it: `import { postJSON } from "./zoo.js"`.

export function csrf() {
  const meta = document.querySelector('meta[name="zoo-csrf"]');
  return meta ? meta.content : "";
}

// Headers for a state change from this page (the session cookie travels by itself).
export function headers(extra = {}) {
  return { "Content-Type": "application/json", "X-Zoo-CSRF": csrf(), ...extra };
}

// POST `body` as JSON; resolves to the parsed answer, or throws an Error with the gateway's
// message (its errors are OpenAI-shaped: {"error": {"message": ...}}).
export async function postJSON(url, body, options = {}) {
  const answer = await fetch(url, {
    method: "POST",
    headers: headers(),
    body: JSON.stringify(body),
    credentials: "same-origin",
    ...options,
  });
  return readAnswer(answer);
}

export async function getJSON(url, options = {}) {
  const answer = await fetch(url, { credentials: "same-origin", ...options });
  return readAnswer(answer);
}

async function readAnswer(answer) {
  const text = await answer.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!answer.ok) {
    if (answer.status === 401) {
      location.assign("/ui/login?next=" + encodeURIComponent(location.pathname + location.search));
    }
    const message = data && data.error && data.error.message ? data.error.message : text;
    throw new Error(message || `HTTP ${answer.status}`);
  }
  return data;
}

// Read a text/event-stream answer of fetch(): calls onEvent({event, data}) for each event
// (data: the joined data lines, as text) until the stream ends or `signal` aborts it.
export async function readEvents(answer, onEvent) {
  if (!answer.ok) {
    await readAnswer(answer); // throws with the gateway's message
  }
  const reader = answer.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let match;
    while ((match = buffer.match(/\r?\n\r?\n/)) !== null) {
      const raw = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      const event = { event: "message", data: "" };
      const lines = [];
      for (const line of raw.split(/\r?\n/)) {
        if (line.startsWith("data:")) lines.push(line.slice(5).replace(/^ /, ""));
        else if (line.startsWith("event:")) event.event = line.slice(6).trim();
      }
      event.data = lines.join("\n");
      if (lines.length) onEvent(event);
    }
  }
}

// An element with attributes and children (strings become text nodes, never markup).
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Tell screen readers (and tests) what just happened.
export function announce(message) {
  const region = document.getElementById("zoo-status");
  if (region) region.textContent = message;
}

export function humanBytes(count) {
  if (count === null || count === undefined) return "?";
  let value = count;
  for (const unit of ["B", "KB", "MB", "GB", "TB"]) {
    if (value < 1000 || unit === "TB") {
      return unit === "B" ? `${value} B` : `${value.toFixed(1)} ${unit}`;
    }
    value /= 1000;
  }
  return `${count} B`;
}

// Page data the server rendered as <script type="application/json" id=...>.
export function pageData(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

document.documentElement.dataset.zooReady = "1";

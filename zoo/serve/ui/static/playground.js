// The Playground: chat (streamed, reasoning apart, Stop), fill in the middle, and a similarity
// matrix for embedding models. Every request is the API's own (/v1/...), sent with the session
// cookie and the CSRF header; the same request is shown as curl and as openai client code.
// Model answers are untrusted text: DOM is built with el() and textContent only.

import { announce, el, headers, pageData, readEvents } from "./zoo.js";

const data = pageData("pg-data") || { models: [], model: null };
const model = data.models.find((m) => m.id === data.model) || null;
const $ = (id) => document.getElementById(id);

// --- the request shown as code -------------------------------------------------------------

// A shell word for any text: single quotes, with each ' closed, escaped and reopened.
export function shellQuote(text) {
  return "'" + String(text).replace(/'/g, "'\\''") + "'";
}

// A Python literal for a JSON value (JSON's string escapes are valid in Python strings).
export function pyLiteral(value, indent = "") {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "None";
  if (typeof value === "string") return JSON.stringify(value);
  const inner = indent + "    ";
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return "[\n" + value.map((v) => inner + pyLiteral(v, inner) + ",\n").join("") + indent + "]";
  }
  const keys = Object.keys(value);
  if (!keys.length) return "{}";
  const items = keys.map((k) => `${inner}${JSON.stringify(k)}: ${pyLiteral(value[k], inner)},\n`);
  return "{\n" + items.join("") + indent + "}";
}

export function curlCommand(origin, path, body) {
  const json = JSON.stringify(body, null, 2);
  return [
    `curl${body.stream ? " -N" : ""} ${origin}${path}`,
    '  -H "Authorization: Bearer $ZOO_API_KEY"',
    '  -H "Content-Type: application/json"',
    `  -d ${shellQuote(json)}`,
  ].join(" \\\n");
}

// `client.<call>(...)` with the body's fields as keyword arguments, then how to read it.
export function pythonCode(origin, call, body, reader) {
  const args = Object.entries(body)
    .map(([k, v]) => `    ${k}=${pyLiteral(v, "    ")},\n`)
    .join("");
  return [
    "import os",
    "",
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${JSON.stringify(origin + "/v1")}, api_key=os.environ["ZOO_API_KEY"])`,
    `answer = client.${call}(\n${args})`,
    ...reader,
  ].join("\n");
}

const READ_CHAT_STREAM = [
  "for chunk in answer:",
  "    if chunk.choices and chunk.choices[0].delta.content:",
  '        print(chunk.choices[0].delta.content, end="", flush=True)',
  "print()",
];
const READ_TEXT_STREAM = [
  "for chunk in answer:",
  "    if chunk.choices:",
  '        print(chunk.choices[0].text, end="", flush=True)',
  "print()",
];
const READ_EMBEDDINGS = ["for item in answer.data:", "    print(item.index, item.embedding[:4], '...')"];

function showCode(path, body, call, reader, note = "") {
  const curl = $("pg-curl");
  const python = $("pg-python");
  if (!curl || !python) return;
  curl.textContent = curlCommand(location.origin, path, body);
  python.textContent = (note ? note + "\n" : "") + pythonCode(location.origin, call, body, reader);
}

function copyButton(buttonId, sourceId) {
  const button = $(buttonId);
  if (!button) return;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($(sourceId).textContent);
      announce("Copied");
    } catch {
      announce("Copying is not allowed here: select the text instead");
    }
  });
}

// --- shared helpers ------------------------------------------------------------------------

function number(id) {
  const node = $(id);
  if (!node || node.value.trim() === "") return undefined;
  const value = Number(node.value);
  return Number.isFinite(value) ? value : undefined;
}

function showError(id, error) {
  const node = $(id);
  if (!node) return;
  if (!error) {
    node.hidden = true;
    node.textContent = "";
    return;
  }
  // One line: the gateway's message, never a stack.
  node.textContent = String(error.message || error).split("\n")[0];
  node.hidden = false;
  announce(node.textContent);
}

// A request answered: the model is loaded now (the page said when it was not).
function loaded() {
  if (model.status === "loaded") return;
  model.status = "loaded";
  $("pg-status").textContent = "loaded";
  const note = $("pg-status-note");
  if (note) note.remove();
}

async function post(path, body, signal) {
  return fetch(path, {
    method: "POST",
    headers: headers(),
    body: JSON.stringify(body),
    credentials: "same-origin",
    signal,
  });
}

// Read one streamed answer: onChunk(parsed) for each data event; an error event throws.
async function stream(answer, onChunk) {
  await readEvents(answer, (event) => {
    if (event.data === "[DONE]") return;
    let chunk;
    try {
      chunk = JSON.parse(event.data);
    } catch {
      return; // a comment or keep-alive, not a chunk
    }
    if (chunk && chunk.error) {
      throw new Error(chunk.error.message || "the model's stream failed");
    }
    onChunk(chunk);
  });
}

// --- chat ----------------------------------------------------------------------------------

const conversation = []; // {role, content} as sent to the API; the page's memory only
let chatController = null;

function chatBody(withPending) {
  const messages = [];
  const system = $("pg-system") ? $("pg-system").value : "";
  if (system.trim()) messages.push({ role: "system", content: system });
  messages.push(...conversation);
  const pending = $("pg-message").value;
  if (withPending && pending.trim()) messages.push({ role: "user", content: pending });
  const body = { model: model.id, messages, stream: true };
  const temperature = number("pg-temperature");
  const topP = number("pg-top-p");
  const maxTokens = number("pg-max-tokens");
  if (temperature !== undefined) body.temperature = temperature;
  if (topP !== undefined) body.top_p = topP;
  if (maxTokens !== undefined) body.max_tokens = maxTokens;
  return body;
}

function showChatCode() {
  showCode("/v1/chat/completions", chatBody(true), "chat.completions.create", READ_CHAT_STREAM);
}

function bubble(role, text) {
  const body = el("div", { class: "pg-text" }, text);
  const node = el(
    "div",
    { class: `pg-msg pg-${role}` },
    el("div", { class: "pg-who" }, role === "user" ? "You" : model.id),
    body,
  );
  $("pg-transcript").append(node);
  return { node, body };
}

function setBusy(busy, send, stop) {
  $(send).disabled = busy;
  $(stop).disabled = !busy;
}

async function sendChat() {
  const text = $("pg-message").value;
  if (!text.trim() || chatController) return;
  const body = chatBody(true);
  showChatCode();
  conversation.push({ role: "user", content: text });
  bubble("user", text);
  $("pg-message").value = "";
  const reply = bubble("assistant", "");
  reply.node.setAttribute("aria-busy", "true");
  let thinking = null;
  let answer = "";
  showError("pg-chat-error", null);
  chatController = new AbortController();
  setBusy(true, "pg-send", "pg-stop");
  announce(model.status === "loaded" ? "Sending" : "Sending: the model loads first");
  try {
    const response = await post("/v1/chat/completions", body, chatController.signal);
    if (response.ok) loaded();
    await stream(response, (chunk) => {
      const delta = (chunk.choices && chunk.choices[0] && chunk.choices[0].delta) || {};
      const reasoning = delta.reasoning_content || delta.reasoning;
      if (reasoning) {
        if (!thinking) {
          thinking = el("div", { class: "pg-thinking-text" });
          const block = el("details", { class: "pg-thinking", open: true }, el("summary", {}, "Thinking"), thinking);
          reply.node.insertBefore(block, reply.body);
        }
        thinking.textContent += reasoning;
      }
      if (delta.content) {
        if (!answer && thinking) thinking.parentElement.open = false; // the answer began
        answer += delta.content;
        reply.body.textContent = answer;
      }
    });
    announce("Answer complete");
  } catch (error) {
    if (error.name === "AbortError") {
      reply.node.append(el("div", { class: "muted pg-note" }, "Stopped"));
      announce("Stopped");
    } else {
      showError("pg-chat-error", error);
    }
  } finally {
    reply.node.removeAttribute("aria-busy");
    // What was answered, even in part, stays in the conversation; an empty turn does not.
    if (answer) conversation.push({ role: "assistant", content: answer });
    else if (!thinking) reply.node.remove();
    chatController = null;
    setBusy(false, "pg-send", "pg-stop");
    showChatCode();
  }
}

function initChat() {
  const form = $("pg-chat-form");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendChat();
  });
  $("pg-message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      sendChat();
    }
  });
  $("pg-stop").addEventListener("click", () => chatController && chatController.abort());
  $("pg-clear").addEventListener("click", () => {
    if (chatController) chatController.abort();
    conversation.length = 0;
    $("pg-transcript").replaceChildren();
    showError("pg-chat-error", null);
    showChatCode();
  });
  for (const id of ["pg-system", "pg-temperature", "pg-top-p", "pg-max-tokens", "pg-message"]) {
    $(id).addEventListener("input", showChatCode);
  }
}

// --- fill in the middle --------------------------------------------------------------------

let fimController = null;

function fimBody() {
  const body = { model: model.id, prompt: $("pg-prefix").value, suffix: $("pg-suffix").value };
  const maxTokens = number("pg-fim-max-tokens");
  if (maxTokens !== undefined) body.max_tokens = maxTokens;
  body.stream = true;
  return body;
}

function showFimCode() {
  // The openai client has no /v1/fim; /v1/completions with a suffix is the same infill.
  const note = "# /v1/completions with a `suffix` is the same infill as /v1/fim.";
  showCode("/v1/fim", fimBody(), "completions.create", READ_TEXT_STREAM, note);
}

async function sendFim() {
  if (fimController) return;
  const body = fimBody();
  showFimCode();
  const out = $("pg-fim-out");
  out.querySelector(".pg-prefix").textContent = body.prompt;
  out.querySelector(".pg-suffix").textContent = body.suffix;
  const middle = out.querySelector(".pg-middle");
  middle.textContent = "";
  showError("pg-fim-error", null);
  fimController = new AbortController();
  setBusy(true, "pg-fim-send", "pg-fim-stop");
  try {
    const response = await post("/v1/fim", body, fimController.signal);
    if (response.ok) loaded();
    await stream(response, (chunk) => {
      const choice = chunk.choices && chunk.choices[0];
      if (choice && choice.text) middle.textContent += choice.text;
    });
    announce("Completion done");
  } catch (error) {
    if (error.name === "AbortError") announce("Stopped");
    else showError("pg-fim-error", error);
  } finally {
    fimController = null;
    setBusy(false, "pg-fim-send", "pg-fim-stop");
  }
}

function initFim() {
  const form = $("pg-fim-form");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendFim();
  });
  $("pg-fim-stop").addEventListener("click", () => fimController && fimController.abort());
  for (const id of ["pg-prefix", "pg-suffix", "pg-fim-max-tokens"]) {
    $(id).addEventListener("input", showFimCode);
  }
}

// --- embeddings ----------------------------------------------------------------------------

function texts() {
  return $("pg-texts").value.split("\n").map((t) => t.trim()).filter((t) => t);
}

function embedBody() {
  return { model: model.id, input: texts() };
}

function showEmbedCode() {
  showCode("/v1/embeddings", embedBody(), "embeddings.create", READ_EMBEDDINGS);
}

export function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}

function matrix(inputs, vectors) {
  const head = el("tr", {}, el("th", { scope: "col" }, "#"), inputs.map((_, i) => el("th", { scope: "col", class: "num" }, String(i + 1))));
  const rows = vectors.map((a, i) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, String(i + 1)),
      vectors.map((b, j) => {
        const value = cosine(a, b);
        const level = value >= 0.8 ? "hi" : value >= 0.5 ? "mid" : "lo";
        const cell = el("td", { class: `num pg-sim pg-sim-${level}`, title: `${i + 1} · ${j + 1}` }, value.toFixed(3));
        return cell;
      }),
    ),
  );
  return el(
    "div",
    {},
    el("ol", { class: "pg-texts" }, inputs.map((t) => el("li", {}, t))),
    el("p", { class: "muted" }, `${vectors[0] ? vectors[0].length : 0} dimensions; cosine similarity of each pair:`),
    el("table", { class: "pg-matrix" }, el("thead", {}, head), el("tbody", {}, rows)),
  );
}

async function sendEmbed() {
  const body = embedBody();
  showEmbedCode();
  const out = $("pg-embed-out");
  showError("pg-embed-error", null);
  if (!body.input.length) {
    showError("pg-embed-error", "write at least one text");
    return;
  }
  $("pg-embed-send").disabled = true;
  try {
    const response = await post("/v1/embeddings", body);
    const text = await response.text();
    let answer = null;
    try {
      answer = JSON.parse(text);
    } catch {
      answer = null;
    }
    if (!response.ok) {
      throw new Error((answer && answer.error && answer.error.message) || text || `HTTP ${response.status}`);
    }
    loaded();
    const vectors = [...answer.data].sort((x, y) => x.index - y.index).map((d) => d.embedding);
    if (vectors.some((v) => !Array.isArray(v))) throw new Error("the answer has no float vectors");
    out.replaceChildren(matrix(body.input, vectors));
    announce("Similarity computed");
  } catch (error) {
    showError("pg-embed-error", error);
  } finally {
    $("pg-embed-send").disabled = false;
  }
}

function initEmbed() {
  const form = $("pg-embed-form");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendEmbed();
  });
  $("pg-texts").addEventListener("input", showEmbedCode);
}

// --- views ---------------------------------------------------------------------------------

function showView(name) {
  const chat = $("pg-chat");
  const fim = $("pg-fim");
  if (chat) chat.hidden = name !== "chat";
  if (fim) fim.hidden = name !== "fim";
  if (name === "fim") showFimCode();
  else showChatCode();
}

function init() {
  if (!model) return;
  initChat();
  initFim();
  initEmbed();
  copyButton("pg-copy-curl", "pg-curl");
  copyButton("pg-copy-python", "pg-python");
  if (model.kind === "embedding") {
    showEmbedCode();
  } else if (model.kind === "llm") {
    const views = document.querySelectorAll('input[name="pg-view"]');
    for (const radio of views) radio.addEventListener("change", () => showView(radio.value));
    const checked = document.querySelector('input[name="pg-view"]:checked');
    showView(checked ? checked.value : "chat");
  } else if (model.kind === "rerank") {
    const body = { model: model.id, query: "What is a zoo?", documents: ["A park with animals.", "A kind of fish."] };
    $("pg-curl").textContent = curlCommand(location.origin, "/v1/rerank", body);
    $("pg-python").textContent = "# The openai client has no rerank call; any HTTP client sends the curl body.";
  }
  document.documentElement.dataset.playgroundReady = "1";
}

init();

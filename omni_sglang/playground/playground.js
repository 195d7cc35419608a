// The playground: a chat against this server's own /v1 API, streamed. No build step and
// no CDN: this file and the page ship in the package. The API key stays in the page.
"use strict";

const $ = (id) => document.getElementById(id);
const history = []; // the conversation as chat messages (reasoning is not sent back)
let attachments = []; // {kind, url, name} for the next user turn
let controller = null;

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function loadModels() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
    $("model").replaceChildren(
      ...body.data.map((m) => Object.assign(document.createElement("option"), { value: m.id, textContent: m.id })));
  } catch (err) {
    addError(`could not list models: ${err.message}`);
  }
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function addError(text) {
  const node = element("div", "msg error", text);
  node.dataset.testid = "error";
  $("log").append(node);
}

function addUser(text, media) {
  const node = element("div", "msg user", text);
  for (const item of media) {
    const tag = item.kind === "image" ? "img" : item.kind;
    const preview = element(tag, "media");
    preview.src = item.url;
    if (tag !== "img") preview.controls = true;
    node.append(preview);
  }
  $("log").append(node);
}

function addAssistant() {
  const node = element("div", "msg assistant");
  node.dataset.testid = "assistant";
  const reasoning = element("details", "reasoning");
  reasoning.dataset.testid = "reasoning";
  reasoning.hidden = true;
  reasoning.append(element("summary", "", "Reasoning"), element("pre"));
  const content = element("div", "content");
  content.dataset.testid = "content";
  const calls = element("div", "calls");
  const stats = element("div", "stats");
  stats.dataset.testid = "stats";
  node.append(reasoning, content, calls, stats);
  $("log").append(node);
  return { node, reasoning, content, calls, stats };
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function attach(files) {
  for (const file of files) {
    const kind = file.type.split("/")[0];
    if (!["image", "audio", "video"].includes(kind)) {
      addError(`${file.name}: only images, audio and video can be attached`);
      continue;
    }
    attachments.push({ kind, url: await readFile(file), name: file.name });
  }
  $("attachments").replaceChildren(...attachments.map((a) => element("span", "", `${a.kind}: ${a.name}`)));
}

function requestBody() {
  const body = {
    model: $("model").value,
    messages: [],
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: Number($("max-tokens").value) || 512,
    chat_template_kwargs: { enable_thinking: $("thinking").checked },
  };
  const system = $("system").value.trim();
  if (system) body.messages.push({ role: "system", content: system });
  body.messages.push(...history);
  const temperature = $("temperature").value;
  if (temperature !== "") body.temperature = Number(temperature);
  const seed = $("seed").value;
  if (seed !== "") body.seed = Number(seed);
  const budget = Number($("budget").value);
  if ($("thinking").checked && budget >= 0) body.thinking_token_budget = budget;
  const tools = $("tools").value.trim();
  if (tools) body.tools = JSON.parse(tools); // a JSON error is shown before sending
  return body;
}

function curlOf(body) {
  const key = $("api-key").value.trim() ? " -H 'Authorization: Bearer $API_KEY'" : "";
  const json = JSON.stringify(body).replace(/'/g, "'\\''");
  return `curl -N ${location.origin}/v1/chat/completions -H 'Content-Type: application/json'${key} -d '${json}'`;
}

// Server-sent events: "data: {...}" lines, ending with "data: [DONE]".
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

function renderCalls(view, calls) {
  view.calls.replaceChildren(...calls.map((c) => {
    const block = element("pre", "", `${c.function.name}(${c.function.arguments})`);
    block.dataset.testid = "tool-call";
    return block;
  }));
}

async function send(text) {
  let body;
  try {
    body = requestBody();
  } catch (err) {
    addError(`tools are not valid JSON: ${err.message}`);
    return;
  }
  const parts = [{ type: "text", text }];
  for (const a of attachments) parts.push({ type: `${a.kind}_url`, [`${a.kind}_url`]: { url: a.url } });
  const user = { role: "user", content: attachments.length ? parts : text };
  body.messages.push(user);
  $("curl").textContent = curlOf(body);
  addUser(text, attachments);
  attachments = [];
  $("attachments").replaceChildren();

  const view = addAssistant();
  const started = performance.now();
  let first = null;
  let reasoning = "";
  let content = "";
  let usage = null;
  const calls = [];
  controller = new AbortController();
  $("stop").disabled = false;
  $("send").disabled = true;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal,
    });
    if (!response.ok) {
      const error = await response.json().catch(() => ({}));
      throw new Error(error.error ? error.error.message : `HTTP ${response.status}`);
    }
    for await (const chunk of events(response)) {
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices || []) {
        const delta = choice.delta || {};
        const thought = delta.reasoning || delta.reasoning_content;
        if ((thought || delta.content || delta.tool_calls) && first === null) first = performance.now();
        if (thought) {
          reasoning += thought;
          view.reasoning.hidden = false;
          view.reasoning.querySelector("pre").textContent = reasoning;
        }
        if (delta.content) {
          content += delta.content;
          view.content.textContent = content;
        }
        for (const call of delta.tool_calls || []) {
          calls[call.index] = calls[call.index] || { id: call.id, type: "function", function: { name: "", arguments: "" } };
          if (call.function.name) calls[call.index].function.name = call.function.name;
          calls[call.index].function.arguments += call.function.arguments || "";
          renderCalls(view, calls);
        }
      }
      $("log").scrollTop = $("log").scrollHeight;
    }
    history.push(user, { role: "assistant", content: content || null, ...(calls.length ? { tool_calls: calls } : {}) });
  } catch (err) {
    if (err.name !== "AbortError") addError(err.message);
  } finally {
    const ended = performance.now();
    const stats = [];
    if (first !== null) stats.push(`TTFT ${Math.round(first - started)} ms`);
    if (usage) {
      const seconds = (ended - (first ?? started)) / 1000;
      stats.push(`${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion tokens`);
      if (usage.completion_tokens > 1 && seconds > 0) stats.push(`${(usage.completion_tokens / seconds).toFixed(1)} tokens/s`);
    }
    view.stats.textContent = stats.join(" · ");
    controller = null;
    $("stop").disabled = true;
    $("send").disabled = false;
  }
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || controller) return;
  $("prompt").value = "";
  send(text);
});
$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
$("files").addEventListener("change", async (event) => {
  await attach(event.target.files);
  event.target.value = "";
});
$("stop").addEventListener("click", () => controller && controller.abort());
$("clear").addEventListener("click", () => {
  history.length = 0;
  $("log").replaceChildren();
});
$("budget").addEventListener("input", () => {
  const value = Number($("budget").value);
  $("budget-value").textContent = value < 0 ? "no cap" : `${value} tokens`;
});
$("thinking").addEventListener("change", () => { $("budget").disabled = !$("thinking").checked; });
$("copy-curl").addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText($("curl").textContent));
$("api-key").addEventListener("change", loadModels);
loadModels();

// The pages' one way to the server: the public JSON API, with the key the
// user gave this tab (session.js). Nothing here builds HTML from strings:
// el() sets text, never markup, so nothing the API returns can inject script.

import { currentKey } from "./session.js";

/** An answer other than 2xx: the RFC 9457 problem document when there is one. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

function headers(extra = {}, key = currentKey()) {
  const sent = { Accept: "application/json", ...extra };
  if (key) sent.Authorization = `Bearer ${key}`;
  return sent;
}

async function failure(response) {
  let problem = null;
  try {
    problem = await response.json();
  } catch {
    problem = { title: response.statusText };
  }
  return new ApiError(response.status, problem);
}

/** GET (or another method) ``path`` and return the parsed JSON answer. */
export async function api(path, { method = "GET", body, key, signal } = {}) {
  const extra = body === undefined ? {} : { "Content-Type": "application/json" };
  if (method !== "GET") extra["Idempotency-Key"] = crypto.randomUUID();
  const response = await fetch(path, {
    method,
    headers: headers(extra, key === undefined ? currentKey() : key),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    credentials: "omit",
  });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** GET ``path`` as text (CSV, checkpoints). */
export async function apiText(path, { accept = "text/plain", signal } = {}) {
  const response = await fetch(path, {
    headers: headers({ Accept: accept }),
    signal,
    credentials: "omit",
  });
  if (!response.ok) throw await failure(response);
  return response.text();
}

/**
 * Follow a server-sent-events stream, calling ``onEvent({id, event, data})``
 * for each. Read with fetch, not EventSource, so the key travels in a header
 * and never in the URL. Reconnects (with Last-Event-ID) until ``signal`` aborts.
 */
export async function streamEvents(path, onEvent, { signal, onError } = {}) {
  let lastId = null;
  while (!signal?.aborted) {
    try {
      const extra = { Accept: "text/event-stream" };
      if (lastId !== null) extra["Last-Event-ID"] = lastId;
      const response = await fetch(path, { headers: headers(extra), signal, credentials: "omit" });
      if (!response.ok) throw await failure(response);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = parseFrame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (frame.id !== null) lastId = frame.id;
          if (frame.data !== null) onEvent(frame);
        }
      }
    } catch (error) {
      if (signal?.aborted) return;
      if (error instanceof ApiError && error.status < 500) {
        onError?.(error);
        return;
      }
      onError?.(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function parseFrame(text) {
  const frame = { id: null, event: "message", data: null };
  const data = [];
  for (const line of text.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") frame.id = value;
    else if (field === "event") frame.event = value;
    else if (field === "data") data.push(value);
  }
  if (data.length) frame.data = data.join("\n");
  return frame;
}

/**
 * A DOM element: ``el("a", {href: "/x", class: "y"}, "text", child)``.
 * Attributes are set as attributes, children appended as text or nodes.
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** An SVG element (charts, graphs): same calling convention as el(). */
export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Show an error where the page's content would be, as the API said it. */
export function problemBox(error) {
  const problem = error instanceof ApiError ? error.problem : {};
  const title = problem.title || (error instanceof ApiError ? `HTTP ${error.status}` : "Error");
  return el(
    "div",
    { class: "problem", role: "alert" },
    el("strong", {}, title),
    el("p", {}, error.message || String(error)),
    problem.type ? el("p", { class: "muted" }, problem.type) : null,
  );
}

/** "1,234" and "12.50 EUR" the same way on every page. */
export function number(value) {
  return new Intl.NumberFormat("en").format(value);
}

/** Money is an integer count of the currency's minor units (docs/format.md). */
export function money(amount) {
  if (!amount) return "—";
  let format;
  try {
    format = new Intl.NumberFormat("en", { style: "currency", currency: amount.currency });
  } catch {
    return `${number(amount.amount)} ${amount.currency} (minor units)`;
  }
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(Number(amount.amount) / 10 ** digits);
}

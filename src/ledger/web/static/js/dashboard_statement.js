// The royalty statement of one good (GET /creators/{creator}/statement,
// filtered by kind, a page at a time), each line with its trail: who sold
// to whom, through which channel, at what price, and the creator's part.
// The trail comes from the unit's history (GET /units/{unit_id}): the event
// whose reference is the line's.
//
// The statement API answers JSON only, so the CSV download is built here,
// in the browser, from the same JSON (RFC 4180: CRLF, fields quoted when
// they hold a comma, quote or line break), handed over as a Blob: the key
// never goes into a URL.

import { api, el, money, number, problemBox } from "./api.js";

const PAGE_SIZE = 50;
const CSV_PAGE_SIZE = 1_000;
const KINDS = [
  ["", "Every kind"],
  ["primary", "Primary sales"],
  ["resale", "Resales"],
  ["primary-refund", "Refunds of primary sales"],
  ["resale-refund", "Refunds of resales"],
];
export const CSV_COLUMNS = [
  "at",
  "day",
  "kind",
  "reference",
  "good_id",
  "unit_id",
  "seller",
  "buyer",
  "channel",
  "price",
  "creator_part",
  "currency",
  "role",
];

function statementPath(creator, goodId, kind, cursor, limit) {
  const query = new URLSearchParams({ good_id: goodId, limit: String(limit) });
  if (kind) query.set("kind", kind);
  if (cursor) query.set("cursor", cursor);
  return `/creators/${encodeURIComponent(creator)}/statement?${query}`;
}

/** Trails of units, one GET /units/{id} per unit for the page's life. */
function trails() {
  const units = new Map();
  return async (line) => {
    if (!line.unit_id) return null;
    if (!units.has(line.unit_id)) {
      units.set(line.unit_id, api(`/units/${encodeURIComponent(line.unit_id)}`).catch(() => null));
    }
    const unit = await units.get(line.unit_id);
    return unit?.history.find((event) => event.reference === line.reference) ?? null;
  };
}

/**
 * The statement section, its first page loaded: throws the API's error when
 * the key may not read this creator's statement (the page then shows that).
 */
export async function statementSection(goodId, creator, { creators = [], signal } = {}) {
  const trailOf = trails();
  const state = { creator, kind: "", cursor: null, asked: 0 };
  const first = await api(statementPath(creator, goodId, "", null, PAGE_SIZE), { signal });
  const title = el("h2", { id: "statement-title" }, `Royalty statement of ${creator}`);
  const body = el("tbody", {});
  const totals = el("div", { class: "dash-totals" });
  const status = el("p", { class: "muted", role: "status" });
  const more = el("button", { type: "button", class: "secondary", hidden: true }, "More lines");
  const kind = choice("statement-kind", KINDS);
  const who = creators.length > 1 ? choice("statement-creator", creators.map((c) => [c, c])) : null;
  const download = el("button", { type: "button", id: "statement-csv" }, "Download CSV");
  const downloadStatus = el("p", { class: "muted", "aria-live": "polite" });

  const render = async (page, append) => {
    const rows = await Promise.all(page.items.map(async (line) => lineRow(line, await trailOf(line))));
    if (append) body.append(...rows);
    else body.replaceChildren(...rows);
    state.cursor = page.next_cursor;
    more.hidden = !state.cursor;
    if (!append) totals.replaceChildren(totalsList(page.totals));
    status.textContent = body.children.length
      ? `${number(body.children.length)} lines shown${state.cursor ? "; more below" : ""}.`
      : "No royalty lines for this good yet.";
  };
  const reload = async (append) => {
    const asked = ++state.asked; // an answer overtaken by a newer question is dropped
    try {
      const path = statementPath(state.creator, goodId, state.kind, append ? state.cursor : null, PAGE_SIZE);
      const page = await api(path);
      if (asked === state.asked) await render(page, append);
    } catch (error) {
      if (asked === state.asked) status.replaceChildren(problemBox(error));
    }
  };
  kind.addEventListener("change", () => {
    state.kind = kind.value;
    reload(false);
  });
  who?.addEventListener("change", () => {
    state.creator = who.value;
    title.textContent = `Royalty statement of ${state.creator}`;
    reload(false);
  });
  more.addEventListener("click", () => reload(true));
  download.addEventListener("click", async () => {
    downloadStatus.textContent = "Preparing the CSV…";
    try {
      const lines = await everyLine(state, goodId);
      const rows = await Promise.all(lines.map(async (line) => csvRow(line, await trailOf(line))));
      const name = `statement-${state.creator}-${goodId}${state.kind ? `-${state.kind}` : ""}.csv`;
      save(toCsv([CSV_COLUMNS, ...rows]), name);
      downloadStatus.textContent = `${number(lines.length)} lines saved as ${name}.`;
    } catch (error) {
      downloadStatus.replaceChildren(problemBox(error));
    }
  });
  await render(first, false);
  return el(
    "section",
    { "aria-labelledby": "statement-title", class: "dash-section" },
    title,
    el(
      "div",
      { class: "dash-controls" },
      who ? el("div", {}, el("label", { for: "statement-creator" }, "Creator"), who) : null,
      el("div", {}, el("label", { for: "statement-kind" }, "Kind of line"), kind),
    ),
    totals,
    statementTable(body),
    status,
    more,
    el(
      "p",
      {},
      download,
      el("span", { class: "muted" }, " Every line of the chosen kind, built in this browser from the statement's JSON (RFC 4180 CSV; amounts in the currency's minor units)."),
    ),
    downloadStatus,
  );
}

function choice(id, options) {
  return el("select", { id, name: id }, options.map(([value, label]) => el("option", { value }, label)));
}

function statementTable(body) {
  const heads = ["When (UTC)", "Kind", "Unit", "Trail: seller → buyer", "Channel"];
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      { id: "statement-table" },
      el("caption", { class: "dash-sr-only" }, "Royalty lines, oldest first, with each sale's trail"),
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          heads.map((h) => el("th", { scope: "col" }, h)),
          ["Price", "Creator's part"].map((h) => el("th", { scope: "col", class: "num" }, h)),
        ),
      ),
      body,
    ),
  );
}

async function everyLine(state, goodId) {
  const lines = [];
  let cursor = null;
  do {
    const page = await api(statementPath(state.creator, goodId, state.kind, cursor, CSV_PAGE_SIZE));
    lines.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return lines;
}

function party(name) {
  return name ?? "—";
}

function lineRow(line, trail) {
  return el(
    "tr",
    { "data-reference": line.reference, "data-kind": line.kind },
    el("td", {}, `${line.at.slice(0, 10)} ${line.at.slice(11, 19)}`),
    el("td", {}, line.kind),
    el(
      "td",
      {},
      line.unit_id ? el("a", { href: `/explore/units/${line.unit_id}`, class: "mono" }, line.unit_id.slice(0, 8)) : "—",
    ),
    el(
      "td",
      { class: "trail" },
      trail ? `${party(trail.from)} → ${party(trail.to)}` : "—",
    ),
    el("td", {}, line.channel ?? "—"),
    el("td", { class: "num" }, money(line.price)),
    el("td", { class: "num" }, money(line.amount)),
  );
}

function totalsList(totals) {
  if (!totals.length) return el("p", { class: "muted" }, "No totals yet.");
  return el(
    "ul",
    { class: "dash-total-list", "aria-label": "Totals per kind" },
    totals.map((t) => el("li", {}, el("strong", {}, t.kind), `: ${money(t.amount)} from ${number(t.lines)} lines`)),
  );
}

function csvRow(line, trail) {
  return [
    line.at,
    line.day,
    line.kind,
    line.reference,
    line.good_id,
    line.unit_id ?? "",
    trail?.from ?? "",
    trail?.to ?? "",
    line.channel ?? "",
    line.price.amount,
    line.amount.amount,
    line.amount.currency,
    line.role,
  ];
}

/** RFC 4180: CRLF between records, a field quoted (quotes doubled) when it needs it. */
export function toCsv(rows) {
  const field = (value) => {
    const text = String(value ?? "");
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return rows.map((row) => row.map(field).join(",")).join("\r\n") + "\r\n";
}

function save(text, name) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
  const link = el("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

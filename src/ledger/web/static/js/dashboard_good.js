// One good on the creator dashboard (/dashboard/goods/{good_id}): live stock
// per tier and pool, pushed over GET /goods/{id}/stock/stream (no polling),
// sales velocity with the sell-out estimate, the lineage, and the royalty
// statement with each resale's trail and a CSV download.
//
// The page opens with the royalty statement (statementCreator: whose): a
// key the API refuses it to (another creator's) sees that refusal and
// nothing else of the good.

import { currentKey, requireKey } from "./session.js";
import { ApiError, api, el, number, problemBox, streamEvents, svg } from "./api.js";
import { lineageSection, velocitySection } from "./dashboard_charts.js";
import { statementSection } from "./dashboard_statement.js";

const app = document.getElementById("app");
const goodId = app.dataset.goodId;
const base = `/goods/${encodeURIComponent(goodId)}`;
let stream = null;

requireKey(app, {
  roles: ["creator"],
  purpose: "Sign in with your creator key to see this good selling.",
  onSignedIn: (principal) => {
    stream?.abort();
    stream = new AbortController();
    show(principal, stream.signal);
  },
});

// Signed out (the status empties): the live stream, opened with the key, ends too.
new MutationObserver(() => {
  if (!currentKey()) stream?.abort();
}).observe(document.getElementById("session-status"), { childList: true });

/**
 * Whose statement the page shows: the signed-in creator's, when they are a
 * creator of the good or of a master it derives from (a master's creators
 * have a part of each sale of its variants); else the good's first
 * creator's, which the API refuses another creator.
 */
async function statementCreator(principal, good, signal) {
  if (principal.role !== "creator") return good.creators[0];
  if (good.creators.includes(principal.subject)) return principal.subject;
  let master = good.master_id;
  for (let depth = 0; master && depth < 64; depth += 1) {
    const found = await api(`/goods/${encodeURIComponent(master)}`, { signal });
    if (found.creators.includes(principal.subject)) return principal.subject;
    master = found.master_id;
  }
  return good.creators[0];
}

async function show(principal, signal) {
  const status = el("p", { class: "muted", role: "status" }, "Loading…");
  app.replaceChildren(status);
  let good, statement;
  try {
    good = await api(base, { signal });
    statement = await statementSection(goodId, await statementCreator(principal, good, signal), {
      creators: principal.role === "creator" ? [] : good.creators,
      signal,
    });
  } catch (error) {
    if (signal.aborted) return;
    app.replaceChildren(problemBox(error));
    return;
  }
  document.getElementById("good-title").textContent = good.title;
  document.title = `${good.title} · ledger`;
  const stock = stockSection();
  const velocity = velocitySection(goodId);
  app.replaceChildren(
    el(
      "p",
      { class: "muted" },
      `${good.master_id ? "Variant" : "Master"} · ${good.kind} · by ${good.creators.join(", ")} · minted ${good.minted_at.slice(0, 10)} · `,
      el("a", { href: `/explore/goods/${good.good_id}` }, "in the explorer"),
    ),
    stock.node,
    velocity.node,
    await lineageSection(goodId, signal),
    statement,
  );
  stock.update(good.stock);
  velocity.refresh();
  const refresh = throttle(() => {
    stock.refreshPools(signal);
    velocity.refresh();
  }, 250);
  stock.refreshPools(signal);
  streamEvents(
    `${base}/stock/stream`,
    (frame) => {
      if (frame.event !== "stock") return;
      stock.live(true);
      stock.update(JSON.parse(frame.data).tiers);
      refresh();
    },
    {
      signal,
      onError: (error) => stock.live(false, error),
    },
  );
}

/** ``action`` at most once per ``ms``, ``ms`` after the first call of a burst:
 * a steady stream of events still refreshes (a debounce never would). */
function throttle(action, ms) {
  let timer = null;
  return () => {
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      action();
    }, ms);
  };
}

// -- live stock --------------------------------------------------------------

const ANNOUNCE_MS = 3_000;
const SEGMENTS = [
  ["issued", "Issued"],
  ["reserved", "Reserved (holds)"],
  ["pooled", "In channels' pools"],
  ["available", "Available"],
];

function stockSection() {
  const rows = el("tbody", {});
  const pools = el("div", { class: "table-wrap", id: "pools" });
  const connection = el("p", { class: "muted dash-live" }, "Connecting to the live stock…");
  const announce = el("p", { id: "stock-announce", class: "dash-announce", "aria-live": "polite" });
  const node = el(
    "section",
    { "aria-labelledby": "stock-title", class: "dash-section" },
    el("h2", { id: "stock-title" }, "Live stock"),
    connection,
    announce,
    el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        { id: "stock-table" },
        el("caption", { class: "dash-sr-only" }, "Stock per tier, updated live"),
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            el("th", { scope: "col" }, "Tier"),
            el("th", { scope: "col" }, "Shows"),
            ["Quota", "Issued", "Reserved", "Pooled", "Available"].map((h) =>
              el("th", { scope: "col", class: "num" }, h),
            ),
            el("th", { scope: "col" }, "Of the quota"),
          ),
        ),
        rows,
      ),
    ),
    legend(),
    el("h3", {}, "Pools per channel"),
    pools,
  );
  // Said at once, then at most every ANNOUNCE_MS, summed since the last
  // said: a flash sale is not a torrent of announcements.
  let announced = null;
  let latest = null;
  let saidAt = 0;
  let pending = null;
  const say = () => {
    pending = null;
    const said = changes(announced, latest);
    announced = new Map(latest.map((t) => [t.tier, t]));
    if (!said.length) return;
    saidAt = Date.now();
    announce.textContent = `${new Date(saidAt).toISOString().slice(11, 19)} UTC: ${said.join(" ")}`;
  };
  return {
    node,
    live(connected, error) {
      connection.textContent = connected
        ? "Live: changes are pushed by the server as they happen."
        : error instanceof ApiError && error.status < 500
          ? `The live stream was refused: ${error.message}`
          : `The live stream stopped (${error?.message || "connection lost"}); retrying…`;
      connection.classList.toggle("bad", !connected);
    },
    update(tiers) {
      rows.replaceChildren(...tiers.map(stockRow));
      latest = tiers;
      if (announced === null) announced = new Map(tiers.map((t) => [t.tier, t]));
      else if (pending === null) pending = setTimeout(say, Math.max(0, saidAt + ANNOUNCE_MS - Date.now()));
    },
    async refreshPools(signal) {
      try {
        const answer = await api(`${base}/pools`, { signal });
        pools.replaceChildren(poolTable(answer.pools));
      } catch (error) {
        if (!signal.aborted) pools.replaceChildren(problemBox(error));
      }
    },
  };
}

function changes(previous, tiers) {
  const said = [];
  for (const tier of tiers) {
    const before = previous.get(tier.tier);
    if (!before) continue;
    const sold = tier.issued - before.issued;
    const parts = [];
    if (sold > 0) parts.push(`${number(sold)} sold`);
    if (sold < 0) parts.push(`${number(-sold)} returned`);
    if (tier.reserved !== before.reserved) parts.push(`${number(tier.reserved)} reserved`);
    if (tier.pooled !== before.pooled) parts.push(`${number(tier.pooled)} in pools`);
    if (tier.band !== before.band) parts.push(`now ${tier.display}`);
    if (parts.length) said.push(`Tier ${tier.tier}: ${parts.join(", ")}; ${number(tier.available)} available.`);
  }
  return said;
}

function stockRow(tier) {
  const badge = tier.sold_out ? "bad" : tier.band === "plenty" ? "ok" : "warn";
  return el(
    "tr",
    { "data-tier": tier.tier, "data-issued": tier.issued, "data-available": tier.available },
    el("th", { scope: "row" }, tier.tier),
    el("td", {}, el("span", { class: `badge ${badge}` }, tier.display)),
    [tier.quota, tier.issued, tier.reserved, tier.pooled, tier.available].map((n) =>
      el("td", { class: "num" }, number(n)),
    ),
    el("td", { class: "dash-bar-cell" }, stockBar(tier)),
  );
}

function stockBar(tier) {
  const total = Math.max(tier.quota, tier.issued + tier.reserved + tier.pooled + tier.available, 1);
  const shown = svg(
    "svg",
    {
      class: "dash-bar",
      viewBox: "0 0 100 10",
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": `${tier.issued} of ${tier.quota} issued`,
    },
  );
  let x = 0;
  for (const [field] of SEGMENTS) {
    const width = (100 * tier[field]) / total;
    if (width > 0) shown.append(svg("rect", { class: `seg-${field}`, x, y: 0, width, height: 10 }));
    x += width;
  }
  return shown;
}

function legend() {
  return el(
    "ul",
    { class: "dash-legend", "aria-label": "Bar legend" },
    SEGMENTS.map(([field, label]) =>
      el(
        "li",
        {},
        svg("svg", { viewBox: "0 0 10 10", class: "dash-swatch", "aria-hidden": "true" }, svg("rect", { class: `seg-${field}`, width: 10, height: 10 })),
        label,
      ),
    ),
  );
}

function poolTable(pools) {
  if (!pools.length) return el("p", { class: "muted" }, "No units are set aside in channels' pools.");
  return el(
    "table",
    { id: "pool-table" },
    el("caption", { class: "dash-sr-only" }, "Pools per tier and channel"),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col" }, "Tier"),
        el("th", { scope: "col" }, "Channel"),
        ["Free", "Allotted", "Sold", "Returned"].map((h) => el("th", { scope: "col", class: "num" }, h)),
        el("th", { scope: "col" }, "Overflow to shared stock"),
      ),
    ),
    el(
      "tbody",
      {},
      pools.map((p) =>
        el(
          "tr",
          { "data-tier": p.tier, "data-channel": p.channel },
          el("td", {}, p.tier),
          el("th", { scope: "row" }, p.channel),
          [p.free, p.allotted, p.sold, p.returned].map((n) => el("td", { class: "num" }, number(n))),
          el("td", {}, p.overflow ? "yes" : "no"),
        ),
      ),
    ),
  );
}

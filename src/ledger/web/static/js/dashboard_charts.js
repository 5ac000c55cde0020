// The dashboard's hand-made SVG: sales velocity with the sell-out estimate
// per tier (GET /goods/{id}/velocity), and the lineage of masters and
// variants (GET /goods/{id}/lineage). Each comes with a text equivalent (a
// table, a list) for screen readers and anyone who prefers text.

import { api, el, number, problemBox, svg } from "./api.js";

// -- velocity ------------------------------------------------------------------

const WIDTH = 640;
const LEFT = 90;
const RIGHT = 24;
const TOP = 16;
const ROW = 50;
const BOTTOM = 48;

export function velocitySection(goodId) {
  const chart = el("div", { class: "dash-chart" });
  const text = el("div", { class: "table-wrap" });
  const node = el(
    "section",
    { "aria-labelledby": "velocity-title", class: "dash-section" },
    el("h2", { id: "velocity-title" }, "Sales velocity and sell-out estimate"),
    chart,
    el("h3", { id: "velocity-table-title" }, "The chart as a table"),
    text,
  );
  // One read at a time; asked again meanwhile, one more read after it.
  let running = false;
  let again = false;
  const refresh = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    do {
      again = false;
      try {
        const answer = await api(`/goods/${encodeURIComponent(goodId)}/velocity`);
        chart.replaceChildren(velocityChart(answer.tiers));
        text.replaceChildren(velocityTable(answer.tiers));
      } catch (error) {
        chart.replaceChildren(problemBox(error));
      }
    } while (again);
    running = false;
  };
  return { node, refresh };
}

/** "2026-12-08 03:00 UTC (in 2 h 20 min)": when a tier would sell out. */
export function estimateText(tier, now = Date.now()) {
  if (tier.sold_out) {
    return tier.sell_out_estimate ? `sold out (last sale ${utc(tier.sell_out_estimate)})` : "sold out";
  }
  if (!tier.sell_out_estimate) return `no sales in the last ${tier.window_minutes} min: no estimate`;
  const minutes = Math.max(0, Math.round((Date.parse(tier.sell_out_estimate) - now) / 60_000));
  const hours = Math.floor(minutes / 60);
  const span = hours >= 48 ? `${number(Math.round(hours / 24))} days` : hours ? `${hours} h ${minutes % 60} min` : `${minutes} min`;
  return `sells out about ${utc(tier.sell_out_estimate)} (in ${span})`;
}

function utc(iso) {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (value <= m * step) return m * step;
  return 10 * step;
}

function velocityChart(tiers) {
  const window = tiers[0]?.window_minutes ?? 60;
  const max = niceMax(Math.max(0, ...tiers.map((t) => t.units_per_hour)));
  const plot = WIDTH - LEFT - RIGHT;
  const height = TOP + ROW * Math.max(tiers.length, 1) + BOTTOM;
  const axisY = TOP + ROW * Math.max(tiers.length, 1);
  const scale = (v) => LEFT + (plot * v) / max;
  const parts = [
    svg("title", { id: "velocity-svg-title" }, "Units sold per hour per tier, and when each would sell out"),
    svg(
      "desc",
      { id: "velocity-svg-desc" },
      tiers.map((t) => `${t.tier}: ${t.units_per_hour} per hour, ${estimateText(t)}.`).join(" "),
    ),
    svg("line", { class: "axis", x1: LEFT, y1: TOP - 6, x2: LEFT, y2: axisY }),
    svg("line", { class: "axis", x1: LEFT, y1: axisY, x2: LEFT + plot, y2: axisY }),
  ];
  for (const tick of [0, max / 2, max]) {
    const x = scale(tick);
    parts.push(svg("line", { class: "axis", x1: x, y1: axisY, x2: x, y2: axisY + 4 }));
    parts.push(svg("text", { x, y: axisY + 16, "text-anchor": "middle" }, number(tick)));
  }
  parts.push(
    svg(
      "text",
      { x: LEFT + plot / 2, y: axisY + 36, "text-anchor": "middle", class: "axis-label" },
      `units sold per hour (last ${window} min)`,
    ),
    svg(
      "text",
      { x: 12, y: TOP + (axisY - TOP) / 2, "text-anchor": "middle", class: "axis-label", transform: `rotate(-90 12 ${TOP + (axisY - TOP) / 2})` },
      "tier",
    ),
  );
  tiers.forEach((tier, i) => {
    const y = TOP + i * ROW;
    const end = scale(tier.units_per_hour);
    parts.push(
      svg("text", { x: LEFT - 8, y: y + 20, "text-anchor": "end" }, tier.tier),
      svg("rect", { class: "dash-velocity-bar", x: LEFT, y: y + 8, width: Math.max(end - LEFT, 0), height: 16 }),
      svg(
        "text",
        { x: LEFT + 4, y: y + 40, class: "dash-velocity-label" },
        `${number(tier.units_per_hour)}/h · ${estimateText(tier)}`,
      ),
    );
  });
  return svg(
    "svg",
    {
      class: "chart dash-velocity",
      id: "velocity-chart",
      viewBox: `0 0 ${WIDTH} ${height}`,
      role: "img",
      "aria-labelledby": "velocity-svg-title velocity-svg-desc",
    },
    parts,
  );
}

function velocityTable(tiers) {
  return el(
    "table",
    { id: "velocity-table", "aria-labelledby": "velocity-table-title" },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col" }, "Tier"),
        ["Sold in window", "Window (min)", "Units per hour", "Available"].map((h) =>
          el("th", { scope: "col", class: "num" }, h),
        ),
        el("th", { scope: "col" }, "Sell-out estimate"),
      ),
    ),
    el(
      "tbody",
      {},
      tiers.map((t) =>
        el(
          "tr",
          { "data-tier": t.tier },
          el("th", { scope: "row" }, t.tier),
          [t.sold_in_window, t.window_minutes, t.units_per_hour, t.available].map((n) =>
            el("td", { class: "num" }, number(n)),
          ),
          el("td", {}, estimateText(t)),
        ),
      ),
    ),
  );
}

// -- lineage ---------------------------------------------------------------------

const NODE_W = 170;
const NODE_H = 40;
const GAP_X = 20;
const GAP_Y = 36;

function short(title, length = 22) {
  return title.length > length ? `${title.slice(0, length - 1)}…` : title;
}

export async function lineageSection(goodId, signal) {
  const section = el(
    "section",
    { "aria-labelledby": "lineage-title", class: "dash-section" },
    el("h2", { id: "lineage-title" }, "Lineage: masters and variants"),
  );
  try {
    const lineage = await api(`/goods/${encodeURIComponent(goodId)}/lineage`, { signal });
    section.append(lineageGraph(lineage), lineageList(lineage));
  } catch (error) {
    section.append(problemBox(error));
  }
  return section;
}

function lineageGraph(lineage) {
  // Levels top to bottom: the root master first, this good, its variants.
  const masters = [...lineage.masters].reverse();
  const variants = lineage.variants;
  const columns = Math.max(variants.length, 1);
  const width = columns * (NODE_W + GAP_X) + GAP_X;
  const levels = masters.length + 1 + (variants.length ? 1 : 0);
  const height = levels * (NODE_H + GAP_Y) + GAP_Y / 2;
  const centre = width / 2 - NODE_W / 2;
  const parts = [svg("title", { id: "lineage-svg-title" }, `Lineage of ${lineage.title}`)];
  const node = (good, x, y, current) => {
    const box = [
      svg("rect", { x, y, width: NODE_W, height: NODE_H, rx: 6, class: current ? "node current" : "node" }),
      svg("text", { x: x + NODE_W / 2, y: y + NODE_H / 2 + 4, "text-anchor": "middle" }, short(good.title)),
    ];
    if (current) return svg("g", { class: "dash-node", "aria-current": "page" }, box);
    return svg("a", { href: `/dashboard/goods/${good.good_id}`, class: "dash-node", "aria-label": good.title }, box);
  };
  const top = (level) => GAP_Y / 2 + level * (NODE_H + GAP_Y);
  masters.forEach((good, level) => {
    parts.push(svg("line", { class: "edge", x1: width / 2, y1: top(level) + NODE_H, x2: width / 2, y2: top(level + 1) }));
    parts.push(node(good, centre, top(level), false));
  });
  const here = masters.length;
  parts.push(node(lineage, centre, top(here), true));
  variants.forEach((good, i) => {
    const x = GAP_X + i * (NODE_W + GAP_X) + (width - columns * (NODE_W + GAP_X) - GAP_X) / 2;
    parts.push(
      svg("path", {
        class: "edge",
        d: `M ${width / 2} ${top(here) + NODE_H} C ${width / 2} ${top(here + 1) - GAP_Y / 2}, ${x + NODE_W / 2} ${top(here) + NODE_H + GAP_Y / 2}, ${x + NODE_W / 2} ${top(here + 1)}`,
      }),
      node(good, x, top(here + 1), false),
    );
  });
  return svg(
    "svg",
    {
      class: "chart dash-lineage",
      id: "lineage-graph",
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "group",
      "aria-labelledby": "lineage-svg-title",
    },
    parts,
  );
}

function lineageList(lineage) {
  const link = (good) => el("a", { href: `/dashboard/goods/${good.good_id}` }, good.title);
  const masters = [...lineage.masters].reverse();
  return el(
    "div",
    { class: "dash-lineage-list" },
    el("h3", { id: "lineage-list-title" }, "The lineage as a list"),
    el(
      "ul",
      { id: "lineage-list", "aria-labelledby": "lineage-list-title" },
      masters.length
        ? el("li", {}, `Derived from (root first): `, masters.flatMap((m, i) => [i ? " → " : "", link(m)]))
        : el("li", {}, "A master: derived from no other good."),
      el("li", {}, "This good: ", el("strong", {}, lineage.title)),
      lineage.variants.length
        ? el(
            "li",
            {},
            `Variants (${number(lineage.variants.length)}):`,
            el(
              "ul",
              {},
              lineage.variants.map((v) =>
                el("li", { "data-good-id": v.good_id }, link(v), ` (No. ${v.index}, derived ${v.derived_at.slice(0, 10)})`),
              ),
            ),
          )
        : el("li", {}, "No variants."),
    ),
  );
}

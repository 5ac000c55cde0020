// The creator dashboard's first page: the signed-in creator's goods (a
// creator key sees its own through GET /goods; admin and auditor see all),
// a page at a time, each with its tiers' issued / quota and a link to the
// good's page (/dashboard/goods/{good_id}).

import { requireKey } from "./session.js";
import { api, el, number, problemBox } from "./api.js";

const PAGE_SIZE = 20;
const app = document.getElementById("app");

requireKey(app, {
  roles: ["creator"],
  purpose: "Sign in with your creator key to see your goods selling.",
  onSignedIn: (principal) => showGoods(principal),
});

function showGoods(principal) {
  const whose = principal.role === "creator" ? `Goods by ${principal.subject}` : "All goods";
  const list = el("ul", { class: "dash-goods", "aria-labelledby": "goods-title" });
  const status = el("p", { class: "muted", role: "status" }, "Loading your goods…");
  const more = el("button", { type: "button", class: "secondary", hidden: true }, "More goods");
  app.replaceChildren(el("h2", { id: "goods-title" }, whose), status, list, more);
  let cursor = null;
  const load = async () => {
    more.hidden = true;
    try {
      const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (cursor) query.set("cursor", cursor);
      const page = await api(`/goods?${query}`);
      const cards = await Promise.all(page.items.map(goodCard));
      list.append(...cards);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      const count = list.children.length;
      status.textContent =
        count === 0 ? "No goods yet: mint one with POST /goods." : `${number(count)} goods shown.`;
    } catch (error) {
      status.replaceChildren(problemBox(error));
    }
  };
  more.addEventListener("click", load);
  load();
}

async function goodCard(good) {
  const { tiers } = await api(`/goods/${encodeURIComponent(good.good_id)}/stock`);
  const href = `/dashboard/goods/${good.good_id}`;
  return el(
    "li",
    { class: "card dash-good", "data-good-id": good.good_id },
    el("h3", {}, el("a", { href }, good.title)),
    el(
      "p",
      { class: "muted" },
      good.master_id ? "Variant" : "Master",
      ` · ${good.kind} · minted ${good.minted_at.slice(0, 10)}`,
      good.variants ? ` · ${number(good.variants)} variant${good.variants === 1 ? "" : "s"}` : "",
    ),
    el(
      "table",
      { class: "dash-tiers" },
      el(
        "caption",
        { class: "dash-sr-only" },
        `Tiers of ${good.title}: issued of quota`,
      ),
      el(
        "thead",
        {},
        el("tr", {}, el("th", { scope: "col" }, "Tier"), el("th", { scope: "col", class: "num" }, "Issued / quota"), el("th", { scope: "col" }, "Shows")),
      ),
      el(
        "tbody",
        {},
        tiers.map((tier) =>
          el(
            "tr",
            { "data-tier": tier.tier },
            el("th", { scope: "row" }, tier.tier),
            el("td", { class: "num" }, `${number(tier.issued)} / ${number(tier.quota)}`),
            el("td", {}, tier.display),
          ),
        ),
      ),
    ),
  );
}

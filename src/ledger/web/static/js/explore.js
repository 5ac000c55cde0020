// The provenance explorer: /explore (look up a unit or a good, or paste a
// receipt link), /explore/units/{id} (a unit's trail and its proofs,
// verified in this browser), /explore/goods/{id} (a good's units).
//
// A unit's page reads only public endpoints (the provenance bundle and the
// log's pinned policy) and sends no key for them. "Verify in this browser"
// calls nothing: tlog.js checks the bundle already loaded, with WebCrypto.

import { ApiError, api, apiText, el, money, number, problemBox } from "./api.js";
import { requireKey } from "./session.js";
import { NOT_VERIFIED, hasEd25519, readBundle, verifyBundle } from "./tlog.js";

const POLICY_STORE = "ledger.explorer.policy";
const UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
const LINK = new RegExp(`/(?:explore/)?(units|goods)/(${UUID})(?:[/?#]|$)`);
const BARE = new RegExp(`^(${UUID})$`);

// The pages' prose, kept apart from the code that lays it out.
const TEXT = {
  searchLede:
    "Where a unit has been: its serial, its holders in order, each event with its place in " +
    "the public log, and a check of the proofs that runs entirely in your browser. No key " +
    "needed.",
  signers:
    "The signature lines as the bundle lists them (the log's key, then the verifiers' " +
    "cosignatures). Which of them count is what the check below decides, against the policy.",
  unwitnessed:
    "No verifier cosigned this checkpoint, and the policy asks for none: the checkpoint is " +
    "only the log operator's word, and a log showing different trees to different people " +
    "would not be caught here.",
  pinned:
    "In use: the policy this server pins (GET /log/policy). That is the server's word: to " +
    "check without trusting it, paste a policy with the keys you got from the log's operator " +
    "and its verifiers.",
  insecure:
    "This page is not in a secure context (plain HTTP on an address other than 127.0.0.1 or " +
    "localhost), so the browser offers no WebCrypto: it cannot verify here. Open it over " +
    "HTTPS, or verify offline with ledger proof verify.",
  noEd25519:
    "This browser's WebCrypto has no Ed25519 (Chrome 137, Firefox 129, Safari 17 and later " +
    "have it), so it cannot check the signatures here. Use a newer browser, or verify " +
    "offline with ledger proof verify.",
  verifyLede:
    "Checks the bundle this page loaded, with SHA-256 and Ed25519 in your browser; it asks " +
    "the server nothing.",
  goodLede:
    "A good's units, each linking to its provenance, with their holders: listed to a " +
    "creator's or an auditor's key only (a channel sees its own sales on its own pages); a " +
    "unit's own page, and the log, need no key.",
};

/** What a search names: {kind: "unit"|"good", id} from an id or a receipt
 *  link (…/explore/units/<id>, …/units/<id>/provenance, …/explore/goods/<id>). */
export function parseLookup(text, kind = "unit") {
  const trimmed = text.trim();
  const bare = BARE.exec(trimmed);
  if (bare) return { kind, id: bare[1].toLowerCase() };
  const link = LINK.exec(trimmed);
  if (link) return { kind: link[1] === "units" ? "unit" : "good", id: link[2].toLowerCase() };
  return null;
}

function section(title, id, ...children) {
  return el("section", { class: "panel explore-section", "aria-labelledby": id },
    el("h2", { id }, title), ...children);
}

// -- /explore ----------------------------------------------------------------

function searchForm() {
  const error = el("p", { class: "problem-inline", role: "alert" });
  const input = el("input", {
    id: "lookup", name: "lookup", type: "text", required: true, spellcheck: "false",
    autocomplete: "off", "aria-describedby": "lookup-hint",
  });
  const radio = (value, label, checked) =>
    el("label", { class: "choice" },
      el("input", { type: "radio", name: "kind", value, checked }), ` ${label}`);
  const form = el("form", { class: "lookup", role: "search", "aria-label": "Look up a unit or a good" },
    el("label", { for: "lookup" }, "Unit id, good id, or a receipt link"),
    input,
    el("p", { id: "lookup-hint", class: "muted" },
      "A link printed on a receipt (…/explore/units/<id>) says what it names; a bare id is the kind chosen below."),
    el("fieldset", { class: "choices" }, el("legend", {}, "A bare id names a"),
      radio("unit", "unit", true), radio("good", "good", false)),
    el("button", { type: "submit" }, "Look up"),
    error);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const kind = new FormData(form).get("kind") || "unit";
    const found = parseLookup(input.value, kind);
    if (!found) {
      error.textContent = "That is neither an id (8-4-4-4-12 hex digits) nor a link to a unit or a good.";
      input.focus();
      return;
    }
    location.assign(`/explore/${found.kind}s/${found.id}`);
  });
  return form;
}

function renderSearch(app) {
  app.replaceChildren(
    el("p", { class: "lede" },
      TEXT.searchLede),
    searchForm());
}

// -- /explore/units/{id} -----------------------------------------------------

function edition(e) {
  if (!e) return "unknown (this bundle predates editions)";
  return e.basis === "lifetime-cap"
    ? `No. ${number(e.serial)} of ${number(e.of)} (the lifetime cap restocks may reach)`
    : `No. ${number(e.serial)} of ${number(e.of)}`;
}

function eventName(type) {
  return { "unit.issued": "sold", "unit.resold": "resold", "unit.refunded": "refunded",
    "unit.reissued": "reissued", "unit.moved": "moved", "unit.transferred": "transferred" }[type] || type;
}

function summary(unitId, view) {
  const last = view.events[view.events.length - 1];
  return section("Summary", "summary-title",
    el("dl", { class: "facts" },
      el("dt", {}, "Unit"), el("dd", { class: "mono" }, unitId),
      el("dt", {}, "Serial"), el("dd", { id: "serial" }, edition(view.edition)),
      el("dt", {}, "Good"), el("dd", {}, view.good
        ? el("a", { href: `/explore/goods/${view.good}`, class: "mono" }, view.good) : "—"),
      el("dt", {}, "Holder now"), el("dd", {}, last && last.holder ? last.holder : "— (back in stock)"),
      el("dt", {}, "Verified"), el("dd", { id: "verified-badge" },
        el("span", { class: "badge warn" }, "not yet: as the server says"))));
}

function table(caption, headers, rows) {
  return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    el("table", {},
      el("caption", { class: "visually-hidden" }, caption),
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
}

function holders(view) {
  const rows = view.events.map((e, i) => el("tr", {},
    el("td", {}, String(i + 1)),
    el("td", {}, eventName(e.type)),
    el("td", {}, e.seller ? `${e.seller} → ${e.holder ?? "—"}` : e.holder ?? "—"),
    el("td", {}, e.channel ?? "—"),
    el("td", { class: "num" }, money(e.price)),
    el("td", {}, el("time", { datetime: e.at }, e.at))));
  return section("Holders, in order", "holders-title",
    table("The unit's holders in order", ["#", "Event", "Holder", "Channel", "Price", "At"], rows));
}

function proofLink(unitId, item, version) {
  const url = URL.createObjectURL(new Blob([String(item.proof)], { type: "text/plain" }));
  return el("a", { href: url, download: `unit-${unitId}-v${version}.tlog-proof` }, ".tlog-proof");
}

function events(unitId, bundle, view) {
  const rows = view.events.map((e, i) => el("tr", {},
    el("td", {}, String(e.version)),
    el("td", { class: "mono" }, e.type),
    el("td", { class: "num" }, number(e.index)),
    el("td", { class: "mono leaf" }, e.leaf),
    el("td", {}, proofLink(unitId, bundle.events[i], e.version))));
  const unreadable = view.unreadable
    ? el("p", { class: "bad" }, `${view.unreadable} event(s) in the bundle could not be read at all.`)
    : null;
  return section("Events in the log", "events-title",
    el("p", { class: "muted" },
      "Each event's leaf hash is SHA-256(0x00 ‖ its record), computed here from the record the bundle carries."),
    table("The unit's events with their log index and leaf hash",
      ["Version", "Type", "Log index", "Leaf hash (base64)", "Proof"], rows),
    unreadable);
}

function checkpointSection(view) {
  const c = view.checkpoint;
  if (!c) {
    return section("Checkpoint", "checkpoint-title",
      el("p", { class: "bad" }, "The bundle's checkpoint cannot be read."));
  }
  return section("Checkpoint", "checkpoint-title",
    el("dl", { class: "facts" },
      el("dt", {}, "Log (origin)"), el("dd", { class: "mono" }, c.origin),
      el("dt", {}, "Tree size"), el("dd", {}, number(c.size)),
      el("dt", {}, "Root hash"), el("dd", { class: "mono" }, c.root),
      el("dt", {}, "Signed by"), el("dd", {},
        el("ul", { class: "plain", id: "signers" }, c.signatures.map((s) => el("li", { class: "mono" }, s))))),
    el("p", { class: "muted" },
      TEXT.signers));
}

function downloads(unitId) {
  return section("Download", "download-title",
    el("p", {},
      el("a", { href: `/units/${unitId}/provenance`, download: `unit-${unitId}.provenance.json`, id: "bundle-link" },
        "The provenance bundle (JSON)"),
      " — check it offline with ",
      el("code", {}, `ledger proof verify unit-${unitId}.provenance.json --policy policy.txt`),
      ". Each event's ", el("code", {}, ".tlog-proof"), " is linked in the table above."));
}

function checkItem(c) {
  return el("li", { class: c.ok ? "check pass" : "check fail" },
    el("span", { class: c.ok ? "badge ok" : "badge bad" }, c.ok ? "pass" : "fail"), " ",
    el("strong", {}, c.check), el("br"), el("span", { class: "muted detail" }, c.detail));
}

function statementList(title, lines, id) {
  return el("div", {}, el("h3", {}, title), el("ul", { id }, lines.map((l) => el("li", {}, l))));
}

function renderResult(out, result) {
  const verdict = result.ok
    ? el("p", { class: "verdict ok", id: "verdict" },
      `Verified in this browser: ${result.history.length} event(s) under the checkpoint ` +
      `of size ${result.treeSize}, cosigned by ` +
      `${result.cosigners.join(", ") || "no verifier (the policy asks for none)"}.`)
    : el("p", { class: "verdict bad", id: "verdict" },
      `Verification failed at ${result.failure.where}: ${result.failure.check} — ${result.failure.detail}`);
  const unwitnessed = result.ok && result.cosigners.length === 0
    ? el("p", { class: "problem", id: "unwitnessed" },
      TEXT.unwitnessed)
    : null;
  out.replaceChildren(
    ...[verdict, unwitnessed].filter(Boolean),
    el("ol", { class: "checks", id: "checks" }, result.checks.map(checkItem)),
    result.ok
      ? statementList("What this check verified", result.verified, "was-verified")
      : el("p", {}, "Because a check failed, nothing the server says about this unit is verified."),
    statementList("What it did not verify", NOT_VERIFIED, "not-verified"));
  const badge = document.getElementById("verified-badge");
  badge.replaceChildren(result.ok
    ? el("span", { class: "badge ok" }, "verified in this browser")
    : el("span", { class: "badge bad" }, "verification failed"));
  if (result.ok) document.getElementById("serial").textContent = edition(result.edition);
}

function policyStatus(stored) {
  return stored
    ? "In use: your policy, kept in this browser (localStorage) since you pasted it."
    : TEXT.pinned;
}

function verifySection(bundle, pinned) {
  const stored = localStorage.getItem(POLICY_STORE);
  const status = el("p", { id: "policy-status" }, policyStatus(stored));
  const textarea = el("textarea", {
    id: "policy", name: "policy", rows: "6", spellcheck: "false", class: "mono",
    "aria-describedby": "policy-status",
  }, stored ?? pinned ?? "");
  const out = el("div", { id: "verify-result", "aria-live": "polite" });
  const secure = window.isSecureContext && globalThis.crypto && crypto.subtle;
  const button = el("button", { type: "submit", id: "verify", disabled: !secure }, "Verify in this browser");
  const reset = el("button", { type: "button", class: "button secondary", id: "policy-reset" },
    "Use the server's policy");
  reset.addEventListener("click", () => {
    localStorage.removeItem(POLICY_STORE);
    textarea.value = pinned ?? "";
    status.textContent = policyStatus(null);
  });
  const form = el("form", { class: "verify", "aria-labelledby": "verify-title" },
    el("label", { for: "policy" }, "Policy (C2SP tlog-policy: the log's key, the verifiers' keys, the quorum)"),
    textarea, status,
    el("div", { class: "actions" }, button, " ", reset));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = textarea.value;
    if (text.trim() && text !== pinned) localStorage.setItem(POLICY_STORE, text);
    else localStorage.removeItem(POLICY_STORE);
    status.textContent = policyStatus(localStorage.getItem(POLICY_STORE));
    out.replaceChildren(el("p", {}, "Checking…"));
    renderResult(out, await verifyBundle(bundle, text));
  });
  const insecure = secure ? null : el("p", { class: "problem", role: "alert" },
    TEXT.insecure);
  if (secure) {
    hasEd25519().then((ok) => {
      if (ok) return;
      button.disabled = true;
      form.before(el("p", { class: "problem", role: "alert" }, TEXT.noEd25519));
    });
  }
  return section("Verify in this browser", "verify-title",
    el("p", {}, TEXT.verifyLede),
    insecure, form, out);
}

async function renderUnit(app, unitId) {
  app.replaceChildren(el("p", { class: "muted" }, "Loading the unit's provenance…"));
  let bundle;
  let pinned = null;
  for (;;) {
    try {
      bundle = await api(`/units/${unitId}/provenance`, { key: null });
      break;
    } catch (error) {
      if (error instanceof ApiError && error.problem.type?.endsWith("not-yet-sealed")) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      app.replaceChildren(problemBox(error), searchForm());
      return;
    }
  }
  try {
    pinned = await apiText("/log/policy");
  } catch {
    pinned = null;
  }
  const view = await readBundle(bundle);
  app.replaceChildren(
    summary(unitId, view), holders(view), events(unitId, bundle, view), checkpointSection(view),
    verifySection(bundle, pinned), downloads(unitId));
}

// -- /explore/goods/{id} -----------------------------------------------------

async function goodUnits(goodId) {
  const items = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: "500" });
    if (cursor) query.set("cursor", cursor);
    const page = await api(`/goods/${goodId}/units?${query}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < 5000);
  return items;
}

async function showGood(container, goodId) {
  container.replaceChildren(el("p", { class: "muted" }, "Loading the good…"));
  try {
    const [good, units] = await Promise.all([api(`/goods/${goodId}`), goodUnits(goodId)]);
    const tiers = (good.stock || []).map((t) =>
      el("li", {}, `${t.tier}: ${number(t.issued ?? 0)} issued of ${number(t.quota ?? 0)}`));
    const rows = units.map((u) => el("tr", {},
      el("td", {}, u.tier),
      el("td", {}, el("a", { href: `/explore/units/${u.unit_id}` }, edition(u.edition))),
      el("td", {}, u.holder ?? "—"),
      el("td", { class: "num" }, number(u.events ?? 0))));
    container.replaceChildren(
      section(good.title || "The good", "good-title",
        el("dl", { class: "facts" },
          el("dt", {}, "Good"), el("dd", { class: "mono" }, goodId),
          el("dt", {}, "Tiers"), el("dd", {}, el("ul", { class: "plain" }, tiers)))),
      section(`Units (${number(units.length)})`, "units-title",
        table("The good's units, by tier and serial", ["Tier", "Serial", "Holder", "Events"], rows)));
  } catch (error) {
    container.replaceChildren(problemBox(error));
  }
}

function renderGood(app, goodId) {
  const body = el("div");
  app.replaceChildren(
    el("p", { class: "lede" }, TEXT.goodLede),
    body,
    section("Look up a unit", "lookup-title", searchForm()));
  requireKey(body, {
    roles: ["creator", "auditor"],
    purpose: "Sign in with a creator or auditor key to list this good's units.",
    onSignedIn: () => showGood(body, goodId),
  });
}

const app = document.getElementById("app");
if (app?.dataset.unitId) renderUnit(app, app.dataset.unitId);
else if (app?.dataset.goodId) renderGood(app, app.dataset.goodId);
else if (app) renderSearch(app);

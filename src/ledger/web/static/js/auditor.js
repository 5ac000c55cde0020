// The auditor console: the log's size and newest checkpoint, each verifier's
// cosignature and lag, the alarms, the views, the newest audit lines, and the
// command that checks everything. It reads only what an auditor's key may
// read through the public API (GET /healthz, /log/checkpoint, /witnesses,
// /alarms, /views/status, /audit; /log/policy is named in a command). No stream covers these, so the page
// refreshes every REFRESH_SECONDS while it is visible, and on its button.

import { requireKey } from "./session.js";
import { api, apiText, el, number, problemBox } from "./api.js";

const REFRESH_SECONDS = 10;
const AUDIT_LINES = 20;

const app = document.getElementById("app");

const SECTIONS = [
  ["alarms", "Alarms"],
  ["log", "The log"],
  ["views", "Views"],
  ["verifiers", "Verifiers"],
  ["audit", "Recent audit lines"],
  ["verify", "Check everything yourself"],
];

const OUTCOMES = {
  cosigned: ["ok", "cosigned"],
  refused: ["bad", "refused"],
  unreachable: ["bad", "unreachable"],
  "bad-cosignature": ["bad", "bad cosignature"],
  "not-sent": ["warn", "not sent"],
};

function badge(kind, text) {
  return el("span", { class: `badge ${kind}` }, text);
}

function time(text) {
  if (!text) return "—";
  return el("time", { datetime: text }, text.replace("T", " ").replace(/\.\d+Z$/, "Z"));
}

function facts(pairs) {
  return el(
    "dl",
    { class: "facts" },
    pairs.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]),
  );
}

function table(caption, headings, rows, numeric = []) {
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      {},
      el("caption", { class: "visually-hidden" }, caption),
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          headings.map((h, i) => el("th", { scope: "col", class: numeric.includes(i) ? "num" : null }, h)),
        ),
      ),
      el(
        "tbody",
        {},
        rows.map((cells) =>
          el(
            "tr",
            {},
            cells.map((c, i) => el("td", { class: numeric.includes(i) ? "num" : null }, c)),
          ),
        ),
      ),
    ),
  );
}

/** The skeleton: one section per part, each body filled in by a refresh. */
function layout() {
  const status = el("p", { class: "muted", id: "refreshed", "aria-live": "off" }, "Loading…");
  const button = el("button", { type: "button", class: "secondary", id: "refresh" }, "Refresh now");
  const toolbar = el(
    "div",
    { class: "auditor-toolbar" },
    button,
    status,
    el("p", { class: "muted" }, `Refreshes every ${REFRESH_SECONDS} s while this tab is visible (no stream covers the log or the verifiers).`),
  );
  const bodies = {};
  const sections = SECTIONS.map(([id, title]) => {
    bodies[id] = el("div", { class: "section-body", id: `${id}-body` });
    return el(
      "section",
      { class: "panel auditor-section", id, "aria-labelledby": `${id}-title` },
      el("h2", { id: `${id}-title` }, title),
      bodies[id],
    );
  });
  app.replaceChildren(toolbar, el("div", { class: "auditor-grid" }, sections));
  return { bodies, status, button };
}

/** Each read on its own: one that fails shows its problem, the others still show. */
async function settle(reads) {
  const names = Object.keys(reads);
  const results = await Promise.allSettled(names.map((name) => reads[name]()));
  return Object.fromEntries(names.map((name, i) => [name, results[i]]));
}

function showAlarms(body, result) {
  if (result.status === "rejected") return body.replaceChildren(problemBox(result.reason));
  const { alarms, bounds } = result.value;
  const rules = el(
    "p",
    { class: "muted" },
    `A verifier alarms when the last push to it failed or was refused, or when a checkpoint has waited more than ${bounds.verifier_lag_seconds} s for its cosignature; the views alarm when they failed, or are behind and applied nothing for ${bounds.views_stall_seconds} s; readiness alarms when the database, views or sealer is not ready.`,
  );
  if (!alarms.length) {
    return body.replaceChildren(el("p", { id: "alarm-count" }, badge("ok", "No alarms")), rules);
  }
  body.replaceChildren(
    el("p", { id: "alarm-count" }, badge("bad", `${alarms.length} alarm${alarms.length > 1 ? "s" : ""}`)),
    el(
      "ul",
      { class: "alarms", role: "list" },
      alarms.map((a) =>
        el("li", { class: "alarm" }, el("strong", {}, a.kind), " ", el("code", {}, a.subject), ": ", a.detail),
      ),
    ),
    rules,
  );
}

function checkpointFacts(text) {
  const [origin, size, root] = text.split("\n");
  const signatures = text.split("\n\n").slice(1).join("\n\n").split("\n").filter((line) => line.startsWith("—"));
  return { origin, size: Number(size), root, signatures };
}

function showLog(body, { health, checkpoint, witnesses }) {
  const wasOpen = body.querySelector("details")?.open; // (kept open across refreshes)
  const parts = [];
  const size = health.status === "fulfilled" ? health.value.log_size : undefined;
  const pairs = [["Log size (entries)", size === undefined ? "—" : number(size)]];
  if (checkpoint.status === "fulfilled") {
    const cp = checkpointFacts(checkpoint.value);
    pairs.push(["Origin", el("code", {}, cp.origin)]);
    pairs.push(["Newest checkpoint", `size ${number(cp.size)}`]);
    pairs.push(["Root hash", el("code", {}, cp.root)]);
    if (witnesses.status === "fulfilled" && witnesses.value.checkpoint) {
      pairs.push(["Signed at", time(witnesses.value.checkpoint.signed_at)]);
    }
    pairs.push(["Signatures", `${cp.signatures.length} (the log's and each cosignature)`]);
    if (size !== undefined && size > cp.size) pairs.push(["Not yet signed", `${number(size - cp.size)} entries`]);
    parts.push(facts(pairs));
    parts.push(
      el(
        "details",
        { open: wasOpen },
        el("summary", {}, "The checkpoint as served (GET /log/checkpoint)"),
        el("pre", { id: "checkpoint-text" }, checkpoint.value),
      ),
    );
  } else {
    parts.push(facts(pairs), problemBox(checkpoint.reason));
  }
  if (health.status === "rejected") parts.push(problemBox(health.reason));
  body.replaceChildren(...parts);
}

function pushCell(push) {
  if (!push) return el("span", { class: "muted" }, "none (pulls on its own)");
  const [kind, text] = OUTCOMES[push.outcome] || ["warn", push.outcome];
  return el(
    "span",
    {},
    badge(kind, text),
    ` size ${number(push.size)} at `,
    time(push.at),
    push.detail ? el("span", { class: "muted" }, ` ${push.detail}`) : null,
  );
}

function showVerifiers(body, result) {
  if (result.status === "rejected") return body.replaceChildren(problemBox(result.reason));
  const w = result.value;
  if (!w.policy) {
    return body.replaceChildren(
      el("p", {}, "This server runs without a policy naming verifiers (ledger serve --policy): nobody cosigns its checkpoints."),
    );
  }
  const quorum = el(
    "p",
    { id: "quorum" },
    `Quorum "${w.policy.quorum}" for the newest checkpoint: `,
    w.policy.quorum_met ? badge("ok", "met") : badge("warn", "not met yet"),
  );
  const rows = w.verifiers.map((v) => [
    el("code", {}, v.name),
    v.cosigned_size ? number(v.cosigned_size) : "none yet",
    number(v.lag),
    time(v.cosigned_at),
    pushCell(v.last_push),
  ]);
  body.replaceChildren(
    quorum,
    table("Verifiers", ["Verifier", "Last cosigned size", "Lag (entries)", "Cosigned at", "Last push"], rows, [1, 2]),
    el("p", { class: "muted" }, "Lag: the log's size less the size the verifier last cosigned."),
  );
}

function seconds(value) {
  return value === null || value === undefined ? "—" : `${(value * 1000).toFixed(1)} ms`;
}

function showViews(body, result) {
  if (result.status === "rejected") return body.replaceChildren(problemBox(result.reason));
  const v = result.value;
  body.replaceChildren(
    facts([
      ["Status", v.error ? badge("bad", "failed") : v.behind ? badge("warn", `${number(v.behind)} behind`) : badge("ok", "caught up")],
      ["Position", `${number(v.position)} of ${number(v.store_position)}`],
      ["Events applied", number(v.events_applied)],
      ["Last applied", time(v.applied_at)],
      ["Lag p50 / p99 / max", `${seconds(v.lag.p50_seconds)} / ${seconds(v.lag.p99_seconds)} / ${seconds(v.lag.max_seconds)}`],
      ...(v.error ? [["Error", v.error]] : []),
    ]),
  );
}

function who(actor) {
  if (!actor) return el("span", { class: "muted" }, "—");
  return actor.subject ? `${actor.role} ${actor.subject}` : actor.role;
}

function showAudit(body, result) {
  if (result.status === "rejected") return body.replaceChildren(problemBox(result.reason));
  const lines = [...result.value.items].reverse();
  if (!lines.length) return body.replaceChildren(el("p", {}, "No events yet."));
  const rows = lines.map((line) => [
    number(line.position),
    time(line.timestamp),
    line.type,
    who(line.recorded_by),
    line.recorded_by ? el("code", {}, line.recorded_by.request_id) : "—",
    line.log.index === null ? "not yet" : line.log.signed ? number(line.log.index) : `${number(line.log.index)} (unsigned)`,
  ]);
  body.replaceChildren(
    el("p", { class: "muted" }, `The newest ${lines.length} lines, newest first (GET /audit).`),
    table("Recent audit lines", ["Position", "Time", "Event", "Recorded by", "Request", "Log index"], rows, [0, 5]),
  );
}

function copyable(id, label, command) {
  const code = el("code", { id }, command);
  const said = el("span", { class: "muted", role: "status" });
  const button = el("button", { type: "button", class: "secondary", "aria-describedby": id }, `Copy: ${label}`);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(command);
      said.textContent = "Copied.";
    } catch {
      getSelection().selectAllChildren(code);
      said.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
    }
  });
  return el("div", { class: "command" }, el("pre", {}, code), button, said);
}

function showVerify(body, witnesses) {
  const policy = witnesses.status === "fulfilled" && Boolean(witnesses.value.policy);
  // Built again only when it would change: a refresh never takes the focus
  // from a copy button, or its "Copied." away.
  if (body.dataset.policy === String(policy)) return;
  body.dataset.policy = String(policy);
  const trust = "--policy policy.txt";
  body.replaceChildren(
    el(
      "p",
      {},
      "A full check of every event, every rule, every checkpoint and the views runs offline with ",
      el("code", {}, "ledger verify"),
      " (docs/verification.md), against a tlog-policy you trust: the log's key, the verifiers' keys and their quorum. This server serves the one it works to (",
      el("code", {}, "GET /log/policy"),
      policy ? "" : ": its log key, no verifiers",
      "); it is the server's word, so compare its keys with what the operator and the verifiers gave you:",
    ),
    copyable("policy-fetch", "fetch the server's policy", `curl -s ${location.origin}/log/policy > policy.txt`),
    el("p", {}, "On the machine that holds the store:"),
    copyable("verify-db", "verify the store", `ledger verify --db "$LEDGER_DATABASE_URL" ${trust}`),
    el("p", {}, "Anywhere else, from an audit bundle the operator exports:"),
    copyable("verify-bundle", "verify a bundle", `ledger export --bundle --out audit/ ${trust}\nledger verify --bundle audit/ ${trust}`),
    el(
      "p",
      { class: "muted" },
      "The server does not say where its store is (its URL may hold a password): $LEDGER_DATABASE_URL is the operator's.",
    ),
  );
}

async function refresh(view) {
  const r = await settle({
    health: () => api("/healthz"),
    checkpoint: () => apiText("/log/checkpoint"),
    witnesses: () => api("/witnesses"),
    alarms: () => api("/alarms"),
    views: () => api("/views/status"),
  });
  const position = r.views.status === "fulfilled" ? r.views.value.position : null;
  const after = position === null ? "" : `&after=${Math.max(0, position - AUDIT_LINES)}`;
  const audit = await settle({ audit: () => api(`/audit?limit=${AUDIT_LINES}${after}`) });
  showAlarms(view.bodies.alarms, r.alarms);
  showLog(view.bodies.log, r);
  showVerifiers(view.bodies.verifiers, r.witnesses);
  showViews(view.bodies.views, r.views);
  showAudit(view.bodies.audit, audit.audit);
  showVerify(view.bodies.verify, r.witnesses);
  const failures = [...Object.values(r), audit.audit].filter((x) => x.status === "rejected").length;
  view.status.textContent = `Updated ${new Date().toLocaleTimeString("en-GB")}` + (failures ? ` (${failures} reads failed)` : "");
  app.dataset.refreshed = String(Number(app.dataset.refreshed || 0) + 1);
}

function start() {
  const view = layout();
  let timer = null;
  let running = false;
  let pending = false; // asked for while a refresh ran: one more after it
  const again = async () => {
    clearTimeout(timer);
    if (running) {
      pending = true;
      return;
    }
    running = true;
    try {
      await refresh(view);
    } finally {
      running = false;
      if (pending) {
        pending = false;
        again();
      } else if (document.contains(view.button)) {
        timer = setTimeout(tick, REFRESH_SECONDS * 1000);
      }
    }
  };
  const tick = () => {
    if (document.hidden) timer = setTimeout(tick, REFRESH_SECONDS * 1000);
    else again();
  };
  view.button.addEventListener("click", again);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && document.contains(view.button)) again();
  });
  again();
}

requireKey(app, {
  roles: ["auditor"],
  purpose: "The auditor console needs an auditor key (an admin key works too).",
  onSignedIn: start,
});

// A unit's provenance bundle (GET /units/{unit_id}/provenance), checked in
// this browser against a tlog-policy, trusting nothing the server says --
// what ledger.verify.provenance checks, in the same order:
//
//   the bundle's format; the checkpoint signed by the policy's log key for
//   its origin and cosigned by the policy's quorum (no known witness's
//   cosignature failing); for each event: its record is canonical JSON, is
//   version 1, 2, 3... of this unit, its prev_hash is the SHA-256 of the
//   previous record, its proof is against that checkpoint, and the record's
//   RFC 9162 leaf hash is included in the checkpoint's tree at the proof's
//   index; then the edition ("No. k of N") derived from the proven
//   unit.issued and its tier's proven stock.opened, and compared with the
//   bundle's claim. Holders, prices and channels are read off the checked
//   records only.
//
// verifyBundle never throws for a bad bundle or policy: it returns every
// check {check, where, ok, detail}, and the verdict. `where` is where a
// check belongs ("bundle", "policy", "checkpoint", "event 3", "stock",
// "edition"), the first failing one is what ledger verify would name.

import {
  TlogError,
  b64encode,
  bytesOf,
  hex,
  leafHash,
  parseCheckpoint,
  parseNote,
  parseTlogProof,
  sha256,
  verifyInclusion,
} from "./c2sp.js";
import { checkCheckpoint, describeQuorum, parsePolicy } from "./policy.js";

export { parsePolicy, describeQuorum, checkCheckpoint } from "./policy.js";
export {
  b64decode,
  b64encode,
  hasEd25519,
  leafHash,
  parseNote,
  parseCheckpoint,
  parseTlogProof,
  parseVkey,
  rootFromInclusion,
  verifyInclusion,
} from "./c2sp.js";

export const FORMAT = "ledger.provenance/v1";
const ZERO_HASH = "0".repeat(64);
// docs/format.md section 4: ids are UUIDv5 under this namespace.
const NAMESPACE = "6f1c2a4e-58b3-5d7e-9a0c-3b8e4f2d1a60";

/** What a passing check establishes, and what no check here can. */
export const VERIFIED = [
  "The checkpoint is signed by the log key the policy names for its origin.",
  "The checkpoint is cosigned by enough of the policy's verifiers to meet its quorum, " +
    "and no cosignature from a verifier the policy names fails.",
  "Each event's record is canonical JSON, is the next version of this unit, and links " +
    "to the previous record by its SHA-256 (prev_hash).",
  "Each record's leaf hash, SHA-256(0x00 || record), is in the checkpoint's tree at " +
    "its log index (RFC 9162 inclusion proof).",
  "The serial and edition size (No. k of N) come from the proven unit.issued and its " +
    "tier's proven stock.opened.",
];
export const NOT_VERIFIED = [
  "The business rules (supply and caps, who may resell, royalties and splits, actors' " +
    "signatures): only ledger verify over the whole log checks those.",
  "That the history is complete after the checkpoint: events not yet under it, or left " +
    "off the end of the bundle, cannot be seen here.",
  "That the log never showed anyone a different tree (a split view): that is what the " +
    "verifiers' cosignatures and ledger verify over time are for.",
  "The policy itself: a policy pinned by the page is the server's word; paste your own " +
    "to trust only the keys you chose.",
  "That timestamps are true: they are what the records and cosignatures say.",
];

/** Python's str() of a JSON value, as ids and holders are derived from it. */
function pyStr(value) {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** UUIDv5 of `kind/part/part...` (docs/format.md section 4). */
export async function deriveId(kind, ...parts) {
  const ns = Uint8Array.from(NAMESPACE.replaceAll("-", "").match(/../g), (h) => parseInt(h, 16));
  const name = bytesOf([kind, ...parts.map(pyStr)].join("/"));
  const data = new Uint8Array(ns.length + name.length);
  data.set(ns);
  data.set(name, ns.length);
  const h = hex(new Uint8Array(await crypto.subtle.digest("SHA-1", data)));
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Canonical JSON (docs/format.md section 1): sorted keys, no spaces. */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Why the parsed value holds what section 1 forbids (a non-integer or
 *  unsafe number, a non-ASCII key, a lone surrogate), or null. */
function unsafeValue(value) {
  const stack = [value];
  while (stack.length) {
    const item = stack.pop();
    if (typeof item === "number") {
      if (!Number.isSafeInteger(item)) return "a number that is not a safe integer";
    } else if (typeof item === "string") {
      if (!item.isWellFormed()) return "a string that is not valid Unicode";
    } else if (Array.isArray(item)) {
      stack.push(...item);
    } else if (item !== null && typeof item === "object") {
      for (const [key, inner] of Object.entries(item)) {
        if (!/^[\x00-\x7f]*$/.test(key) || !key.isWellFormed()) return "a non-ASCII key";
        stack.push(inner);
      }
    }
  }
  return null;
}

/** The record parsed, or a TlogError saying why it is not canonical JSON. */
function parseRecord(record) {
  let value;
  try {
    value = JSON.parse(record);
  } catch {
    throw new TlogError("the record is not JSON");
  }
  const unsafe = unsafeValue(value);
  if (unsafe || canonical(value) !== record || !isObject(value)) {
    throw new TlogError(`the record is not canonical JSON${unsafe ? ` (${unsafe})` : ""}`);
  }
  return value;
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** One event (or the "stock" event): canonical, the expected version of
 *  `aggregateId`, chained to `previous`, in the log under `checkpoint`.
 *  Returns {parsed, index, leaf}; throws TlogError naming what failed. */
async function provenEvent(item, record, aggregateId, previous, version, checkpoint) {
  if (!isObject(item)) throw new TlogError("not an object with a record and a proof");
  if (typeof record !== "string") throw new TlogError("the record is not a string");
  const parsed = parseRecord(record);
  const proof = parseTlogProof(typeof item.proof === "string" ? item.proof : pyStr(item.proof));
  if (parsed.aggregate_id !== aggregateId || parsed.version !== version) {
    throw new TlogError(`not version ${version} of ${aggregateId}`);
  }
  if (parsed.prev_hash !== previous) {
    throw new TlogError(
      "prev_hash does not link to the previous event (history incomplete or altered)",
    );
  }
  if (checkpoint === null) throw new TlogError("no checkpoint to prove it against");
  if (proof.note.text !== checkpoint.body) {
    throw new TlogError("proven against another checkpoint");
  }
  const leaf = await leafHash(bytesOf(record));
  try {
    await verifyInclusion(leaf, proof.index, checkpoint.size, proof.inclusion, checkpoint.root);
  } catch (error) {
    throw new TlogError(`not in the log: ${error.message}`);
  }
  return { parsed, index: proof.index, leaf };
}

function holderAfter(parsed, holder) {
  const payload = isObject(parsed.payload) ? parsed.payload : {};
  switch (parsed.type) {
    case "unit.issued":
    case "unit.reissued":
      return pyStr(payload.holder);
    case "unit.resold":
      return pyStr(payload.buyer);
    case "unit.transferred":
      return pyStr(payload.recipient);
    case "unit.refunded":
      return payload.returned_to === undefined || payload.returned_to === null
        ? null
        : pyStr(payload.returned_to);
    default:
      return holder;
  }
}

class Report {
  constructor() {
    this.checks = [];
  }

  add(check, where, ok, detail) {
    this.checks.push({ check, where, ok, detail });
    return ok;
  }

  /** Run `fn`; a TlogError (or any error) becomes a failed check. */
  async run(check, where, fn, passed) {
    try {
      const value = await fn();
      this.add(check, where, true, typeof passed === "function" ? passed(value) : passed || "");
      return value;
    } catch (error) {
      this.add(check, where, false, error.message || String(error));
      return undefined;
    }
  }
}

async function checkpointChecks(report, bundle, policyText) {
  const policy = await report.run("policy", "policy", () => parsePolicy(policyText), (p) =>
    `log keys: ${p.logs.map((v) => `${v.name}+${hex(v.keyId)}`).join(", ") || "none"}; ` +
    `quorum: ${describeQuorum(p)}`,
  );
  if (!policy) return { checked: null, policy: null };
  const checked = await report.run(
    "log signature on the checkpoint",
    "checkpoint",
    () => {
      if (typeof bundle.checkpoint !== "string") throw new TlogError("no checkpoint");
      return checkCheckpoint(policy, bundle.checkpoint);
    },
    (c) =>
      `${c.checkpoint.origin}, tree size ${c.checkpoint.size}, signed by ` +
      c.logs.map((v) => `${v.name}+${hex(v.keyId)}`).join(", "),
  );
  if (!checked) return { checked: null, policy };
  const forged = [...checked.invalid].map(([name, why]) => `${name}: ${why}`);
  const ignored = checked.ignored.length ? `; ignored (not in the policy): ${checked.ignored.join(", ")}` : "";
  report.add(
    "cosignatures meet the policy's quorum",
    "checkpoint",
    checked.quorumMet,
    `cosigned by ${checked.cosigners.join(", ") || "no verifier"}; quorum: ` +
      `${describeQuorum(policy)}${ignored}`,
  );
  report.add(
    "no forged cosignature",
    "checkpoint",
    forged.length === 0,
    forged.length ? forged.join("; ") : "every cosignature from a named verifier verifies",
  );
  return { checked, policy };
}

async function eventChecks(report, bundle, checkpoint) {
  const history = [];
  let previous = ZERO_HASH;
  let holder = null;
  let first = null;
  for (const [i, item] of bundle.events.entries()) {
    const number = i + 1;
    const record = isObject(item) ? item.record ?? "" : "";
    const proven = await report.run(
      `event ${number}: canonical, chained, in the log`,
      `event ${number}`,
      () => provenEvent(item, record, String(bundle.unit_id), previous, number, checkpoint),
      (p) =>
        `${p.parsed.type}, log index ${p.index}, leaf ${b64encode(p.leaf)}`,
    );
    previous = typeof record === "string" ? hex(await sha256(bytesOf(record))) : "";
    if (!proven) continue;
    first = first || proven.parsed;
    holder = holderAfter(proven.parsed, holder);
    const payload = isObject(proven.parsed.payload) ? proven.parsed.payload : {};
    history.push({
      version: number,
      type: proven.parsed.type ?? null,
      at: proven.parsed.timestamp ?? null,
      holder,
      price: payload.price ?? null,
      channel: payload.channel ?? null,
      leaf_index: Number(proven.index),
      leaf_hash: b64encode(proven.leaf),
      event_hash: previous,
    });
  }
  return { history, first };
}

async function unitOfEdition(first) {
  const payload = first && first.payload;
  if (!first || first.type !== "unit.issued" || !isObject(payload)) {
    throw new TlogError("the unit's first event is no unit.issued");
  }
  const { good_id: good, tier, serial } = payload;
  if (first.aggregate_id !== (await deriveId("unit", good, tier, serial))) {
    throw new TlogError(`the unit's id is not that of serial ${serial} of tier ${pyStr(tier)}`);
  }
  return { good, tier, serial };
}

async function stockOf(bundle, unit, checkpoint) {
  const item = bundle.stock;
  if (!isObject(item)) throw new TlogError("the bundle has no stock event to derive it from");
  const stockId = await deriveId("stock", unit.good, unit.tier);
  const record = item.record ?? "";
  const { parsed } = await provenEvent(item, record, stockId, ZERO_HASH, 1, checkpoint);
  const opened = parsed.payload;
  if (parsed.type !== "stock.opened" || !isObject(opened)) throw new TlogError("not a stock.opened");
  if (opened.good_id !== unit.good || opened.tier !== unit.tier) {
    throw new TlogError("not the stock of the unit's good and tier");
  }
  const cap = opened.lifetime_cap;
  if (!Number.isInteger(cap) || typeof opened.restockable !== "boolean") {
    throw new TlogError("lifetime_cap or restockable is missing or mistyped");
  }
  return { cap, restockable: opened.restockable };
}

async function editionChecks(report, bundle, first, checkpoint) {
  const unit = await report.run(
    "edition: the unit is a serial of its good's tier",
    "edition",
    () => unitOfEdition(first),
    (u) => `serial ${u.serial} of tier ${pyStr(u.tier)}`,
  );
  if (!unit) return null;
  const stock = await report.run(
    "stock: the tier's stock.opened is in the log",
    "stock",
    () => stockOf(bundle, unit, checkpoint),
    (s) => `lifetime cap ${s.cap}, ${s.restockable ? "restockable" : "absolute"}`,
  );
  if (!stock) return null;
  const derived = {
    serial: unit.serial,
    of: stock.cap,
    basis: stock.restockable ? "lifetime-cap" : "quota",
  };
  const claimed = bundle.edition;
  const same = claimed !== undefined && canonical(claimed) === canonical(derived);
  report.add(
    "edition: No. k of N as the proven events say",
    "edition",
    same,
    same
      ? `No. ${derived.serial} of ${derived.of} (${derived.basis})`
      : `the bundle claims ${canonical(claimed ?? null)}, its events say ${canonical(derived)}`,
  );
  return same ? derived : null;
}

/** Check a provenance bundle against a tlog-policy text, in this browser.
 *  Returns {ok, checks, failure, unitId, origin, treeSize, root, cosigners,
 *  timestamps, history, edition, verified, notVerified}. */
export async function verifyBundle(bundle, policyText) {
  const report = new Report();
  const result = {
    ok: false,
    checks: report.checks,
    failure: null,
    unitId: isObject(bundle) ? pyStr(bundle.unit_id) : null,
    origin: null,
    treeSize: null,
    root: null,
    cosigners: [],
    timestamps: {},
    history: [],
    edition: null,
    verified: VERIFIED,
    notVerified: NOT_VERIFIED,
  };
  const shaped =
    report.add("a ledger.provenance/v1 bundle", "bundle", isObject(bundle) && bundle.format === FORMAT,
      `format ${isObject(bundle) ? pyStr(bundle.format) : "missing"}`) &&
    report.add("the bundle has events", "bundle",
      Array.isArray(bundle.events) && bundle.events.length > 0,
      `${Array.isArray(bundle.events) ? bundle.events.length : "no"} events`);
  if (shaped) {
    const { checked } = await checkpointChecks(report, bundle, policyText);
    const checkpoint = checked ? checked.checkpoint : null;
    if (checked) {
      result.origin = checked.checkpoint.origin;
      result.treeSize = Number(checked.checkpoint.size);
      result.root = b64encode(checked.checkpoint.root);
      result.cosigners = checked.cosigners;
      for (const [name, time] of checked.timestamps) result.timestamps[name] = Number(time);
    }
    const { history, first } = await eventChecks(report, bundle, checkpoint);
    result.history = history;
    if (Object.hasOwn(bundle, "stock") || Object.hasOwn(bundle, "edition")) {
      result.edition = await editionChecks(report, bundle, first, checkpoint);
    }
  }
  const failed = report.checks.find((c) => !c.ok);
  result.ok = failed === undefined;
  result.failure = failed ? { where: failed.where, check: failed.check, detail: failed.detail } : null;
  return result;
}

/** What the bundle SAYS, checked for nothing (the page shows it before and
 *  beside the verification): {checkpoint: {origin, size, root, signatures},
 *  edition, good, events: [{version, type, at, holder, seller, price,
 *  channel, index, leaf}], unreadable: number}. */
export async function readBundle(bundle) {
  const view = { checkpoint: null, edition: null, good: null, events: [], unreadable: 0 };
  if (!isObject(bundle)) return view;
  view.edition = isObject(bundle.edition) ? bundle.edition : null;
  try {
    const note = parseNote(String(bundle.checkpoint));
    const body = parseCheckpoint(note.text);
    view.checkpoint = {
      origin: body.origin,
      size: Number(body.size),
      root: b64encode(body.root),
      signatures: note.signatures.map((s) => `${s.name}+${hex(s.keyId)}`),
    };
  } catch {
    view.checkpoint = null;
  }
  let holder = null;
  for (const [i, item] of (Array.isArray(bundle.events) ? bundle.events : []).entries()) {
    try {
      const parsed = JSON.parse(item.record);
      const proof = parseTlogProof(item.proof);
      const payload = isObject(parsed.payload) ? parsed.payload : {};
      holder = holderAfter(parsed, holder);
      if (i === 0) view.good = payload.good_id ?? null;
      view.events.push({
        version: parsed.version,
        type: parsed.type,
        at: parsed.timestamp,
        holder,
        seller: payload.seller ?? payload.giver ?? null,
        price: payload.price ?? null,
        channel:
          payload.channel ??
          (payload.to_channel ? `${payload.from_channel ?? "?"} → ${payload.to_channel}` : null),
        index: Number(proof.index),
        leaf: b64encode(await leafHash(bytesOf(String(item.record)))),
      });
    } catch {
      view.unreadable += 1;
    }
  }
  return view;
}

// C2SP tlog-policy: which log and witnesses to trust, and the quorum --
// the same text `ledger verify --policy` takes, read by the same rules
// (ledger.tlog.policy): fields split on runs of space and tab, `#` lines
// and blank lines skipped, every line ends in a newline, witnesses and
// groups share one namespace, a group names only earlier definitions and
// each name is a member once, 1 <= k <= n, exactly one quorum line.

import {
  KEY_TYPE_COSIGNATURE_V1,
  TlogError,
  equalBytes,
  hex,
  parseCheckpoint,
  parseNote,
  parseVkey,
  verifySignatures,
} from "./c2sp.js";

export const NONE = "none";
const SEPARATORS = /[ \t]+/;
const THRESHOLD = /^(0|[1-9][0-9]*)$/;

/** A malformed policy; the message names the line. */
export class PolicyError extends Error {}

function badChar(text) {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!(c === 9 || (c >= 0x20 && c <= 0x7e) || c >= 0x80)) return i;
  }
  return -1;
}

class Builder {
  constructor() {
    this.logs = [];
    this.witnesses = new Map();
    this.groups = new Map();
    this.memberOf = new Map();
    this.quorum = null;
  }

  define(name, what) {
    if (name === NONE) throw new PolicyError(`${what} name 'none' is predefined`);
    if (this.witnesses.has(name) || this.groups.has(name)) {
      throw new PolicyError(`duplicate name ${JSON.stringify(name)}`);
    }
  }

  addLog(verifier) {
    if (this.logs.some((v) => equalBytes(v.publicKey, verifier.publicKey))) {
      throw new PolicyError(`duplicate log key ${verifier.vkey}`);
    }
    this.logs.push(verifier);
  }

  addWitness(name, verifier) {
    this.define(name, "witness");
    if (verifier.type !== KEY_TYPE_COSIGNATURE_V1) {
      throw new PolicyError(`witness ${name} needs a 0x04 (Ed25519 cosignature/v1) key`);
    }
    for (const other of this.witnesses.values()) {
      if (equalBytes(other.publicKey, verifier.publicKey)) {
        throw new PolicyError(`duplicate witness key ${verifier.vkey}`);
      }
    }
    this.witnesses.set(name, verifier);
  }

  addGroup(name, threshold, members) {
    this.define(name, "group");
    if (!(threshold >= 1 && threshold <= members.length)) {
      throw new PolicyError(
        `group ${name}: threshold ${threshold} is not between 1 and ${members.length}`,
      );
    }
    for (const member of members) {
      if (member === NONE) throw new PolicyError(`group ${name}: 'none' cannot be a member`);
      if (!this.witnesses.has(member) && !this.groups.has(member)) {
        throw new PolicyError(`group ${name}: undefined name ${JSON.stringify(member)}`);
      }
      if (this.memberOf.has(member)) {
        throw new PolicyError(
          `group ${name}: ${member} is already a member of ${this.memberOf.get(member)}`,
        );
      }
      this.memberOf.set(member, name);
    }
    this.groups.set(name, { name, threshold, members });
  }

  setQuorum(name) {
    if (this.quorum !== null) throw new PolicyError("only one quorum line is allowed");
    if (name !== NONE && !this.witnesses.has(name) && !this.groups.has(name)) {
      throw new PolicyError(`quorum: undefined name ${JSON.stringify(name)}`);
    }
    this.quorum = name;
  }
}

function threshold(text, n, group) {
  if (text === "all") return n;
  if (text === "any") return 1;
  if (!THRESHOLD.test(text)) {
    throw new PolicyError(`group ${group}: threshold must be 'all', 'any' or a number`);
  }
  return text.length <= String(n).length ? Number(text) : n + 1;
}

async function vkey(text) {
  try {
    return await parseVkey(text);
  } catch (error) {
    throw new PolicyError(`invalid vkey: ${error.message}`);
  }
}

async function addLine(b, keyword, args) {
  if (keyword === "log") {
    if (args.length < 1 || args.length > 2) throw new PolicyError("expected 'log <vkey> [<url>]'");
    b.addLog(await vkey(args[0]));
  } else if (keyword === "witness") {
    if (args.length < 2 || args.length > 3) {
      throw new PolicyError("expected 'witness <name> <vkey> [<url>]'");
    }
    b.addWitness(args[0], await vkey(args[1]));
  } else if (keyword === "group") {
    if (args.length < 3) throw new PolicyError("expected 'group <name> all|any|<k> <member>...'");
    const members = args.slice(2);
    b.addGroup(args[0], threshold(args[1], members.length, args[0]), members);
  } else if (keyword === "quorum") {
    if (args.length !== 1) throw new PolicyError("expected 'quorum <name>'");
    b.setQuorum(args[0]);
  } else {
    throw new PolicyError(`unknown keyword ${JSON.stringify(keyword)}`);
  }
}

/** Parse a tlog-policy text: {logs, witnesses: Map, groups: Map, quorum}. */
export async function parsePolicy(text) {
  if (typeof text !== "string") throw new PolicyError("a policy is text");
  const lines = text.split("\n");
  if (lines[lines.length - 1]) {
    throw new PolicyError(`line ${lines.length}: the last line does not end in a newline`);
  }
  const b = new Builder();
  for (let n = 0; n < lines.length - 1; n++) {
    const line = lines[n];
    try {
      const at = badChar(line);
      if (at >= 0) throw new PolicyError(`control character at column ${at + 1}`);
      const fields = line.replace(/^[ \t]+|[ \t]+$/g, "").split(SEPARATORS);
      if ((fields.length === 1 && fields[0] === "") || fields[0].startsWith("#")) continue;
      await addLine(b, fields[0], fields.slice(1));
    } catch (error) {
      throw new PolicyError(`line ${n + 1}: ${error.message}`);
    }
  }
  if (b.quorum === null) throw new PolicyError("no quorum line");
  return { logs: b.logs, witnesses: b.witnesses, groups: b.groups, quorum: b.quorum };
}

/** Whether the witnesses named in `cosigners` meet the policy's quorum. */
export function satisfied(policy, cosigners) {
  if (policy.quorum === NONE) return true;
  const signed = new Set(cosigners);
  const witnessed = new Map();
  for (const name of policy.witnesses.keys()) witnessed.set(name, signed.has(name));
  for (const group of policy.groups.values()) {
    const count = group.members.filter((m) => witnessed.get(m)).length;
    witnessed.set(group.name, count >= group.threshold);
  }
  return witnessed.get(policy.quorum) === true;
}

/** The quorum in words, for the page: "2 of w1, w2, w3". */
export function describeQuorum(policy) {
  const say = (name) => {
    if (name === NONE) return "none (no cosignature needed)";
    const group = policy.groups.get(name);
    if (!group) return name;
    return `${group.threshold} of ${group.members.map(say).join(", ")}`;
  };
  return say(policy.quorum);
}

/** A signed checkpoint against a parsed policy, as `ledger verify` checks it:
 *  a valid signature from a policy log key named after the origin (a failing
 *  one rejects the note), every known witness's cosignature verified.
 *  Throws TlogError when the log's signature is missing or bad; returns
 *  {checkpoint, note, logs, cosigners, timestamps, invalid, quorumMet, ignored}. */
export async function checkCheckpoint(policy, signedText) {
  const note = parseNote(signedText);
  const checkpoint = parseCheckpoint(note.text);
  const logs = policy.logs.filter((v) => v.name === checkpoint.origin);
  if (!logs.length) {
    throw new TlogError(`no trusted log key for origin ${JSON.stringify(checkpoint.origin)}`);
  }
  const names = new Map();
  for (const [name, v] of policy.witnesses) names.set(v, name);
  const signedLogs = [];
  const timestamps = new Map();
  const invalid = new Map();
  const ignored = [];
  for (const check of await verifySignatures(note, [...logs, ...policy.witnesses.values()])) {
    const v = check.verifier;
    if (v === null) {
      ignored.push(`${check.signature.name}+${hex(check.signature.keyId)}`);
      continue;
    }
    if (logs.includes(v)) {
      if (!check.valid) throw new TlogError(check.error || "invalid log signature");
      if (!signedLogs.includes(v)) signedLogs.push(v);
    }
    const name = names.get(v);
    if (name === undefined) continue;
    if (check.valid && check.timestamp !== undefined) {
      const before = timestamps.get(name);
      timestamps.set(name, before !== undefined && before > check.timestamp ? before : check.timestamp);
    } else if (!invalid.has(name)) {
      invalid.set(name, check.error || "invalid cosignature");
    }
  }
  if (!signedLogs.length) {
    throw new TlogError(
      `checkpoint for ${JSON.stringify(checkpoint.origin)} has no signature from a trusted log key`,
    );
  }
  const cosigners = [...timestamps.keys()].sort();
  return {
    checkpoint,
    note,
    logs: signedLogs,
    cosigners,
    timestamps,
    invalid,
    ignored,
    quorumMet: satisfied(policy, cosigners),
  };
}

// C2SP transparency-log formats, checked in the browser with WebCrypto.
//
// Pure functions, no DOM, no server call: signed notes (c2sp.org/signed-note),
// checkpoints (tlog-checkpoint), Ed25519 cosignatures (tlog-cosignature),
// .tlog-proof files (tlog-proof), RFC 9162 leaf hashes and inclusion proofs
// (SHA-256, BigInt arithmetic), and tlog-policy with its quorum. Written
// from the specs as ledger.tlog reads them (the same strictness: canonical
// base64, decimals without leading zeros, sizes up to 2^63-1), so the
// browser and `ledger verify` accept and refuse the same texts
// (tests/browser/test_tlog_js.py runs the same vectors through both).
// The provenance bundle's own checks are in provenance.js.

export const KEY_TYPE_ED25519 = 0x01;
export const KEY_TYPE_COSIGNATURE_V1 = 0x04;
export const TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1";
const MAX_SIGNATURES = 100;
const MAX_INCLUSION_LINES = 64;
const MAX_INT63 = (1n << 63n) - 1n;
const SIG_PREFIX = "\u2014 "; // EM DASH, SPACE
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DECIMAL = /^(0|[1-9][0-9]*)$/;
const HEX8 = /^[0-9a-f]{8}$/;
// Python's str.isspace() (the key-name rule as ledger.tlog applies it).
const PY_SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

/** A text that breaks a C2SP format, or a signature that fails. */
export class TlogError extends Error {}

const utf8 = new TextEncoder();

export function bytesOf(text) {
  return utf8.encode(text);
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function equalBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function b64encode(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** Canonical standard base64 (padding present, unused bits zero), or TlogError. */
export function b64decode(text, what) {
  if (text.length % 4 !== 0 || !B64.test(text)) {
    throw new TlogError(`${what} is not valid base64`);
  }
  let raw;
  try {
    raw = atob(text);
  } catch {
    throw new TlogError(`${what} is not valid base64`);
  }
  const bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  if (b64encode(bytes) !== text) throw new TlogError(`${what} is not canonical base64`);
  return bytes;
}

function parseDecimal(text, what) {
  if (!DECIMAL.test(text)) {
    throw new TlogError(`${what} must be a decimal number without leading zeros`);
  }
  const value = BigInt(text);
  if (value > MAX_INT63) throw new TlogError(`${what} ${text} exceeds 2^63-1`);
  return value;
}

function checkNoteChars(text, what) {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) < 0x20 && text[i] !== "\n") {
      throw new TlogError(`${what} contains a control character at offset ${i}`);
    }
  }
  if (!text.isWellFormed()) throw new TlogError(`${what} is not valid UTF-8`);
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

// -- keys ----------------------------------------------------------------------

export function validKeyName(name) {
  if (typeof name !== "string" || !name || name.includes("+")) return false;
  for (const ch of name) if (ch < " " || PY_SPACE.test(ch)) return false;
  return name.isWellFormed();
}

/** The 4-byte key ID: SHA-256(name || 0x0A || type || public key)[:4]. */
export async function keyId(name, type, publicKey) {
  const digest = await sha256(concat(bytesOf(name + "\n"), Uint8Array.of(type), publicKey));
  return digest.slice(0, 4);
}

/** A verifier key `<name>+<hex key ID>+<base64(type || 32-byte key)>` (Ed25519). */
export async function parseVkey(text) {
  const plus = text.indexOf("+");
  const plus2 = text.indexOf("+", plus + 1);
  if (plus < 0 || plus2 < 0) throw new TlogError("a vkey is <name>+<hex key ID>+<base64 key>");
  const name = text.slice(0, plus);
  const hexId = text.slice(plus + 1, plus2);
  if (!validKeyName(name)) throw new TlogError(`invalid key name ${JSON.stringify(name)}`);
  if (!HEX8.test(hexId)) throw new TlogError("a vkey's key ID is 8 lowercase hex digits");
  const material = b64decode(text.slice(plus2 + 1), "verifier key");
  const type = material[0];
  if (type !== KEY_TYPE_ED25519 && type !== KEY_TYPE_COSIGNATURE_V1) {
    throw new TlogError(`unsupported signature type ${type} (0x01 and 0x04 are)`);
  }
  const publicKey = material.slice(1);
  if (publicKey.length !== 32) throw new TlogError("an Ed25519 public key is 32 bytes");
  const id = await keyId(name, type, publicKey);
  if (hex(id) !== hexId) {
    throw new TlogError(`vkey ${name}: key ID ${hexId} does not match the key (${hex(id)})`);
  }
  return { name, type, publicKey, keyId: id, vkey: text };
}

/** Raw Ed25519 verification with WebCrypto; a key WebCrypto refuses verifies
 *  nothing. A browser without Ed25519 throws (it must not read as a forgery). */
export async function ed25519Verify(publicKey, signature, message) {
  if (signature.length !== 64) return false;
  let key;
  try {
    key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  } catch (error) {
    if (error && error.name === "NotSupportedError") throw new TlogError(NO_ED25519);
    return false;
  }
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
}

const NO_ED25519 =
  "this browser's WebCrypto has no Ed25519 (Chrome 137, Firefox 129, Safari 17 and later " +
  "have it): it cannot check signatures";

/** Whether this browser can check Ed25519 signatures with WebCrypto. */
export async function hasEd25519() {
  if (!globalThis.crypto || !crypto.subtle) return false;
  try {
    await ed25519Verify(new Uint8Array(32).fill(1), new Uint8Array(64), new Uint8Array(0));
    return true;
  } catch {
    return false;
  }
}

// -- signed notes --------------------------------------------------------------

/** One signature line: `— <name> <base64(key ID || signature)>`. */
export function parseSignatureLine(line) {
  if (!line.startsWith(SIG_PREFIX)) {
    throw new TlogError("a signature line starts with an EM DASH (U+2014) and a space");
  }
  const rest = line.slice(SIG_PREFIX.length);
  const space = rest.indexOf(" ");
  if (space < 0 || space === rest.length - 1) {
    throw new TlogError("a signature line is '— <name> <base64>'");
  }
  const name = rest.slice(0, space);
  if (!validKeyName(name)) throw new TlogError("a signature line has an invalid key name");
  const raw = b64decode(rest.slice(space + 1), `signature of ${JSON.stringify(name)}`);
  if (raw.length <= 4) throw new TlogError(`signature of ${JSON.stringify(name)} is too short`);
  return { name, keyId: raw.slice(0, 4), signature: raw.slice(4) };
}

/** A signed note: the text up to the LAST blank line, then signature lines. */
export function parseNote(data) {
  if (typeof data !== "string") throw new TlogError("a note is text");
  checkNoteChars(data, "note");
  const split = data.lastIndexOf("\n\n");
  if (split < 0) throw new TlogError("no blank line separates the text from the signatures");
  const text = data.slice(0, split + 1);
  const block = data.slice(split + 2);
  if (!block) throw new TlogError("a signed note needs at least one signature line");
  if (!block.endsWith("\n")) throw new TlogError("the last signature line must end in a newline");
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) throw new TlogError(`more than ${MAX_SIGNATURES} signatures`);
  return { text, signatures: lines.map(parseSignatureLine) };
}

/** A checkpoint body: origin, tree size, base64 root hash, extension lines. */
export function parseCheckpoint(body) {
  if (!body.endsWith("\n")) throw new TlogError("a checkpoint body ends in a newline");
  checkNoteChars(body, "checkpoint");
  const lines = body.slice(0, -1).split("\n");
  if (lines.length < 3) throw new TlogError("a checkpoint needs origin, size and root lines");
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!origin) throw new TlogError("the checkpoint's origin line is empty");
  const size = parseDecimal(sizeText, "tree size");
  const root = b64decode(rootText, "root hash");
  if (root.length !== 32) throw new TlogError(`the root hash is ${root.length} bytes, not 32`);
  if (extensions.some((line) => !line)) throw new TlogError("extension lines must be non-empty");
  return { origin, size, root, extensions, body };
}

/** `cosignature/v1\ntime <t>\n` followed by the checkpoint body. */
export function cosignatureMessage(body, timestamp) {
  return bytesOf(`cosignature/v1\ntime ${timestamp}\n${body}`);
}

/** A cosignature (type 0x04): 8-byte big-endian time || Ed25519 signature.
 *  Returns its time (BigInt) or throws TlogError. */
export async function verifyCosignature(body, signature, verifier) {
  if (signature.length !== 72) {
    throw new TlogError(`cosignature from ${verifier.name} is ${signature.length} bytes, not 72`);
  }
  const view = new DataView(signature.buffer, signature.byteOffset, 8);
  const time = view.getBigUint64(0, false);
  if (time > MAX_INT63) throw new TlogError(`cosignature from ${verifier.name}: time > 2^63-1`);
  const message = cosignatureMessage(body, time);
  if (!(await ed25519Verify(verifier.publicKey, signature.slice(8), message))) {
    throw new TlogError(`invalid cosignature for key ${verifier.name}+${hex(verifier.keyId)}`);
  }
  return time;
}

/** Each signature line against the known verifiers: unknown keys are
 *  ignored ({verifier: null}); known ones verified (0x01: the note text,
 *  0x04: a timestamped cosignature). */
export async function verifySignatures(note, verifiers) {
  const known = new Map();
  for (const v of verifiers) {
    const at = `${v.name}\n${hex(v.keyId)}`;
    const other = known.get(at);
    if (other && !(other.type === v.type && equalBytes(other.publicKey, v.publicKey))) {
      throw new TlogError(`ambiguous key ${v.name}+${hex(v.keyId)}`);
    }
    known.set(at, other || v);
  }
  const checks = [];
  for (const sig of note.signatures) {
    const v = known.get(`${sig.name}\n${hex(sig.keyId)}`) || null;
    if (v === null) {
      checks.push({ signature: sig, verifier: null, valid: false });
    } else if (v.type === KEY_TYPE_COSIGNATURE_V1) {
      try {
        const time = await verifyCosignature(note.text, sig.signature, v);
        checks.push({ signature: sig, verifier: v, valid: true, timestamp: time });
      } catch (error) {
        checks.push({ signature: sig, verifier: v, valid: false, error: error.message });
      }
    } else if (await ed25519Verify(v.publicKey, sig.signature, bytesOf(note.text))) {
      checks.push({ signature: sig, verifier: v, valid: true });
    } else {
      checks.push({
        signature: sig,
        verifier: v,
        valid: false,
        error: `invalid signature for key ${v.name}+${hex(v.keyId)}`,
      });
    }
  }
  return checks;
}

// -- tlog-proof ----------------------------------------------------------------

function cutLine(rest, what) {
  const at = rest.indexOf("\n");
  if (at < 0) throw new TlogError(`${what}: missing newline`);
  return [rest.slice(0, at), rest.slice(at + 1)];
}

/** A .tlog-proof file: header, optional `extra`, `index N`, hashes leaf to
 *  root, blank line, the signed checkpoint (nothing verified here). */
export function parseTlogProof(data) {
  if (typeof data !== "string" || !data.isWellFormed()) throw new TlogError("a proof is text");
  let [line, rest] = cutLine(data, "tlog-proof header");
  if (line !== TLOG_PROOF_HEADER) throw new TlogError(`the first line must be ${TLOG_PROOF_HEADER}`);
  [line, rest] = cutLine(rest, "tlog-proof index line");
  let extra = null;
  if (line.startsWith("extra ")) {
    extra = b64decode(line.slice(6), "extra data");
    [line, rest] = cutLine(rest, "tlog-proof index line");
  }
  if (!line.startsWith("index ")) throw new TlogError("expected 'index <n>'");
  const index = parseDecimal(line.slice(6), "index");
  const hashLines = [];
  for (;;) {
    [line, rest] = cutLine(rest, "inclusion proof (no blank line)");
    if (!line) break;
    hashLines.push(line);
    if (hashLines.length > MAX_INCLUSION_LINES) {
      throw new TlogError(`more than ${MAX_INCLUSION_LINES} inclusion proof lines`);
    }
  }
  const inclusion = hashLines.map((text, i) => {
    const h = b64decode(text, `inclusion proof hash ${i + 1}`);
    if (h.length !== 32) throw new TlogError(`inclusion proof hash ${i + 1} is not 32 bytes`);
    return h;
  });
  const note = parseNote(rest);
  const checkpoint = parseCheckpoint(note.text);
  if (index >= checkpoint.size) {
    throw new TlogError(`index ${index} is not below the tree size ${checkpoint.size}`);
  }
  return { index, extra, inclusion, checkpointText: rest, note, checkpoint };
}

// -- RFC 9162 Merkle tree --------------------------------------------------------

/** SHA-256(0x00 || data): a leaf's hash. */
export function leafHash(data) {
  return sha256(concat(Uint8Array.of(0), data));
}

function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

/** The root an inclusion proof gives leaf hash `leaf` at `index` of a tree
 *  of `size` (RFC 9162 2.1.3.2, BigInt); TlogError when the path cannot be
 *  one for that index and size (an empty path at size > 1 is too short). */
export async function rootFromInclusion(leaf, index, size, proof) {
  index = BigInt(index);
  size = BigInt(size);
  if (index < 0n || size < 0n || index > MAX_INT63 || size > MAX_INT63) {
    throw new TlogError("index and size are between 0 and 2^63-1");
  }
  if (index >= size) throw new TlogError(`leaf index ${index} is not in a tree of size ${size}`);
  if (leaf.length !== 32 || proof.some((h) => h.length !== 32)) {
    throw new TlogError("hashes are 32 bytes");
  }
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) throw new TlogError(`inclusion proof is too long (${proof.length} hashes)`);
    if (fn & 1n || fn === sn) {
      r = await nodeHash(p, r);
      while (fn !== 0n && !(fn & 1n)) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new TlogError(`inclusion proof is too short (${proof.length} hashes)`);
  return r;
}

/** Throws TlogError unless `leaf` is leaf `index` of the tree (size, root). */
export async function verifyInclusion(leaf, index, size, proof, root) {
  const computed = await rootFromInclusion(leaf, index, size, proof);
  if (!equalBytes(computed, root)) {
    throw new TlogError(
      `the inclusion proof for leaf ${index} of ${size} gives root ${b64encode(computed)}, ` +
        `not the checkpoint's ${b64encode(root)}`,
    );
  }
}

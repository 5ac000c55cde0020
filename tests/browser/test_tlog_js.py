"""The browser's provenance verifier (static/js/tlog.js) against the Python
one: every case of tests/golden/provenance/vectors.json through both, in
Debian's Chromium. Same verdict, same place of failure, and for a valid
bundle the same history, cosigners and edition (tests/unit/test_provenance_vectors.py
holds the Python side to the file)."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import ledger
from tests.golden.provenance.generate import expected, mutations

STATIC = Path(ledger.__file__).resolve().parent / "web" / "static"
VECTORS = Path(__file__).resolve().parents[1] / "golden" / "provenance" / "vectors.json"
CASES: list[dict[str, Any]] = json.loads(VECTORS.read_text())

RUN_ALL = """async ({cases}) => {
  const tlog = await import("/js/tlog.js");
  const out = [];
  for (const c of cases) {
    const started = performance.now();
    const r = await tlog.verifyBundle(c.bundle, c.policy);
    out.push({
      ok: r.ok, where: r.failure && r.failure.where, detail: r.failure && r.failure.detail,
      history: r.history, edition: r.edition, cosigners: r.cosigners, treeSize: r.treeSize,
      checks: r.checks.length, ms: performance.now() - started,
    });
  }
  return out;
}"""


BLANK = (
    b'<!doctype html><html lang="en"><link rel="icon" href="data:,"><title>tlog.js</title></html>'
)


class _Static(SimpleHTTPRequestHandler):
    """The static files, and a blank page to import them from."""

    def do_GET(self) -> None:
        if self.path != "/":
            super().do_GET()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(BLANK)))
        self.end_headers()
        self.wfile.write(BLANK)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def static_base() -> Iterator[str]:
    """The package's static directory on a loopback port (a secure context)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Static, directory=STATIC))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _python(case: dict[str, Any]) -> dict[str, Any]:
    return expected(case["bundle"], case["policy"])


def test_the_browser_and_python_verifiers_agree_on_every_vector(
    visit: Any, static_base: str
) -> None:
    page = visit.page
    page.goto(f"{static_base}/")
    assert page.evaluate("() => window.isSecureContext && !!crypto.subtle")
    results = page.evaluate(RUN_ALL, {"cases": CASES})
    assert len(results) == len(CASES) >= 20
    for case, browser in zip(CASES, results, strict=True):
        python = _python(case)
        assert python["ok"] == case["expected"]["ok"], case["name"]
        assert browser["ok"] == python["ok"], (case["name"], browser["detail"])
        if python["ok"]:
            history = [{k: v for k, v in h.items() if k != "leaf_hash"} for h in browser["history"]]
            assert history == python["history"], case["name"]
            assert browser["edition"] == python["edition"], case["name"]
            assert browser["cosigners"] == python["cosigners"], case["name"]
            assert browser["treeSize"] == python["tree_size"], case["name"]
        else:
            assert browser["where"] == python["where"], (case["name"], browser["detail"])
    print(f"tlog.js: slowest bundle checked in {max(r['ms'] for r in results):.1f} ms")


def test_each_leaf_hash_the_browser_shows_is_the_records(visit: Any, static_base: str) -> None:
    """The leaf hashes the explorer shows are SHA-256(0x00 || record), as
    ledger.tlog.merkle computes them."""
    import base64

    from ledger.tlog import merkle

    valid = next(c for c in CASES if c["name"] == "valid")
    page = visit.page
    page.goto(f"{static_base}/")
    shown = page.evaluate(
        """async ({bundle, policy}) => {
          const tlog = await import("/js/tlog.js");
          return (await tlog.verifyBundle(bundle, policy)).history.map((h) => h.leaf_hash);
        }""",
        {"bundle": valid["bundle"], "policy": valid["policy"]},
    )
    records = [e["record"].encode() for e in valid["bundle"]["events"]]
    assert shown == [base64.b64encode(merkle.leaf_hash(r)).decode() for r in records]


def test_inclusion_paths_agree_with_rfc_9162_vectors(visit: Any, static_base: str) -> None:
    """rootFromInclusion on every leaf of trees of 1 to 13 leaves, with the
    paths ledger.tlog.merkle makes; an empty path fails at size > 1."""
    import base64

    from ledger.tlog import merkle

    leaves = [merkle.leaf_hash(bytes([i])) for i in range(13)]
    frontier, nodes = merkle.CompactRange(), merkle.MemorySubtrees()
    roots = {}
    for leaf in leaves:
        nodes.extend(frontier.append(leaf))
        roots[frontier.size] = frontier.root()
    cases = [
        {
            "leaf": base64.b64encode(leaves[index]).decode(),
            "index": index,
            "size": size,
            "path": [
                base64.b64encode(h).decode() for h in merkle.inclusion_proof(index, size, nodes)
            ],
            "root": base64.b64encode(roots[size]).decode(),
        }
        for size in (1, 2, 3, 7, 8, 13)
        for index in range(size)
    ]
    page = visit.page
    page.goto(f"{static_base}/")
    verdicts = page.evaluate(
        """async (cases) => {
          const t = await import("/js/tlog.js");
          const b = (s) => t.b64decode(s, "hash");
          const out = [];
          for (const c of cases) {
            const root = await t.rootFromInclusion(b(c.leaf), c.index, c.size, c.path.map(b));
            let shortFails = false;
            if (c.size > 1) {
              try { await t.rootFromInclusion(b(c.leaf), c.index, c.size, []); }
              catch { shortFails = true; }
            } else { shortFails = true; }
            out.push(t.b64encode(root) === c.root && shortFails);
          }
          return out;
        }""",
        cases,
    )
    assert verdicts == [True] * len(cases)


def test_the_verifiers_agree_on_seeded_mutations(visit: Any, static_base: str) -> None:
    """One character of a record, a proof or the checkpoint changed, 300
    times over: both verifiers accept the same ones and refuse the others
    at the same place."""
    valid = next(c for c in CASES if c["name"] == "valid, all three witnesses")
    made = mutations(valid["bundle"], 300, seed=16)
    cases = [{"bundle": b, "policy": valid["policy"]} for _, b in made]
    page = visit.page
    page.goto(f"{static_base}/")
    results = page.evaluate(RUN_ALL, {"cases": cases})
    disagree = []
    for (name, bundle), browser in zip(made, results, strict=True):
        python = expected(bundle, valid["policy"])
        if browser["ok"] != python["ok"] or (
            not python["ok"] and browser["where"] != python["where"]
        ):
            disagree.append((name, python, browser["where"], browser["detail"]))
    assert disagree == []
    refused = sum(not r["ok"] for r in results)
    assert refused > 250, f"only {refused} of 300 mutations refused"


def _policies() -> list[str]:
    """Policy texts the two parsers must accept or refuse alike."""
    from ledger.tlog.keys import Signer

    log = Signer.from_seed("example.com/log", bytes([1]) * 32).verifier_key()
    w = [Signer.from_seed(f"w{i}", bytes([i + 2]) * 32, 0x04).verifier_key() for i in range(3)]
    note_key = Signer.from_seed("w9", bytes([9]) * 32).verifier_key()
    wit = "".join(f"witness w{i} {k}\n" for i, k in enumerate(w))
    bad_id = log.split("+")[0] + "+00000000+" + log.split("+")[2]
    return [
        f"log {log}\nquorum none\n",
        f"log {log} https://log.example\n{wit}group g 2 w0 w1 w2\nquorum g\n",
        f"# comment\n\n  log\t{log}  \n{wit}group g any w0 w1\ngroup h all g w2\nquorum h\n",
        f"log {log}\n{wit}quorum w1\n",
        f"log {log}\nquorum none",  # no final newline
        f"log {log}\n",  # no quorum
        f"log {log}\nquorum none\nquorum none\n",
        f"log {log}\n{wit}group g 0 w0 w1\nquorum g\n",
        f"log {log}\n{wit}group g 3 w0 w1\nquorum g\n",
        f"log {log}\n{wit}group g 02 w0 w1\nquorum g\n",
        f"log {log}\n{wit}group g 99999999999999999999 w0 w1\nquorum g\n",
        f"log {log}\n{wit}group g 1 w0 w0\nquorum g\n",
        f"log {log}\n{wit}group g 1 w0\ngroup h 1 w0\nquorum h\n",
        f"log {log}\n{wit}group g 1 h\ngroup h 1 w0\nquorum g\n",
        f"log {log}\n{wit}group none 1 w0\nquorum none\n",
        f"log {log}\n{wit}group g 1 none\nquorum g\n",
        f"log {log}\nwitness w0 {w[0]}\nwitness w0 {w[1]}\nquorum w0\n",
        f"log {log}\nwitness a {w[0]}\nwitness b {w[0]}\nquorum a\n",
        f"log {log}\nlog {log}\nquorum none\n",
        f"log {log}\nwitness w9 {note_key}\nquorum w9\n",
        f"log {bad_id}\nquorum none\n",
        f"log {log}\nquorum w7\n",
        f"log {log}\nquorum none #trailing\n",
        f"log {log}\nmirror x\nquorum none\n",
        f"log {log}\nquorum\tnone\x01\n",
        f"log {log} a b\nquorum none\n",
        f"log {log}\nwitness w0\nquorum none\n",
        "quorum none\n",
        "",
        f"log {log}\r\nquorum none\r\n",
        f"log {log}\nwitness w0 {w[0]} https://w0.example\n   # indented comment\nquorum w0\n",
    ]


def test_the_policy_parsers_accept_and_refuse_alike(visit: Any, static_base: str) -> None:
    from ledger.tlog.policy import PolicyError, parse_policy

    texts = _policies()
    python = []
    for text in texts:
        try:
            parse_policy(text)
        except PolicyError:
            python.append(False)
        else:
            python.append(True)
    page = visit.page
    page.goto(f"{static_base}/")
    browser = page.evaluate(
        """async (texts) => {
          const t = await import("/js/tlog.js");
          const out = [];
          for (const text of texts) {
            try { await t.parsePolicy(text); out.push(true); } catch { out.push(false); }
          }
          return out;
        }""",
        texts,
    )
    assert list(zip(texts, browser, strict=True)) == list(zip(texts, python, strict=True))
    assert 5 <= sum(python) < len(texts)


def test_c2sp_js_reads_the_published_vectors(visit: Any, static_base: str) -> None:
    """The external C2SP / Go / transparency-dev vectors ledger.tlog is
    tested with (tests/golden/c2sp): vkeys and their key ids, bad vkeys
    refused, real signed notes (sum.golang.org's among them) verified with
    WebCrypto, unknown signers ignored, cosignature messages byte for byte."""
    c2sp = json.loads((VECTORS.parents[1] / "c2sp" / "vectors.json").read_text())
    for message in c2sp["cosignature_messages"]:  # beyond 2^53: a JS number would round it
        message["timestamp"] = str(message["timestamp"])
    page = visit.page
    page.goto(f"{static_base}/")
    got = page.evaluate(
        """async (v) => {
          const c = await import("/js/c2sp.js");
          const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
          const vkeys = [];
          for (const k of v.vkeys) {
            const p = await c.parseVkey(k.vkey);
            vkeys.push([p.name, hex(p.keyId), p.type]);
          }
          const bad = [];
          for (const k of v.bad_vkeys) {
            try { await c.parseVkey(k.vkey); bad.push(false); } catch { bad.push(true); }
          }
          const notes = [];
          for (const n of v.signed_notes) {
            const note = c.parseNote(n.note);
            const keys = [];
            for (const k of n.verified_by) keys.push(await c.parseVkey(k));
            const checks = await c.verifySignatures(note, keys);
            const valid = checks.filter((x) => x.valid).map((x) => x.verifier.name);
            notes.push([note.text === n.text, valid.length === new Set(n.verified_by).size,
                        checks.every((x) => x.valid || x.verifier === null)]);
          }
          const messages = v.cosignature_messages.map((m) =>
            new TextDecoder().decode(c.cosignatureMessage(m.body, BigInt(m.timestamp))) === m.message);
          return { vkeys, bad, notes, messages };
        }""",
        c2sp,
    )
    assert got["vkeys"] == [[k["name"], k["key_id"], k["key_type"]] for k in c2sp["vkeys"]]
    assert got["bad"] == [True] * len(c2sp["bad_vkeys"])
    assert got["notes"] == [[True, True, True]] * len(c2sp["signed_notes"])
    assert got["messages"] == [True] * len(c2sp["cosignature_messages"])

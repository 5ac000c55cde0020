"""Produce ``vectors.json``: provenance bundles and policies, valid and
tampered, with what ``ledger.verify.provenance`` says of each.

Run by hand (``python -m tests.golden.provenance.generate``) when the bundle
format or a case changes. ``tests/browser/test_tlog_js.py`` runs every case
through the Python verifier again (which must still say what the file says)
and through ``static/js/tlog.js`` in Chromium (which must agree).

Keys come from fixed seeds; the store's timestamps do not, so regenerating
changes the bytes but never a verdict.
"""

from __future__ import annotations

import copy
import json
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.strategies import good_spec

from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.service.provenance import provenance_bundle
from ledger.service.sealer import Sealer
from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore
from ledger.tlog.cosignature import cosign
from ledger.tlog.keys import Signer
from ledger.tlog.policy import PolicyError, parse_policy
from ledger.tlog.signed_note import parse_note, sign_note
from ledger.verify.provenance import ProvenanceError, verify_provenance

HERE = Path(__file__).resolve().parent
ORIGIN = "ledger.test/provenance"
Bundle = dict[str, Any]


def _signer(name: str, seed: int, key_type: int = 0x01) -> Signer:
    return Signer.from_seed(name, bytes([seed]) * 32, key_type)


LOG = _signer(ORIGIN, 1)
OTHER_LOG = _signer("elsewhere.test/log", 2)
WITNESSES = {n: _signer(n, 10 + i, 0x04) for i, n in enumerate(("w1", "w2", "w3"))}
STRANGER = _signer("stranger", 20, 0x04)


def policy_text(log: Signer = LOG, quorum: str = "group v 2 w1 w2 w3\nquorum v\n") -> str:
    return (
        f"log {log.verifier_key()}\n"
        + "".join(f"witness {n} {w.verifier_key()}\n" for n, w in WITNESSES.items())
        + quorum
    )


def expected(bundle: Bundle, policy: str) -> dict[str, Any]:
    """What the Python verifier says: ok with the history, or where it failed."""
    try:
        checked = verify_provenance(bundle, parse_policy(policy))
    except PolicyError as error:
        return {"ok": False, "where": "policy", "error": str(error)}
    except ProvenanceError as error:
        return {"ok": False, "where": where(str(error)), "error": str(error)}
    return {
        "ok": True,
        "cosigners": checked.cosigners,
        "tree_size": checked.tree_size,
        "edition": checked.edition,
        "history": checked.history,
    }


def where(message: str) -> str:
    """Where a ProvenanceError's message says the bundle failed."""
    for prefix in ("event ", "stock", "edition"):
        if message.startswith(prefix):
            return message.split(":", 1)[0]
    if message.startswith(("checkpoint", "forged cosignatures")):
        return "checkpoint"
    return "bundle"


def _sold_and_resold(url: DatabaseURL) -> tuple[Bundle, Callable[..., Bundle]]:
    """A unit sold to carol, resold to dave then erin, given to frank, sealed; and a maker of
    its bundle cosigned by the named witnesses."""
    with Ledger(url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(good_spec(), idempotency_key="m")["good_id"]
        unit = ledger.sell(
            good, "own", buyer="carol", channel="shop", quantity=1,
            unit_price=Money(1_000, "EUR"), idempotency_key="s",
        )["units"][0]["unit_id"]  # fmt: skip
        for n, (seller, buyer, price) in enumerate(
            (("carol", "dave", 4_000), ("dave", "erin", 6_000))
        ):
            ledger.resell(
                unit, seller=seller, buyer=buyer, channel="shop",
                price=Money(price, "EUR"), idempotency_key=f"r{n}",
            )  # fmt: skip
        ledger.transfer_unit(
            unit, giver="erin", recipient="frank", channel="shop", idempotency_key="g"
        )
        log = LogStore(ledger.event_store.recorder)
        sealed = Sealer(ledger.event_store, log, origin=ORIGIN, signers=[LOG]).seal()
        if sealed is None:
            raise RuntimeError("nothing sealed")
        bundle = provenance_bundle(ledger.event_store, log, unit)
    body = parse_note(sealed.note).text
    bare = sealed.note

    def cosigned(*names: str, stranger: bool = False) -> Bundle:
        lines = [cosign(body, WITNESSES[n], 1_700_000_000 + i).line() for i, n in enumerate(names)]
        if stranger:
            lines.insert(0, cosign(body, STRANGER, 1_700_000_000).line())
        signed = bare + "".join(line + "\n" for line in lines)
        made = copy.deepcopy(bundle)
        old = made["checkpoint"]
        made["checkpoint"] = signed
        for item in (*made["events"], made["stock"]):
            item["proof"] = item["proof"].replace(old, signed)
        return made

    return bundle, cosigned


def _proof_lines(item: dict[str, str]) -> tuple[list[str], int]:
    lines = item["proof"].split("\n")
    return lines, next(i for i, line in enumerate(lines) if line.startswith("index "))


def _flip_proof_hash(bundle: Bundle) -> Bundle:
    lines, at = _proof_lines(bundle["events"][1])
    first = lines[at + 1]
    lines[at + 1] = ("B" if first[0] != "B" else "C") + first[1:]
    bundle["events"][1]["proof"] = "\n".join(lines)
    return bundle


def _index(bundle: Bundle, delta: int) -> Bundle:
    lines, at = _proof_lines(bundle["events"][2])
    lines[at] = f"index {int(lines[at].split()[1]) + delta}"
    bundle["events"][2]["proof"] = "\n".join(lines)
    return bundle


def _empty_path(bundle: Bundle) -> Bundle:
    lines, at = _proof_lines(bundle["events"][0])
    end = lines.index("", at)
    bundle["events"][0]["proof"] = "\n".join(lines[: at + 1] + lines[end:])
    return bundle


def _wrong_root(bundle: Bundle) -> Bundle:
    """A checkpoint with another root, signed by the log key itself (so only
    the inclusion proofs can catch it)."""
    note = parse_note(bundle["checkpoint"])
    origin, size, root = note.text.splitlines()[:3]
    forged_root = ("A" if root[0] != "A" else "B") + root[1:]
    body = f"{origin}\n{size}\n{forged_root}\n"
    signed = sign_note(body, [LOG]) + "".join(
        cosign(body, WITNESSES[n], 1_700_000_000).line() + "\n" for n in ("w1", "w2")
    )
    for item in (*bundle["events"], bundle["stock"]):
        item["proof"] = item["proof"].replace(bundle["checkpoint"], signed)
    bundle["checkpoint"] = signed
    return bundle


def _replace_record(bundle: Bundle, old: str, new: str, at: int = 1) -> Bundle:
    bundle["events"][at]["record"] = bundle["events"][at]["record"].replace(old, new)
    return bundle


def _bad_log_signature(bundle: Bundle) -> Bundle:
    lines = bundle["checkpoint"].split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith(f"\u2014 {ORIGIN} "))
    sig = lines[at]
    lines[at] = sig[:-6] + ("A" if sig[-6] != "A" else "B") + sig[-5:]
    signed = "\n".join(lines)
    for item in (*bundle["events"], bundle["stock"]):
        item["proof"] = item["proof"].replace(bundle["checkpoint"], signed)
    bundle["checkpoint"] = signed
    return bundle


def _forged_cosignature(bundle: Bundle) -> Bundle:
    """w3's line signs another time than it says."""
    lines = bundle["checkpoint"].split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("\u2014 w3 "))
    sig = lines[at]
    lines[at] = sig[:-6] + ("A" if sig[-6] != "A" else "B") + sig[-5:]
    signed = "\n".join(lines)
    for item in (*bundle["events"], bundle["stock"]):
        item["proof"] = item["proof"].replace(bundle["checkpoint"], signed)
    bundle["checkpoint"] = signed
    return bundle


def _without_edition(bundle: Bundle) -> Bundle:
    del bundle["stock"], bundle["edition"]
    return bundle


def cases(cosigned: Callable[..., Bundle]) -> list[dict[str, Any]]:
    """Every case: a name, a bundle and a policy."""
    good = policy_text()

    def case(name: str, bundle: Bundle, policy: str = good) -> dict[str, Any]:
        return {"name": name, "bundle": bundle, "policy": policy}

    def w12() -> Bundle:
        return cosigned("w1", "w2")

    def w123() -> Bundle:
        return cosigned("w1", "w2", "w3")

    return [
        case("valid", w12()),
        case("valid, all three witnesses", w123()),
        case("valid, quorum none", cosigned(), policy_text(quorum="quorum none\n")),
        case("valid, without an edition (an older bundle)", _without_edition(w12())),
        case("unknown signer ignored", cosigned("w1", "w3", stranger=True)),
        case("tampered record byte", _replace_record(w12(), '"buyer":"dave"', '"buyer":"davf"')),
        case("tampered record, not canonical", _replace_record(w12(), '{"', '{ "')),
        case("tampered price", _replace_record(w12(), '"amount":4000', '"amount":4001')),
        case("tampered proof hash", _flip_proof_hash(w12())),
        case("wrong index", _index(w12(), -1)),
        case("index beyond the tree", _index(w12(), 10_000)),
        case("wrong root", _wrong_root(w12())),
        case("missing cosignature below quorum", cosigned("w2")),
        case("no cosignature", cosigned()),
        case("forged cosignature", _forged_cosignature(w123())),
        case("bad log signature", _bad_log_signature(w12())),
        case("empty path at size > 1", _empty_path(w12())),
        case("policy from another log", w12(), policy_text(OTHER_LOG)),
        case("event dropped", _drop(w12(), 1)),
        case("events reordered", _swap(w12())),
        case("edition claimed too large", _edition(w12(), 1_000)),
        case("stock record tampered", _stock(w12())),
        case("not a provenance bundle", {**w12(), "format": "ledger.provenance/v0"}),
        case("malformed policy", w12(), "log nonsense\nquorum none\n"),
    ]


def _drop(bundle: Bundle, at: int) -> Bundle:
    del bundle["events"][at]
    return bundle


def _swap(bundle: Bundle) -> Bundle:
    events = bundle["events"]
    events[0], events[1] = events[1], events[0]
    return bundle


def _edition(bundle: Bundle, of: int) -> Bundle:
    bundle["edition"] = {**bundle["edition"], "of": of}
    return bundle


def _stock(bundle: Bundle) -> Bundle:
    stock = bundle["stock"]
    stock["record"] = stock["record"].replace('"lifetime_cap":', '"lifetime_cap":1', 1)
    return bundle


def mutations(bundle: Bundle, count: int, seed: int) -> list[tuple[str, Bundle]]:
    """``count`` copies of ``bundle``, each with one character of a record,
    a proof or the checkpoint replaced, deleted or inserted (seeded): most
    break it somewhere, a few change nothing that is checked (a proof's
    unauthenticated ``extra``)."""
    rng = random.Random(seed)
    fields: list[tuple[Any, ...]] = [("checkpoint",), ("stock", "record"), ("stock", "proof")]
    for i in range(len(bundle["events"])):
        fields += [("events", i, "record"), ("events", i, "proof")]
    made = []
    for n in range(count):
        copied = copy.deepcopy(bundle)
        path = rng.choice(fields)
        holder = copied
        for key in path[:-1]:
            holder = holder[key]
        text = holder[path[-1]]
        at = rng.randrange(len(text))
        how = rng.choice(("replace", "delete", "insert"))
        char = rng.choice('A0a+/=\n \u2014x1{}":,')
        after = text[at + 1 :] if how != "insert" else text[at:]
        holder[path[-1]] = text[:at] + ("" if how == "delete" else char) + after
        made.append((f"{n}: {how} at {at} of {'/'.join(map(str, path))}", copied))
    return made


def build() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        _bundle, cosigned = _sold_and_resold(DatabaseURL.parse(f"sqlite:///{tmp}/ledger.db"))
    built = cases(cosigned)
    for item in built:
        item["expected"] = expected(item["bundle"], item["policy"])
    return built


def main() -> int:
    vectors = build()
    (HERE / "vectors.json").write_text(json.dumps(vectors, indent=1, ensure_ascii=False) + "\n")
    for item in vectors:
        verdict = "ok" if item["expected"]["ok"] else f"fails at {item['expected']['where']}"
        print(f"{item['name']}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

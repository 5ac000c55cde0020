"""ledger.tlog.policy: C2SP tlog-policy parsing, quorum evaluation and checkpoint checks.

The spec's example policy (tests/golden/c2sp/vectors.json) elides its keys;
generated keys are substituted. Quorum evaluation is compared with an
independent recursive evaluator over every subset of witnesses.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.tlog.c2sp import (
    KEY_TYPE_COSIGNATURE_V1,
    InvalidSignatureError,
    MalformedNoteError,
    UnverifiedNoteError,
)
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.cosignature import cosign
from ledger.tlog.keys import NoteSignature, Signer
from ledger.tlog.policy import (
    NONE,
    Group,
    Policy,
    PolicyError,
    PolicyLog,
    format_policy,
    parse_policy,
)
from ledger.tlog.signed_note import format_note, parse_note, sign_note

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "golden" / "c2sp" / "vectors.json").read_text("utf-8")
)
ORIGIN = "example.com/goods-ledger"


def _witness_key(name: str) -> Signer:
    return Signer.generate(f"{name.lower()}.witness.example", KEY_TYPE_COSIGNATURE_V1)


@pytest.fixture(scope="module")
def log() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture(scope="module")
def keys() -> dict[str, Signer]:
    return {name: _witness_key(name) for name in ["X1", "X2", "X3", "Y1", "Y2", "Y3", "W1", "W2"]}


def _fill_vkeys(template: str, vkeys: Iterator[str]) -> str:
    out = template
    while "<vkey>" in out:
        out = out.replace("<vkey>", next(vkeys), 1)
    return out


@pytest.fixture(scope="module")
def spec_policy_text(log: Signer, keys: dict[str, Signer]) -> str:
    order = [log] + [keys[n] for n in ["X1", "X2", "X3", "Y1", "Y2", "Y3"]]
    return _fill_vkeys(VECTORS["policy_example"]["text"], (s.verifier_key() for s in order))


# -- parsing -----------------------------------------------------------------------


def test_spec_example_parses(spec_policy_text: str, log: Signer, keys: dict[str, Signer]) -> None:
    policy = parse_policy(spec_policy_text)
    assert policy.log_verifiers == (log.verifier(),)
    assert policy.witnesses == {n: keys[n].verifier() for n in ["X1", "X2", "X3", "Y1", "Y2", "Y3"]}
    assert policy.groups == {
        "X-witnesses": Group("X-witnesses", 2, ("X1", "X2", "X3")),
        "Y-witnesses": Group("Y-witnesses", 1, ("Y1", "Y2", "Y3")),
        "X-and-Y": Group("X-and-Y", 2, ("X-witnesses", "Y-witnesses")),
    }
    assert policy.quorum == "X-and-Y"
    assert Policy.parse(spec_policy_text.encode()) == policy


@pytest.mark.parametrize(
    ("cosigners", "met"),
    [
        (set(), False),
        ({"X1", "X2", "Y1"}, True),
        ({"X1", "X3", "Y3"}, True),
        ({"X2", "X3", "Y2"}, True),
        ({"X1", "Y1"}, False),
        ({"X1", "X2"}, False),
        ({"X1", "X2", "X3"}, False),
        ({"Y1", "Y2", "Y3"}, False),
        ({"X1", "Y1", "Y2", "Y3"}, False),
        ({"X1", "X2", "X3", "Y1", "Y2", "Y3"}, True),
        ({"X1", "X2", "Y1", "nobody", "X-witnesses"}, True),
        ({"X1", "X-witnesses", "Y-witnesses", "X-and-Y"}, False),  # groups are not cosigners
    ],
)
def test_spec_example_quorum(spec_policy_text: str, cosigners: set[str], met: bool) -> None:
    assert parse_policy(spec_policy_text).satisfied(cosigners) is met


def _brute_force(policy: Policy, name: str, cosigners: set[str]) -> bool:
    """An independent, recursive reading of the tlog-policy quorum rule."""
    if name == NONE:
        return True
    if name in policy.witnesses:
        return name in cosigners
    group = policy.groups[name]
    return sum(_brute_force(policy, m, cosigners) for m in group.members) >= group.threshold


def test_nested_groups_against_brute_force(keys: dict[str, Signer], log: Signer) -> None:
    names = ["X1", "X2", "X3", "Y1", "Y2", "Y3", "W1", "W2"]
    text = f"log {log.verifier_key()}\n" + "".join(
        f"witness {n} {keys[n].verifier_key()}\n" for n in names
    )
    text += (
        "group A 2 X1 X2 X3\n"
        "group B any Y1 Y2\n"
        "group C all A B\n"
        "group D 2 C Y3 W1\n"
        "group E any D W2\n"
        "quorum E\n"
    )
    policy = parse_policy(text)
    results = set()
    for r in range(len(names) + 1):
        for subset in itertools.combinations(names, r):
            chosen = set(subset)
            got = policy.satisfied(chosen)
            assert got is _brute_force(policy, "E", chosen), chosen
            results.add(got)
    assert results == {True, False}
    assert policy.satisfied({"W2"})
    assert policy.satisfied({"X1", "X2", "Y2", "W1"})
    assert not policy.satisfied({"X1", "X2", "Y2"})
    assert policy.satisfied({"Y3", "W1"})
    assert not policy.satisfied({"X1", "Y1", "Y3"})


def test_quorum_none_and_single_witness(keys: dict[str, Signer]) -> None:
    assert parse_policy("quorum none\n").satisfied(set())
    single = parse_policy(f"witness W1 {keys['W1'].verifier_key()}\nquorum W1\n")
    assert single.satisfied({"W1"})
    assert not single.satisfied(set())
    assert not single.satisfied({"W2"})


def test_whitespace_comments_and_urls(log: Signer, keys: dict[str, Signer]) -> None:
    text = (
        "\n"
        "# a comment\n"
        "   \t# an indented comment, with # inside\n"
        f"  log\t{log.verifier_key()}   https://log.example/#anchor  \n"
        " \t \n"
        f"witness   W1\t\t{keys['W1'].verifier_key()}  https://w1.example/\n"
        f"\twitness W2 {keys['W2'].verifier_key()}\n"
        "group  G\tany   W1 W2\t\n"
        "quorum\tG\n"
    )
    policy = parse_policy(text)
    assert policy.logs == (PolicyLog(log.verifier(), "https://log.example/#anchor"),)
    assert policy.witness_urls == {"W1": "https://w1.example/"}
    assert policy.groups["G"] == Group("G", 1, ("W1", "W2"))
    assert policy.quorum == "G"


def test_policy_without_logs(keys: dict[str, Signer]) -> None:
    policy = parse_policy(f"witness W1 {keys['W1'].verifier_key()}\nquorum W1\n")
    assert policy.logs == ()


def test_names_are_opaque_octets(keys: dict[str, Signer]) -> None:
    # "K" and the Kelvin sign (U+212A, UTF-8 e2 84 aa) are different names;
    # so are invalid UTF-8 octets, which bytes input keeps as they are.
    text = (
        f"witness K {keys['W1'].verifier_key()}\n"
        f"witness \u212a {keys['W2'].verifier_key()}\n"
        f"witness \xff {keys['X1'].verifier_key()}\n"
        "group G all K \u212a \xff\n"
        "quorum G\n"
    )
    raw = text.replace("\xff", "\udcff").encode("utf-8", "surrogateescape")
    raw = raw.replace(b"\xc3\xbf", b"\xff")
    for data in (text, raw):
        policy = parse_policy(data)
        assert len(policy.witnesses) == 3
        assert policy.groups["G"].threshold == 3


def _policy_errors(log: Signer, keys: dict[str, Signer]) -> list[tuple[str, str, int | None, str]]:
    lv = log.verifier_key()
    w1, w2, w3 = (keys[n].verifier_key() for n in ["W1", "W2", "X1"])
    head = f"witness W1 {w1}\nwitness W2 {w2}\n"
    return [
        ("empty file", "", None, "no quorum"),
        ("no quorum", head, None, "no quorum"),
        ("two quorums", "quorum none\nquorum none\n", 2, "only one quorum"),
        ("unknown keyword", "quorum none\nwitnes W1 x\n", 2, "unknown keyword"),
        ("undefined member", head + "group G all W1 W3\nquorum G\n", 3, "undefined name 'W3'"),
        ("member defined later", "group G any W1\n" + head + "quorum G\n", 1, "undefined"),
        ("undefined quorum", head + "quorum W3\n", 3, "undefined name 'W3'"),
        ("quorum defined later", "quorum W1\n" + head, 1, "undefined"),
        ("member twice", head + "group G all W1 W2 W1\nquorum G\n", 3, "already a member"),
        (
            "member of two groups",
            head + f"witness W3 {w3}\ngroup G1 all W1 W2\ngroup G2 all W3 W2\nquorum G2\n",
            5,
            "already a member of 'G1'",
        ),
        ("none as member", head + "group G all W1 none\nquorum G\n", 3, "cannot be a group member"),
        ("witness named none", f"witness none {w1}\nquorum none\n", 1, "predefined"),
        ("group named none", head + "group none any W1\nquorum none\n", 3, "predefined"),
        ("duplicate witness name", f"witness W1 {w1}\nwitness W1 {w2}\n", 2, "duplicate name"),
        ("group reuses witness name", head + "group W1 any W2\n", 3, "duplicate name"),
        ("duplicate log", f"log {lv}\n  log {lv}\n", 2, "duplicate log"),
        (
            "same witness key, other name",
            f"witness W1 {w1}\nwitness W9 {_rename(keys['W1'], 'other.example')}\n",
            2,
            "duplicate witness",
        ),
        ("threshold 0", head + "group G 0 W1 W2\n", 3, "not between 1 and 2"),
        ("threshold > n", head + "group G 3 W1 W2\n", 3, "not between 1 and 2"),
        ("huge threshold", head + "group G 99999999999999999999 W1\n", 3, "not between"),
        ("threshold word", head + "group G two W1 W2\n", 3, "decimal"),
        ("threshold leading zero", head + "group G 01 W1 W2\n", 3, "decimal"),
        ("threshold plus", head + "group G +1 W1 W2\n", 3, "decimal"),
        ("threshold negative", head + "group G -1 W1 W2\n", 3, "decimal"),
        ("group without members", head + "group G any\n", 3, "expected 'group"),
        ("log without key", "log\n", 1, "expected 'log"),
        ("log with extra field", f"log {lv} https://x #comment\n", 1, "expected 'log"),
        ("witness without key", "witness W1\n", 1, "expected 'witness"),
        ("quorum with two names", "quorum W1 W2\n", 1, "expected 'quorum"),
        ("bad vkey", "log example.com+00000000+AAAA\n", 1, "invalid vkey"),
        ("witness with a 0x01 key", f"witness W1 {lv}\n", 1, "0x04"),
        ("log with an ML-DSA type", "log " + _vkey_of_type(6) + "\n", 1, "invalid vkey"),
        ("form feed", "# \x0c\nquorum none\n", 1, "control character 0x0c"),
        ("DEL", "# \x7f\nquorum none\n", 1, "control character 0x7f"),
        ("carriage return", "quorum none\r\n", 1, "control character 0x0d"),
        ("NUL", "quorum none\x00\n", 1, "control character 0x00"),
        ("no final newline", "quorum none", 1, "newline"),
        ("no final newline after lines", "# x\nquorum none", 2, "newline"),
    ]


def _rename(signer: Signer, name: str) -> str:
    return Signer.from_seed(name, _seed(signer), signer.key_type).verifier_key()


def _seed(signer: Signer) -> bytes:
    import base64

    return base64.b64decode(signer.to_private_text().split("+", 4)[4])[1:]


def _vkey_of_type(key_type: int) -> str:
    import base64

    from ledger.tlog.keys import key_id

    pub = bytes(range(32))
    # key_id() hashes any type byte; Verifier refuses the type.
    return (
        f"x.example+{key_id('x.example', key_type, pub).hex()}+"
        + base64.b64encode(bytes([key_type]) + pub).decode()
    )


_ERROR_CASES = [
    case[0]
    for case in _policy_errors(
        Signer.generate(ORIGIN), {n: _witness_key(n) for n in ["W1", "W2", "X1"]}
    )
]


@pytest.mark.parametrize("why", _ERROR_CASES)
def test_policy_errors(log: Signer, keys: dict[str, Signer], why: str) -> None:
    (_, text, line, message), *_ = (c for c in _policy_errors(log, keys) if c[0] == why)
    with pytest.raises(PolicyError, match=message) as info:
        parse_policy(text)
    assert info.value.line == line, str(info.value)
    if line is not None:
        assert str(info.value).startswith(f"line {line}: ")


def test_format_policy_round_trip(spec_policy_text: str, keys: dict[str, Signer]) -> None:
    policy = parse_policy(spec_policy_text)
    text = format_policy(policy)
    assert parse_policy(text) == policy
    assert policy.format() == text
    assert "group X-witnesses 2 X1 X2 X3\n" in text
    assert "group Y-witnesses any Y1 Y2 Y3\n" in text
    assert "group X-and-Y all X-witnesses Y-witnesses\n" in text
    assert text.endswith("quorum X-and-Y\n")


def test_format_policy_is_exact(log: Signer, keys: dict[str, Signer]) -> None:
    policy = Policy(
        logs=(PolicyLog(log.verifier(), "https://log.example/"),),
        witnesses={"W1": keys["W1"].verifier(), "W2": keys["W2"].verifier()},
        groups={"G": Group("G", 1, ("W1", "W2"))},
        quorum="G",
        witness_urls={"W2": "https://w2.example/"},
    )
    assert format_policy(policy) == (
        f"log {log.verifier_key()} https://log.example/\n"
        f"witness W1 {keys['W1'].verifier_key()}\n"
        f"witness W2 {keys['W2'].verifier_key()} https://w2.example/\n"
        "group G any W1 W2\n"
        "quorum G\n"
    )
    assert format_policy(Policy((), {}, {}, NONE)) == "quorum none\n"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quorum": "nobody"}, "undefined"),
        ({"groups": {"G": Group("H", 1, ("W1",))}}, "filed under"),
        ({"groups": {"G": Group("G", 2, ("W1",))}}, "threshold"),
        ({"groups": {"G": Group("G", 1, ())}}, "at least one member"),
        ({"witnesses": {"W 1": None}}, "whitespace"),
        ({"witness_urls": {"W9": "https://x/"}}, "undefined witness"),
        ({"witness_urls": {"W1": "https://x/ y"}}, "whitespace"),
    ],
)
def test_policy_constructor_validates(
    keys: dict[str, Signer], kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {
        "logs": (),
        "witnesses": {"W1": keys["W1"].verifier()},
        "groups": {},
        "quorum": "W1",
        **kwargs,
    }
    if args["witnesses"] == {"W 1": None}:
        args["witnesses"] = {"W 1": keys["W1"].verifier()}
        args["quorum"] = NONE
    with pytest.raises(PolicyError, match=message):
        Policy(**args)


# -- check() -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def witnesses() -> dict[str, Signer]:
    return {n: _witness_key(n) for n in ["A", "B", "C"]}


@pytest.fixture(scope="module")
def two_of_three(log: Signer, witnesses: dict[str, Signer]) -> Policy:
    lines = [f"log {log.verifier_key()}"]
    lines += [f"witness {n} {s.verifier_key()}" for n, s in witnesses.items()]
    lines += ["group G 2 A B C", "quorum G"]
    return parse_policy("\n".join(lines) + "\n")


def _body(size: int = 1234) -> str:
    return Checkpoint(ORIGIN, size, hashlib.sha256(b"%d" % size).digest()).body()


def _signed(
    log: Signer, cosigners: list[Signer], body: str | None = None, ts: int = 1700000000
) -> str:
    body = body or _body()
    note = parse_note(sign_note(body, [log]))
    sigs = [*note.signatures] + [cosign(body, w, ts + i) for i, w in enumerate(cosigners)]
    return format_note(body, sigs)


def test_check_two_of_three_met(
    two_of_three: Policy, log: Signer, witnesses: dict[str, Signer]
) -> None:
    result = two_of_three.check(_signed(log, [witnesses["A"], witnesses["C"]]))
    assert result.logs == (log.verifier(),)
    assert result.cosigners == {"A", "C"}
    assert result.timestamps == {"A": 1700000000, "C": 1700000001}
    assert result.invalid_cosigners == {}
    assert result.quorum_met
    assert result.ok
    assert result.checkpoint == Checkpoint.parse(_body())


def test_check_one_of_three_not_met(
    two_of_three: Policy, log: Signer, witnesses: dict[str, Signer]
) -> None:
    result = two_of_three.check(_signed(log, [witnesses["B"]]))
    assert result.cosigners == {"B"}
    assert not result.quorum_met
    assert not result.ok
    result = two_of_three.check(_signed(log, []))
    assert result.cosigners == frozenset()
    assert not result.quorum_met


def test_check_reports_forged_cosignature(
    two_of_three: Policy, log: Signer, witnesses: dict[str, Signer]
) -> None:
    body = _body()
    good = parse_note(_signed(log, [witnesses["A"], witnesses["B"]], body))
    # C's name and key ID, signed by someone else's key.
    impostor = Signer.from_seed(witnesses["C"].name, bytes(32), KEY_TYPE_COSIGNATURE_V1)
    real = cosign(body, impostor, 1700000009)
    forged = NoteSignature(witnesses["C"].name, witnesses["C"].key_id, real.signature)
    result = two_of_three.check(format_note(body, [*good.signatures, forged]))
    assert result.cosigners == {"A", "B"}
    assert set(result.invalid_cosigners) == {"C"}
    assert "C" not in result.timestamps
    assert result.quorum_met  # the two valid ones still count ...
    assert not result.ok  # ... but a bad signature from a known key fails the note


def test_check_forged_cosignature_breaks_quorum(
    two_of_three: Policy, log: Signer, witnesses: dict[str, Signer]
) -> None:
    body = _body()
    good = parse_note(_signed(log, [witnesses["A"]], body))
    # B's real cosignature over another checkpoint, pasted onto this one.
    stolen = cosign(_body(999), witnesses["B"], 1700000005)
    result = two_of_three.check(format_note(body, [*good.signatures, stolen]))
    assert result.cosigners == {"A"}
    assert set(result.invalid_cosigners) == {"B"}
    assert not result.quorum_met
    assert not result.ok


def test_check_tampered_timestamp_is_invalid(
    two_of_three: Policy, log: Signer, witnesses: dict[str, Signer]
) -> None:
    body = _body()
    note = parse_note(_signed(log, [witnesses["A"], witnesses["B"]], body))
    sigs = list(note.signatures)
    last = sigs[-1]
    sigs[-1] = NoteSignature(last.name, last.key_id, (5).to_bytes(8, "big") + last.signature[8:])
    result = two_of_three.check(format_note(body, sigs))
    assert set(result.invalid_cosigners) == {"B"}
    assert not result.quorum_met


def test_check_ignores_unknown_cosigners(
    two_of_three: Policy, log: Signer, witnesses: dict[str, Signer]
) -> None:
    stranger = _witness_key("stranger")
    result = two_of_three.check(_signed(log, [stranger, witnesses["A"], witnesses["B"]]))
    assert result.cosigners == {"A", "B"}
    assert result.ok


def test_check_needs_a_trusted_log_signature(
    two_of_three: Policy, log: Signer, witnesses: dict[str, Signer]
) -> None:
    body = _body()
    only_cosigs = format_note(body, [cosign(body, w, 1) for w in witnesses.values()])
    with pytest.raises(UnverifiedNoteError, match="no signature from a trusted log"):
        two_of_three.check(only_cosigs)
    other_log = Signer.generate(ORIGIN)  # same origin name, untrusted key
    with pytest.raises(UnverifiedNoteError):
        two_of_three.check(_signed(other_log, list(witnesses.values())))
    other_origin = Checkpoint("example.com/other", 5, bytes(32)).body()
    signer = Signer.generate("example.com/other")
    with pytest.raises(UnverifiedNoteError, match="no trusted log key for origin"):
        two_of_three.check(_signed(signer, [], other_origin))


def test_check_rejects_a_bad_log_signature(two_of_three: Policy, log: Signer) -> None:
    note = parse_note(_signed(log, []))
    sig = note.signatures[0]
    bad = NoteSignature(sig.name, sig.key_id, bytes(64))
    with pytest.raises(InvalidSignatureError):
        two_of_three.check(format_note(note.text, [bad]))


def test_check_rejects_malformed_input(two_of_three: Policy, log: Signer) -> None:
    with pytest.raises(MalformedNoteError):
        two_of_three.check(_signed(log, []).replace("\n\n", "\n"))
    with pytest.raises(Exception, match="checkpoint"):
        two_of_three.check(sign_note("not a checkpoint\n", [log]))


def test_check_with_log_keys_from_elsewhere(log: Signer, witnesses: dict[str, Signer]) -> None:
    policy = parse_policy(f"witness A {witnesses['A'].verifier_key()}\nquorum A\n")
    signed = _signed(log, [witnesses["A"]])
    with pytest.raises(UnverifiedNoteError):
        policy.check(signed)
    result = policy.check(signed, log_verifiers=[log.verifier()])
    assert result.ok
    assert result.cosigners == {"A"}


def test_check_quorum_none(log: Signer) -> None:
    policy = parse_policy(f"log {log.verifier_key()}\nquorum none\n")
    result = policy.check(_signed(log, []))
    assert result.ok
    assert result.cosigners == frozenset()


def test_check_spec_example_policy(
    spec_policy_text: str, log: Signer, keys: dict[str, Signer]
) -> None:
    policy = parse_policy(spec_policy_text)
    met = policy.check(_signed(log, [keys["X1"], keys["X2"], keys["Y3"]]))
    assert met.ok
    assert met.cosigners == {"X1", "X2", "Y3"}
    not_met = policy.check(_signed(log, [keys["X1"], keys["Y1"], keys["Y2"], keys["Y3"]]))
    assert not not_met.quorum_met

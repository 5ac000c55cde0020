"""ledger.tlog.note: signed notes, keys, checkpoints, cosignatures, tlog-proof, add-checkpoint.

External vectors (tests/golden/c2sp/vectors.json, sources in its README) come
from the C2SP specs, Go's sumdb/note tests, transparency-dev/formats and
sigsum-go. Everything else is generated here, and checked with an
independent reconstruction where the bytes matter (the cosignature message).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.tlog.c2sp import (
    KEY_TYPE_COSIGNATURE_V1,
    KEY_TYPE_ED25519,
    MAX_SIGNATURES,
    AmbiguousKeyError,
    InvalidSignatureError,
    MalformedCheckpointError,
    MalformedKeyError,
    MalformedNoteError,
    MalformedProofError,
    MalformedRequestError,
    NoteError,
    OldSizeTooLargeError,
    UnprocessableRequestError,
    UnverifiedNoteError,
)
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.cosignature import (
    cosign,
    cosignature_message,
    cosignature_timestamp,
    verify_cosignature,
)
from ledger.tlog.keys import NoteSignature, Signer, Verifier, key_id, valid_key_name
from ledger.tlog.proof import format_tlog_proof, parse_tlog_proof
from ledger.tlog.signed_note import (
    Note,
    format_note,
    format_signature_lines,
    open_note,
    parse_note,
    parse_signature_lines,
    sign_note,
    verify_signatures,
)
from ledger.tlog.witness import AddCheckpoint, format_add_checkpoint, parse_add_checkpoint

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "golden" / "c2sp" / "vectors.json").read_text("utf-8")
)

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
PETER_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

ORIGIN = "example.com/ledger-test"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _vector(section: str, ident: str) -> dict[str, Any]:
    return next(v for v in VECTORS[section] if v["id"] == ident)


def _checkpoint(size: int = 10, extensions: tuple[str, ...] = ()) -> Checkpoint:
    return Checkpoint(ORIGIN, size, hashlib.sha256(b"root %d" % size).digest(), extensions)


@pytest.fixture(scope="module")
def log_signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture(scope="module")
def witness() -> Signer:
    return Signer.generate("witness.example/w1", KEY_TYPE_COSIGNATURE_V1)


# -- keys ------------------------------------------------------------------------


@pytest.mark.parametrize("vec", VECTORS["vkeys"], ids=lambda v: v["name"])
def test_external_vkeys(vec: dict[str, Any]) -> None:
    v = Verifier.from_vkey(vec["vkey"])
    assert v.name == vec["name"]
    assert v.key_id.hex() == vec["key_id"]
    assert v.key_type == vec["key_type"]
    assert v.vkey() == vec["vkey"]
    assert key_id(v.name, v.key_type, v.public_key).hex() == vec["key_id"]
    # Independently: SHA-256(name || 0x0A || type || key)[:4].
    material = base64.b64decode(vec["vkey"].split("+", 2)[2])
    assert hashlib.sha256(vec["name"].encode() + b"\n" + material).digest()[:4] == v.key_id


@pytest.mark.parametrize("vec", VECTORS["bad_vkeys"], ids=lambda v: v["why"])
def test_external_bad_vkeys(vec: dict[str, Any]) -> None:
    with pytest.raises(MalformedKeyError):
        Verifier.from_vkey(vec["vkey"])


def _manglings(text: str) -> list[str]:
    """Every proper substring, and every one-character increment (as Go's tests do)."""
    out = {text[i:j] for i in range(len(text) + 1) for j in range(i + 1, len(text) + 1)}
    out.discard(text)
    out |= {text[:i] + chr(ord(text[i]) + 1) + text[i + 1 :] for i in range(len(text))}
    return sorted(out)


def test_vkey_manglings_rejected() -> None:
    for bad in _manglings(PETER_VKEY):
        with pytest.raises(MalformedKeyError):
            Verifier.from_vkey(bad)


def test_private_key_manglings_rejected() -> None:
    for bad in _manglings(PETER_SKEY):
        with pytest.raises(MalformedKeyError):
            Signer.from_private_text(bad)


@pytest.mark.parametrize("vec", VECTORS["private_keys"], ids=lambda v: v["vkey"].split("+")[0])
def test_external_private_keys(vec: dict[str, Any]) -> None:
    signer = Signer.from_private_text(vec["skey"])
    assert signer.verifier_key() == vec["vkey"]
    assert signer.to_private_text() == vec["skey"]
    assert signer.verifier() == Verifier.from_vkey(vec["vkey"])


def test_uppercase_hex_key_id_rejected() -> None:
    with pytest.raises(MalformedKeyError, match="lowercase"):
        Verifier.from_vkey(PETER_VKEY.replace("c74f20a3", "C74F20A3"))


@pytest.mark.parametrize("key_type", [KEY_TYPE_ED25519, KEY_TYPE_COSIGNATURE_V1])
def test_generated_keys_round_trip(key_type: int) -> None:
    signer = Signer.generate("example.com/k", key_type)
    again = Signer.from_private_text(signer.to_private_text())
    assert again.key_id == signer.key_id
    assert again.public_key == signer.public_key
    assert again.key_type == key_type
    verifier = Verifier.from_vkey(signer.verifier_key())
    assert verifier == signer.verifier()
    assert verifier.key_id == key_id("example.com/k", key_type, signer.public_key)
    msg = b"hi"
    sig = signer.sign(msg)
    assert verifier.verify(msg, sig)
    assert not verifier.verify(b"hj", sig)
    assert not verifier.verify(msg, bytes([sig[0] ^ 1]) + sig[1:])
    assert not verifier.verify(msg, sig[:-1])


def test_same_key_different_types_have_different_ids() -> None:
    seed = os.urandom(32)
    plain = Signer.from_seed("example.com/k", seed, KEY_TYPE_ED25519)
    cosigner = Signer.from_seed("example.com/k", seed, KEY_TYPE_COSIGNATURE_V1)
    assert plain.public_key == cosigner.public_key
    assert plain.key_id != cosigner.key_id


@pytest.mark.parametrize(
    "name",
    ["", "a b", "a+b", "a\tb", "a\u00a0b", "a\u2003b", "a\u3000b", "a\x01b", "\ud800"],
)
def test_invalid_key_names(name: str) -> None:
    assert not valid_key_name(name)
    with pytest.raises(MalformedKeyError):
        key_id(name, KEY_TYPE_ED25519, bytes(32))
    with pytest.raises(MalformedKeyError):
        Signer.generate(name)


@pytest.mark.parametrize("name", ["example.com/log42", "ünïcødé", "oid/1.3.6.1.4.1", "a#b"])
def test_valid_key_names(name: str) -> None:
    assert valid_key_name(name)
    assert Signer.generate(name).name == name


@pytest.mark.parametrize("key_type", [0x02, 0x05, 0x06, 0xFF])
def test_unsupported_key_types(key_type: int) -> None:
    material = bytes([key_type]) + bytes(range(32))
    kid = key_id("example.com/x", key_type, bytes(range(32))).hex()
    with pytest.raises(MalformedKeyError, match="unsupported"):
        Verifier.from_vkey(f"example.com/x+{kid}+{_b64(material)}")


def test_signer_repr_hides_the_secret() -> None:
    signer = Signer.from_private_text(PETER_SKEY)
    assert "AYEKFALV" not in repr(signer)
    assert "c74f20a3" in repr(signer)


# -- signed notes ------------------------------------------------------------------


@pytest.mark.parametrize("vec", VECTORS["signed_notes"], ids=lambda v: v["id"])
def test_external_signed_notes(vec: dict[str, Any]) -> None:
    verifiers = [Verifier.from_vkey(k) for k in vec["verified_by"]]
    note, signed = open_note(vec["note"], verifiers)
    assert note.text == vec["text"]
    assert [v.vkey() for v in signed] == vec["verified_by"]
    assert note.format() == vec["note"]
    # Each key alone suffices; the others' lines are then unknown and ignored.
    for v in verifiers:
        assert open_note(vec["note"], [v])[1] == [v]


def test_go_sign_vector_is_reproduced() -> None:
    vec = _vector("signed_notes", "go-note-sign")
    signer = Signer.from_private_text(vec["signed_with"])
    assert sign_note(vec["text"], [signer]) == vec["note"]


@pytest.mark.parametrize("vec", VECTORS["unverifiable_notes"], ids=lambda v: v["id"])
def test_external_notes_parse(vec: dict[str, Any]) -> None:
    note = parse_note(vec["note"])
    assert note.text == vec["text"]
    got = [(s.name, s.key_id.hex(), len(s.signature)) for s in note.signatures]
    want = [(s["name"], s["key_id"], s["signature_bytes"]) for s in vec["signatures"]]
    assert got == want
    for sig, expected in zip(note.signatures, vec["signatures"], strict=True):
        if "timestamp" in expected:
            assert cosignature_timestamp(sig) == expected["timestamp"]
    assert format_note(note.text, note.signatures) == vec["note"]
    with pytest.raises(UnverifiedNoteError):
        open_note(vec["note"], [Verifier.from_vkey(PETER_VKEY)])


def test_parse_accepts_bytes() -> None:
    note = parse_note((PETER_TEXT + "\n" + PETER_SIG).encode())
    assert note.text == PETER_TEXT


def test_sign_and_open_round_trip(log_signer: Signer) -> None:
    other = Signer.generate("example.com/other")
    data = sign_note("hello\n", [log_signer, other])
    assert data.startswith("hello\n\n— ")
    note, signed = open_note(data, [other.verifier(), log_signer.verifier()])
    assert note.text == "hello\n"
    assert signed == [log_signer.verifier(), other.verifier()]


@pytest.mark.parametrize("text", ["a\n\nb\n", "a\n\n", "\n", "— not a signature\n"])
def test_text_with_blank_lines_round_trips(log_signer: Signer, text: str) -> None:
    note, _ = open_note(sign_note(text, [log_signer]), [log_signer.verifier()])
    assert note.text == text


def test_unknown_keys_are_ignored() -> None:
    peter = Verifier.from_vkey(PETER_VKEY)
    # Same name, other key ID; same key ID, other name: both unknown, so ignored.
    other_id = PETER_SIG.replace("x08g", "xxxx")
    other_name = PETER_SIG.replace("PeterNeumann", "PeterNeumann2")
    data = PETER_TEXT + "\n" + other_id + PETER_SIG + other_name + ENOCH_SIG
    note, signed = open_note(data, [peter])
    assert signed == [peter]
    assert len(note.signatures) == 4


def test_no_known_signature_rejected() -> None:
    with pytest.raises(UnverifiedNoteError):
        open_note(PETER_TEXT + "\n" + ENOCH_SIG, [Verifier.from_vkey(PETER_VKEY)])
    with pytest.raises(UnverifiedNoteError):
        open_note(PETER_TEXT + "\n" + PETER_SIG, [])


def test_bad_signature_from_known_key_rejects_the_note() -> None:
    # Go's own case: four base64 characters inserted into the signature.
    bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    peter, enoch = Verifier.from_vkey(PETER_VKEY), Verifier.from_vkey(ENOCH_VKEY)
    with pytest.raises(InvalidSignatureError, match=r"PeterNeumann\+c74f20a3"):
        open_note(PETER_TEXT + "\n" + bad, [peter])
    # Even with a valid signature from another known key alongside.
    with pytest.raises(InvalidSignatureError):
        open_note(PETER_TEXT + "\n" + ENOCH_SIG + bad, [peter, enoch])
    # But from an unknown key it is only ignored.
    assert open_note(PETER_TEXT + "\n" + ENOCH_SIG + bad, [enoch])[1] == [enoch]


def test_tampered_text_fails(log_signer: Signer) -> None:
    data = sign_note("origin\n1\nabc\n", [log_signer])
    with pytest.raises(InvalidSignatureError):
        open_note(data.replace("1\n", "2\n", 1), [log_signer.verifier()])


def test_tampered_signature_fails(log_signer: Signer) -> None:
    note = parse_note(sign_note("hello\n", [log_signer]))
    sig = note.signatures[0]
    for i in (0, 31, 63):
        flipped = bytearray(sig.signature)
        flipped[i] ^= 0x40
        forged = NoteSignature(sig.name, sig.key_id, bytes(flipped))
        with pytest.raises(InvalidSignatureError):
            open_note(format_note(note.text, [forged]), [log_signer.verifier()])


def test_duplicate_signature_lines() -> None:
    """The spec says nothing of duplicates; like Go, they are accepted and a
    signer is reported once. Unlike Go, every copy from a known key is verified."""
    peter = Verifier.from_vkey(PETER_VKEY)
    data = PETER_TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG
    note, signed = open_note(data, [peter])
    assert signed == [peter]
    assert len(note.signatures) == 4
    bad_copy = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(InvalidSignatureError):
        open_note(PETER_TEXT + "\n" + PETER_SIG + bad_copy, [peter])


def test_signature_count_limit() -> None:
    peter = Verifier.from_vkey(PETER_VKEY)
    assert MAX_SIGNATURES >= 16  # signed-note: MUST accept at least 16
    open_note(PETER_TEXT + "\n" + PETER_SIG * MAX_SIGNATURES, [peter])
    for known in ([peter], []):
        with pytest.raises(MalformedNoteError, match="more than"):
            open_note(PETER_TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1), known)


MALFORMED_NOTES: dict[str, str | bytes] = {
    # Go's badMsgs:
    "no blank line, no signatures": PETER_TEXT,
    "blank line, no signatures": PETER_TEXT + "\n",
    "no final newline": PETER_TEXT + "\n" + PETER_SIG[:-1],
    "control character": "\x01" + PETER_TEXT + "\n" + PETER_SIG,
    "invalid UTF-8": b"\xff" + (PETER_TEXT + "\n" + PETER_SIG).encode(),
    "space in name": PETER_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),
    "trailing non-signature line": PETER_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    # And more:
    "missing blank line": PETER_TEXT + PETER_SIG,
    "text without newline": PETER_TEXT[:-1] + "\n" + PETER_SIG,
    "blank line after signatures": PETER_TEXT + "\n" + PETER_SIG + "\n",
    "hyphen-minus": PETER_TEXT + "\n" + PETER_SIG.replace("—", "-"),
    "en dash": PETER_TEXT + "\n" + PETER_SIG.replace("—", "\u2013"),
    "no space after dash": PETER_TEXT + "\n" + PETER_SIG.replace("— ", "—"),
    "two spaces before base64": PETER_TEXT + "\n" + PETER_SIG.replace(" x08g", "  x08g"),
    "tab separator": PETER_TEXT + "\n" + PETER_SIG.replace(" x08g", "\tx08g"),
    "CRLF": PETER_TEXT + "\n" + PETER_SIG[:-1] + "\r\n",
    "CR in text": PETER_TEXT[:-1] + "\r\n\n" + PETER_SIG,
    "bad base64 character": PETER_TEXT + "\n" + PETER_SIG.replace("x08go/", "x08go!"),
    "base64 without padding": PETER_TEXT + "\n" + PETER_SIG.replace("AM=", "AM"),
    "non-canonical base64": PETER_TEXT + "\n" + PETER_SIG.replace("nAM=", "nAN="),
    "empty signature": PETER_TEXT + "\n— PeterNeumann \n",
    "no signature": PETER_TEXT + "\n— PeterNeumann\n",
    "key ID only": PETER_TEXT + "\n— PeterNeumann x08gow==\n",
    "plus in name": PETER_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"),
    "lone surrogate": "\ud800\n\n" + PETER_SIG,
}


@pytest.mark.parametrize("data", MALFORMED_NOTES.values(), ids=MALFORMED_NOTES.keys())
def test_malformed_notes_rejected(data: str | bytes) -> None:
    with pytest.raises(MalformedNoteError):
        parse_note(data)
    with pytest.raises(MalformedNoteError):
        open_note(data, [Verifier.from_vkey(PETER_VKEY)])


def test_ambiguous_known_keys() -> None:
    a = Signer.generate("example.com/k")
    b = Signer.generate("example.com/k").verifier()
    b.key_id = a.key_id  # a key ID collision, forced
    data = sign_note("x\n", [a])
    with pytest.raises(AmbiguousKeyError):
        open_note(data, [a.verifier(), b])
    # The same key twice is not ambiguous.
    assert open_note(data, [a.verifier(), a.verifier()])[1] == [a.verifier()]


@pytest.mark.parametrize(
    ("text", "why"),
    [("no newline", "newline"), ("bell\x07\n", "control"), ("\ud800\n", "UTF-8")],
)
def test_sign_note_rejects_bad_text(log_signer: Signer, text: str, why: str) -> None:
    with pytest.raises(MalformedNoteError, match=why):
        sign_note(text, [log_signer])


def test_sign_note_rejects_bad_signers(log_signer: Signer, witness: Signer) -> None:
    with pytest.raises(NoteError, match="cosign"):
        sign_note("x\n", [witness])
    with pytest.raises(NoteError, match="twice"):
        sign_note("x\n", [log_signer, log_signer])
    with pytest.raises(MalformedNoteError, match="at least one"):
        sign_note("x\n", [])


def test_note_signature_line() -> None:
    sig = NoteSignature("example.com/k", bytes.fromhex("01020304"), b"\xff" * 64)
    assert sig.line() == "\u2014 example.com/k " + _b64(bytes.fromhex("01020304") + b"\xff" * 64)
    assert NoteSignature.parse_line(sig.line()) == sig
    with pytest.raises(NoteError):
        NoteSignature("example.com/k", b"\x01\x02\x03", b"\xff")
    with pytest.raises(NoteError):
        NoteSignature("bad name", b"\x01\x02\x03\x04", b"\xff")


def test_witness_response_lines() -> None:
    vec = VECTORS["witness_response"]
    sigs = parse_signature_lines(vec["body"])
    got = [(s.name, s.key_id.hex(), len(s.signature)) for s in sigs]
    assert got == [(s["name"], s["key_id"], s["signature_bytes"]) for s in vec["signatures"]]
    assert format_signature_lines(sigs) == vec["body"]
    for bad in ["", vec["body"][:-1], vec["body"] + "\n", "x\n"]:
        with pytest.raises(MalformedNoteError):
            parse_signature_lines(bad)


def test_verify_signatures_reports_without_raising(log_signer: Signer) -> None:
    data = sign_note("x\n", [log_signer])
    note = parse_note(data)
    forged = NoteSignature(log_signer.name, log_signer.key_id, b"\x00" * 64)
    stranger = NoteSignature("someone", b"\x00\x00\x00\x00", b"\x00" * 64)
    checks = verify_signatures(
        Note(note.text, [*note.signatures, forged, stranger]), [log_signer.verifier()]
    )
    assert [(c.verifier is not None, c.valid) for c in checks] == [
        (True, True),
        (True, False),
        (False, False),
    ]
    assert checks[1].error is not None


# -- checkpoints -------------------------------------------------------------------


def test_checkpoint_vectors() -> None:
    for vec in [
        _vector("signed_notes", "sumdb-checkpoint"),
        _vector("unverifiable_notes", "c2sp-checkpoint-example"),
    ]:
        cp = Checkpoint.parse(vec["text"])
        assert cp.origin == vec["checkpoint"]["origin"]
        assert cp.size == vec["checkpoint"]["size"]
        assert cp.root == base64.b64decode(vec["checkpoint"]["root"])
        assert cp.extensions == ()
        assert cp.body() == vec["text"]


def test_checkpoint_body_is_exact() -> None:
    root = bytes(range(32))
    cp = Checkpoint("example.com/log42", 0, root)
    assert cp.body() == "example.com/log42\n0\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    ext = Checkpoint("o", 1234, root, ("ext one", "ext-two"))
    assert ext.body() == "o\n1234\n" + _b64(root) + "\next one\next-two\n"
    assert Checkpoint.parse(ext.body()) == ext


ROOT_B64 = _b64(bytes(range(32)))
BAD_CHECKPOINTS = {
    "leading zero": f"o\n020\n{ROOT_B64}\n",
    "double zero": f"o\n00\n{ROOT_B64}\n",
    "negative": f"o\n-1\n{ROOT_B64}\n",
    "plus sign": f"o\n+5\n{ROOT_B64}\n",
    "space before size": f"o\n 5\n{ROOT_B64}\n",
    "space after size": f"o\n5 \n{ROOT_B64}\n",
    "non-ASCII digit": f"o\n\u0663\n{ROOT_B64}\n",
    "exponent": f"o\n1e3\n{ROOT_B64}\n",
    "size too large": f"o\n{2**63}\n{ROOT_B64}\n",
    "31-byte root": f"o\n5\n{_b64(bytes(31))}\n",
    "33-byte root": f"o\n5\n{_b64(bytes(33))}\n",
    "non-canonical root": f"o\n5\n{ROOT_B64[:-2]}f=\n",
    "hex root": f"o\n5\n{bytes(32).hex()}\n",
    "empty origin": f"\n5\n{ROOT_B64}\n",
    "missing root": "o\n5\n",
    "no final newline": f"o\n5\n{ROOT_B64}",
    "empty extension line": f"o\n5\n{ROOT_B64}\n\n",
    "empty line between extensions": f"o\n5\n{ROOT_B64}\na\n\nb\n",
    "control character": f"o\x00\n5\n{ROOT_B64}\n",
    "CRLF": f"o\r\n5\r\n{ROOT_B64}\r\n",
}


@pytest.mark.parametrize("body", BAD_CHECKPOINTS.values(), ids=BAD_CHECKPOINTS.keys())
def test_malformed_checkpoints_rejected(body: str) -> None:
    with pytest.raises(MalformedCheckpointError):
        Checkpoint.parse(body)


def test_checkpoint_limits() -> None:
    assert Checkpoint.parse(f"o\n0\n{ROOT_B64}\n").size == 0
    assert Checkpoint.parse(f"o\n{2**63 - 1}\n{ROOT_B64}\n").size == 2**63 - 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": ""},
        {"origin": "a\nb"},
        {"size": -1},
        {"size": 2**63},
        {"root": bytes(31)},
        {"extensions": ("",)},
        {"extensions": ("a\nb",)},
    ],
)
def test_checkpoint_constructor_validates(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"origin": "o", "size": 1, "root": bytes(32), **kwargs}
    with pytest.raises(NoteError):
        Checkpoint(**args)


# -- cosignatures ------------------------------------------------------------------


@pytest.mark.parametrize("vec", VECTORS["cosignature_messages"], ids=lambda v: str(v["timestamp"]))
def test_cosignature_message_vectors(vec: dict[str, Any]) -> None:
    assert cosignature_message(vec["body"], vec["timestamp"]) == vec["message"].encode()


def test_cosign_bytes_are_exactly_per_spec(witness: Signer) -> None:
    body = _checkpoint(20852163).body()
    ts = 1679315147
    sig = cosign(body, witness, ts)
    assert sig.name == witness.name
    assert sig.key_id == witness.key_id
    assert len(sig.signature) == 72
    assert sig.signature[:8] == ts.to_bytes(8, "big") == bytes.fromhex("000000006418 50cb")
    # Independent reconstruction of the signed message.
    message = b"cosignature/v1\ntime 1679315147\n" + body.encode()
    Ed25519PublicKey.from_public_bytes(witness.public_key).verify(sig.signature[8:], message)
    assert verify_cosignature(body, sig, witness.verifier()) == ts
    assert cosignature_timestamp(sig) == ts


def test_cosignature_key_id_uses_type_04(witness: Signer) -> None:
    expected = hashlib.sha256(witness.name.encode() + b"\n\x04" + witness.public_key).digest()[:4]
    assert witness.key_id == expected
    assert witness.verifier_key().split("+")[2].startswith("B")  # base64 of 0x04...


def test_cosignature_covers_every_body_line(witness: Signer) -> None:
    body = _checkpoint(5, ("extension",)).body()
    sig = cosign(body, witness, 1)
    for tampered in [body.replace("extension", "extensioN"), body.replace("\n5\n", "\n6\n")]:
        with pytest.raises(InvalidSignatureError):
            verify_cosignature(tampered, sig, witness.verifier())


def test_cosignature_timestamp_is_signed(witness: Signer) -> None:
    body = _checkpoint().body()
    sig = cosign(body, witness, 1000)
    moved = NoteSignature(sig.name, sig.key_id, (1001).to_bytes(8, "big") + sig.signature[8:])
    with pytest.raises(InvalidSignatureError):
        verify_cosignature(body, moved, witness.verifier())


def test_cosignature_misuse(log_signer: Signer, witness: Signer) -> None:
    body = _checkpoint().body()
    with pytest.raises(NoteError, match="type"):
        cosign(body, log_signer, 1)
    with pytest.raises(MalformedCheckpointError):
        cosign("not a checkpoint\n", witness, 1)
    with pytest.raises(NoteError):
        cosign(body, witness, 2**63)
    with pytest.raises(NoteError):
        cosign(body, witness, -1)
    sig = cosign(body, witness, 2**63 - 1)
    assert verify_cosignature(body, sig, witness.verifier()) == 2**63 - 1
    with pytest.raises(NoteError, match="not a cosignature"):
        verify_cosignature(body, sig, log_signer.verifier())
    other = Signer.generate("witness.example/w2", KEY_TYPE_COSIGNATURE_V1)
    with pytest.raises(NoteError, match="not from key"):
        verify_cosignature(body, sig, other.verifier())
    too_late = NoteSignature(sig.name, sig.key_id, b"\x80" + sig.signature[1:])
    with pytest.raises(InvalidSignatureError, match="2\\^63"):
        verify_cosignature(body, too_late, witness.verifier())
    short = NoteSignature(sig.name, sig.key_id, sig.signature[:-1])
    with pytest.raises(InvalidSignatureError, match="71 bytes"):
        verify_cosignature(body, short, witness.verifier())


@pytest.mark.parametrize(
    "vec", VECTORS["cosignature_timestamps"], ids=lambda v: str(v["timestamp"])
)
def test_cosignature_timestamp_vectors(vec: dict[str, Any]) -> None:
    raw = base64.b64decode(vec["signature"])
    sig = NoteSignature("w", raw[:4], raw[4:])
    if vec["timestamp"] is None:
        with pytest.raises(InvalidSignatureError):
            cosignature_timestamp(sig)
    else:
        assert cosignature_timestamp(sig) == vec["timestamp"]


def test_open_note_verifies_cosignatures(log_signer: Signer, witness: Signer) -> None:
    body = _checkpoint().body()
    logged = parse_note(sign_note(body, [log_signer]))
    cosig = cosign(body, witness, 42)
    data = format_note(body, [*logged.signatures, cosig])
    _, signed = open_note(data, [log_signer.verifier(), witness.verifier()])
    assert signed == [log_signer.verifier(), witness.verifier()]
    checks = verify_signatures(parse_note(data), [witness.verifier()])
    assert [c.timestamp for c in checks] == [None, 42]
    # A type-0x01 verifier for the same key and name has another key ID: unknown.
    plain = Verifier(witness.name, KEY_TYPE_ED25519, witness.public_key)
    with pytest.raises(UnverifiedNoteError):
        open_note(format_note(body, [cosig]), [plain])
    forged = NoteSignature(cosig.name, cosig.key_id, cosig.signature[:8] + bytes(64))
    with pytest.raises(InvalidSignatureError):
        open_note(format_note(body, [*logged.signatures, forged]), [witness.verifier()])


# -- tlog-proof --------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_checkpoint(log_signer: Signer) -> str:
    return sign_note(_checkpoint(100000).body(), [log_signer])


def test_tlog_proof_spec_example(signed_checkpoint: str) -> None:
    vec = VECTORS["tlog_proof"]
    with pytest.raises(MalformedProofError):  # its signatures are elided with "[...]"
        parse_tlog_proof(vec["header"] + vec["checkpoint_as_published"])
    proof = parse_tlog_proof(vec["header"] + signed_checkpoint)
    assert proof.index == vec["index"]
    assert proof.extra == base64.b64decode(vec["extra_base64"])
    assert proof.inclusion == [base64.b64decode(h) for h in vec["inclusion"]]
    assert proof.checkpoint_note_text == signed_checkpoint
    assert proof.checkpoint.size == 100000
    assert proof.format() == vec["header"] + signed_checkpoint


def test_tlog_proof_format_is_exact(signed_checkpoint: str) -> None:
    h1, h2 = bytes(32), b"\x01" * 32
    assert format_tlog_proof(5, [h1, h2], signed_checkpoint) == (
        f"c2sp.org/tlog-proof@v1\nindex 5\n{_b64(h1)}\n{_b64(h2)}\n\n{signed_checkpoint}"
    )
    assert format_tlog_proof(0, [], signed_checkpoint, extra=b"\x00hi") == (
        f"c2sp.org/tlog-proof@v1\nextra AGhp\nindex 0\n\n{signed_checkpoint}"
    )


@pytest.mark.parametrize("extra", [None, b"", b"payload", bytes(range(256))])
@pytest.mark.parametrize("n", [0, 1, 17, 64])
def test_tlog_proof_round_trip(signed_checkpoint: str, extra: bytes | None, n: int) -> None:
    inclusion = [hashlib.sha256(bytes([i])).digest() for i in range(n)]
    text = format_tlog_proof(99999, inclusion, signed_checkpoint, extra)
    proof = parse_tlog_proof(text)
    assert (proof.index, proof.extra, proof.inclusion) == (99999, extra, inclusion)
    assert proof.checkpoint_note_text == signed_checkpoint
    assert parse_tlog_proof(text.encode()) == proof


def _bad_proofs(cp: str) -> dict[str, str]:
    h = _b64(bytes(32)) + "\n"
    return {
        "wrong header": "c2sp.org/tlog-proof@v2\nindex 1\n\n" + cp,
        "no header": "index 1\n\n" + cp,
        "missing index": "c2sp.org/tlog-proof@v1\n" + h + "\n" + cp,
        "index leading zero": "c2sp.org/tlog-proof@v1\nindex 01\n\n" + cp,
        "index negative": "c2sp.org/tlog-proof@v1\nindex -1\n\n" + cp,
        "index two spaces": "c2sp.org/tlog-proof@v1\nindex  1\n\n" + cp,
        "index not below size": "c2sp.org/tlog-proof@v1\nindex 100000\n\n" + cp,
        "extra after index": "c2sp.org/tlog-proof@v1\nindex 1\nextra AA==\n\n" + cp,
        "extra without space": "c2sp.org/tlog-proof@v1\nextraAA==\nindex 1\n\n" + cp,
        "extra with tab": "c2sp.org/tlog-proof@v1\nextra\tAAAA\nindex 1\n\n" + cp,
        "extra bad base64": "c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n\n" + cp,
        "two extra lines": "c2sp.org/tlog-proof@v1\nextra AA==\nextra AA==\nindex 1\n\n" + cp,
        "31-byte hash": "c2sp.org/tlog-proof@v1\nindex 1\n" + _b64(bytes(31)) + "\n\n" + cp,
        "hash bad base64": "c2sp.org/tlog-proof@v1\nindex 1\n" + h.replace("A", "*") + "\n" + cp,
        "65 hashes": "c2sp.org/tlog-proof@v1\nindex 1\n" + h * 65 + "\n" + cp,
        "no blank line": "c2sp.org/tlog-proof@v1\nindex 1\n" + h,
        "checkpoint not a note": "c2sp.org/tlog-proof@v1\nindex 1\n\n"
        + cp.split("\n\n", maxsplit=1)[0],
        "checkpoint body malformed": "c2sp.org/tlog-proof@v1\nindex 1\n\nx\n\n"
        + cp.split("\n\n")[1],
        "CRLF": ("c2sp.org/tlog-proof@v1\nindex 1\n\n" + cp).replace("\n", "\r\n"),
        "empty": "",
    }


@pytest.mark.parametrize("why", list(_bad_proofs("o\n1\nAA==\n\n— o AAAAAA==\n")))
def test_tlog_proof_malformed(signed_checkpoint: str, why: str) -> None:
    with pytest.raises(MalformedProofError):
        parse_tlog_proof(_bad_proofs(signed_checkpoint)[why])


def test_tlog_proof_format_rejects(signed_checkpoint: str) -> None:
    with pytest.raises(NoteError):
        format_tlog_proof(0, [bytes(31)], signed_checkpoint)
    with pytest.raises(NoteError):
        format_tlog_proof(0, [bytes(32)] * 65, signed_checkpoint)
    with pytest.raises(NoteError):
        format_tlog_proof(100000, [], signed_checkpoint)
    with pytest.raises(NoteError):
        format_tlog_proof(-1, [], signed_checkpoint)
    with pytest.raises(NoteError):
        format_tlog_proof(0, [], "not a note\n")


# -- tlog-witness add-checkpoint ---------------------------------------------------


def test_add_checkpoint_spec_example() -> None:
    (vec,) = VECTORS["add_checkpoint"]
    req = parse_add_checkpoint(vec["body"])
    assert req.old_size == vec["old_size"]
    assert req.consistency == [base64.b64decode(h) for h in vec["consistency"]]
    assert req.checkpoint == vec["checkpoint"]
    assert req.body.size == 20852163
    assert len(req.note.signatures) == 2
    assert req.format() == vec["body"]
    assert format_add_checkpoint(req.old_size, req.consistency, req.checkpoint) == vec["body"]
    req.check()


@pytest.mark.parametrize("n", [0, 1, 63])
def test_add_checkpoint_round_trip(signed_checkpoint: str, n: int) -> None:
    proof = [hashlib.sha256(bytes([i])).digest() for i in range(n)]
    old = 0 if n == 0 else 5000
    body = format_add_checkpoint(old, proof, signed_checkpoint)
    assert body.startswith(f"old {old}\n")
    req = parse_add_checkpoint(body)
    assert req == AddCheckpoint(old, proof, signed_checkpoint)
    assert parse_add_checkpoint(body.encode()) == req


def _bad_requests(cp: str) -> dict[str, str]:
    h = _b64(bytes(32)) + "\n"
    return {
        "no old line": h + "\n" + cp,
        "Old capitalised": "Old 5\n\n" + cp,
        "old leading zero": "old 05\n\n" + cp,
        "old negative": "old -5\n\n" + cp,
        "old two spaces": "old  5\n\n" + cp,
        "old trailing space": "old 5 \n\n" + cp,
        "old too large": f"old {2**63}\n\n" + cp,
        "64 proof lines": "old 5\n" + h * 64 + "\n" + cp,
        "bad base64": "old 5\n" + h.replace("=", "") + "\n" + cp,
        "31-byte hash": "old 5\n" + _b64(bytes(31)) + "\n\n" + cp,
        "no empty line": "old 5\n" + h + cp,
        "nothing after empty line": "old 5\n\n",
        "checkpoint not a note": "old 5\n\n" + cp.split("\n\n", maxsplit=1)[0] + "\n",
        "checkpoint body malformed": "old 5\n\nx\n\n" + cp.split("\n\n")[1],
        "invalid UTF-8": "old 5\n\n\udcff",
        "empty": "",
    }


@pytest.mark.parametrize("why", list(_bad_requests("o\n1\nAA==\n\n— o AAAAAA==\n")))
def test_add_checkpoint_malformed(signed_checkpoint: str, why: str) -> None:
    data: str | bytes = _bad_requests(signed_checkpoint)[why]
    if why == "invalid UTF-8":
        data = b"old 5\n\n\xff"
    with pytest.raises(MalformedRequestError):
        parse_add_checkpoint(data)


def test_add_checkpoint_proof_line_limit(signed_checkpoint: str) -> None:
    h = _b64(bytes(32)) + "\n"
    assert (
        len(parse_add_checkpoint("old 5\n" + h * 63 + "\n" + signed_checkpoint).consistency) == 63
    )
    with pytest.raises(MalformedRequestError, match="63"):
        parse_add_checkpoint("old 5\n" + h * 64 + "\n" + signed_checkpoint)


def test_add_checkpoint_stateless_checks(log_signer: Signer) -> None:
    cp10 = sign_note(_checkpoint(10).body(), [log_signer])
    with pytest.raises(OldSizeTooLargeError):
        AddCheckpoint(11, [], cp10).check()
    assert issubclass(OldSizeTooLargeError, MalformedRequestError)  # both are 400
    with pytest.raises(UnprocessableRequestError, match="empty"):
        AddCheckpoint(0, [bytes(32)], cp10).check()
    AddCheckpoint(0, [], cp10).check()
    AddCheckpoint(10, [], cp10).check()
    empty_ok = sign_note(Checkpoint(ORIGIN, 0, hashlib.sha256(b"").digest()).body(), [log_signer])
    AddCheckpoint(0, [], empty_ok).check()
    empty_bad = sign_note(Checkpoint(ORIGIN, 0, bytes(32)).body(), [log_signer])
    with pytest.raises(UnprocessableRequestError, match="size-0"):
        AddCheckpoint(0, [], empty_bad).check()


def test_error_types_are_distinct() -> None:
    assert not issubclass(UnprocessableRequestError, MalformedRequestError)
    assert not issubclass(MalformedRequestError, UnprocessableRequestError)
    for err in (MalformedRequestError, UnprocessableRequestError, InvalidSignatureError):
        assert issubclass(err, NoteError)
        assert issubclass(err, ValueError)


def test_format_add_checkpoint_rejects(signed_checkpoint: str) -> None:
    with pytest.raises(NoteError, match="63"):
        format_add_checkpoint(5, [bytes(32)] * 64, signed_checkpoint)
    with pytest.raises(NoteError, match="exceed"):
        format_add_checkpoint(100001, [], signed_checkpoint)
    with pytest.raises(NoteError):
        format_add_checkpoint(5, [bytes(33)], signed_checkpoint)
    with pytest.raises(NoteError):
        format_add_checkpoint(5, [], "x\n")

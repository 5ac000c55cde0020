"""Provenance bundles: built from the store, checked offline with a policy."""

from __future__ import annotations

import copy
from typing import Any
from uuid import UUID

import pytest

from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.service.provenance import provenance_bundle
from ledger.service.sealer import Sealer
from ledger.store.database import DatabaseURL
from ledger.store.logstore import LogStore
from ledger.tlog.cosignature import cosign
from ledger.tlog.keys import Signer
from ledger.tlog.policy import Policy, parse_policy
from ledger.tlog.signed_note import parse_note
from ledger.verify.provenance import ProvenanceError, verify_provenance
from tests.strategies import good_spec

ORIGIN = "ledger.test/provenance"


@pytest.fixture
def setting(store_url: DatabaseURL) -> Any:
    log_key = Signer.generate(ORIGIN)
    witnesses = {n: Signer.generate(n, key_type=0x04) for n in ("w1", "w2", "w3")}
    policy = parse_policy(
        f"log {log_key.verifier_key()}\n"
        + "".join(f"witness {n} {w.verifier_key()}\n" for n, w in witnesses.items())
        + "group v 2 w1 w2 w3\nquorum v\n"
    )
    with Ledger(store_url) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(good_spec(), idempotency_key="m")["good_id"]
        unit = ledger.sell(
            good,
            "own",
            buyer="carol",
            channel="shop",
            quantity=1,
            unit_price=Money(1_000, "EUR"),
            idempotency_key="s",
        )["units"][0]["unit_id"]
        ledger.resell(
            unit,
            seller="carol",
            buyer="dave",
            channel="shop",
            price=Money(4_000, "EUR"),
            idempotency_key="r1",
        )
        ledger.resell(
            unit,
            seller="dave",
            buyer="erin",
            channel="shop",
            price=Money(6_000, "EUR"),
            idempotency_key="r2",
        )
        log = LogStore(ledger.event_store.recorder)
        sealed = Sealer(ledger.event_store, log, origin=ORIGIN, signers=[log_key]).seal()
        assert sealed is not None
        body = parse_note(sealed.note).text

        def cosigned_by(*names: str) -> None:
            for n in names:
                log.add_cosignature(
                    sealed.size,
                    n,
                    cosign(body, witnesses[n], 1).line(),
                    "2026-11-22T00:00:00.000000Z",
                )

        yield ledger, log, unit, policy, cosigned_by


def test_a_bundle_proves_the_units_whole_history(setting: Any) -> None:
    ledger, log, unit, policy, cosigned_by = setting
    cosigned_by("w1", "w3")
    bundle = provenance_bundle(ledger.event_store, log, unit)
    checked = verify_provenance(bundle, policy)
    assert [h["holder"] for h in checked.history] == ["carol", "dave", "erin"]
    assert checked.holder == "erin"
    assert checked.cosigners == ["w1", "w3"]
    assert [h["price"]["amount"] for h in checked.history] == [1_000, 4_000, 6_000]


def tampered(bundle: dict[str, Any], how: str) -> dict[str, Any]:
    forged = copy.deepcopy(bundle)
    events = forged["events"]
    if how == "record":
        events[1]["record"] = events[1]["record"].replace('"buyer":"dave"', '"buyer":"mal"')
    elif how == "dropped":
        del events[1]
    elif how == "reordered":
        events[0], events[1] = events[1], events[0]
    elif how == "proof":
        lines = events[2]["proof"].split("\n")
        index = next(i for i, line in enumerate(lines) if line.startswith("index "))
        lines[index + 1] = "A" * 43 + "="
        events[2]["proof"] = "\n".join(lines)
    elif how == "checkpoint":
        forged["checkpoint"] = forged["checkpoint"].replace(ORIGIN, "elsewhere/log", 1)
    return forged


@pytest.mark.parametrize("how", ["record", "dropped", "reordered", "proof", "checkpoint"])
def test_a_tampered_bundle_is_refused(setting: Any, how: str) -> None:
    ledger, log, unit, policy, cosigned_by = setting
    cosigned_by("w1", "w2")
    bundle = provenance_bundle(ledger.event_store, log, unit)
    with pytest.raises(ProvenanceError):
        verify_provenance(tampered(bundle, how), policy)


def test_without_the_quorum_a_bundle_proves_nothing(setting: Any) -> None:
    ledger, log, unit, policy, cosigned_by = setting
    cosigned_by("w2")
    bundle = provenance_bundle(ledger.event_store, log, unit)
    with pytest.raises(ProvenanceError, match="quorum"):
        verify_provenance(bundle, policy)
    assert isinstance(policy, Policy)


def test_an_audit_bundle_verifies_offline_and_catches_edits(
    setting: Any, store_url: DatabaseURL, tmp_path: Any
) -> None:
    from ledger.tlog.policy import format_policy
    from ledger.verify import export_bundle, verify_bundle
    from ledger.verify.classes import exit_code

    ledger, _log, _unit, policy, cosigned_by = setting
    cosigned_by("w1", "w2")
    bundle = tmp_path / "bundle"
    count = export_bundle(store_url, bundle, format_policy(policy))
    assert count == int(ledger.event_store.recorder.max_notification_id() or 0)
    report = verify_bundle(bundle)  # the policy comes from the bundle itself
    assert report.ok, report.first
    assert report.log is not None
    assert (report.log["quorum"], report.log["cosigners"]) == ("met", ["w1", "w2"])

    lines = (bundle / "entries.jsonl").read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b'"version":', b'"version": ', 1)
    (bundle / "entries.jsonl").write_bytes(b"\n".join(lines))
    edited = verify_bundle(bundle)
    assert not edited.ok
    assert exit_code(f.check for f in edited.findings) == 3

    (bundle / "entries.jsonl").write_bytes(b"\n".join([*lines[:2], b""]))
    truncated = verify_bundle(bundle)
    assert "checkpoint-beyond-log" in {f.check for f in truncated.findings}


# -- "No. k of N" (issue 14 item 4) ------------------------------------------


def test_a_bundle_proves_the_units_edition(setting: Any) -> None:
    ledger, log, unit, policy, cosigned_by = setting
    cosigned_by("w1", "w2")
    bundle = provenance_bundle(ledger.event_store, log, unit)
    # good_spec's tier "own": an absolute edition of 10; the unit is its first.
    assert bundle["edition"] == {"serial": 1, "of": 10, "basis": "quota"}
    assert '"type":"stock.opened"' in bundle["stock"]["record"]
    assert verify_provenance(bundle, policy).edition == bundle["edition"]


def test_a_bundle_made_before_editions_still_verifies(setting: Any) -> None:
    ledger, log, unit, policy, cosigned_by = setting
    cosigned_by("w1", "w2")
    bundle = provenance_bundle(ledger.event_store, log, unit)
    del bundle["edition"], bundle["stock"]
    checked = verify_provenance(bundle, policy)
    assert checked.edition is None
    assert checked.holder == "erin"


def _forged_edition(
    bundle: dict[str, Any], how: str, other_stock: dict[str, str]
) -> dict[str, Any]:
    forged = copy.deepcopy(bundle)
    if how == "claim":
        forged["edition"]["of"] = 500
    elif how == "basis":
        forged["edition"]["basis"] = "lifetime-cap"
    elif how == "serial":
        forged["edition"]["serial"] = 2
    elif how == "no-stock":
        del forged["stock"]
    elif how == "stock-record":
        forged["stock"]["record"] = forged["stock"]["record"].replace(
            '"lifetime_cap":10', '"lifetime_cap":500'
        )
        forged["edition"]["of"] = 500
    elif how == "other-tier":
        forged["stock"] = other_stock  # a proven stock.opened, of the other tier (of 20)
        forged["edition"]["of"] = 20
    return forged


def _other_stock(ledger: Any, log: LogStore, bundle: dict[str, Any]) -> dict[str, str]:
    """Tier "view"'s stock.opened, proven against the bundle's checkpoint."""
    from ledger.domain.ids import stock_id_for
    from ledger.service.proofs import CheckedProofs
    from ledger.service.provenance import _proven

    good_id = ledger.unit(bundle["unit_id"]).good_id
    stock_id = stock_id_for(UUID(good_id), "view")
    opened = ledger.event_store.recorder.select_events(stock_id, limit=1)[0]
    latest = log.latest_checkpoint()
    assert latest is not None
    proofs = CheckedProofs(log, ledger.event_store)
    return _proven(log, proofs, latest, bundle["checkpoint"], "stock", stock_id, opened)


@pytest.mark.parametrize(
    "how", ["claim", "basis", "serial", "no-stock", "stock-record", "other-tier"]
)
def test_a_forged_edition_is_refused(setting: Any, how: str) -> None:
    ledger, log, unit, policy, cosigned_by = setting
    cosigned_by("w1", "w2")
    bundle = provenance_bundle(ledger.event_store, log, unit)
    forged = _forged_edition(bundle, how, _other_stock(ledger, log, bundle))
    with pytest.raises(ProvenanceError, match=_REFUSED[how]):
        verify_provenance(forged, policy)


_REFUSED = {
    "claim": "edition: the bundle claims",
    "basis": "edition: the bundle claims",
    "serial": "edition: the bundle claims",
    "no-stock": "no stock event",
    "stock-record": "stock: not in the log",
    "other-tier": "stock: not version 1 of",
}


def test_ledger_proof_verify_prints_no_k_of_n(setting: Any, tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from ledger.cli import app
    from ledger.tlog.policy import format_policy

    ledger, log, unit, policy, cosigned_by = setting
    cosigned_by("w1", "w2")
    bundle = tmp_path / "unit.json"
    bundle.write_text(json.dumps(provenance_bundle(ledger.event_store, log, unit)))
    (tmp_path / "policy.txt").write_text(format_policy(policy))
    done = CliRunner().invoke(
        app, ["proof", "verify", str(bundle), "--policy", str(tmp_path / "policy.txt")]
    )
    assert done.exit_code == 0, done.output
    assert "No. 1 of 10\n" in done.output
    assert "verdict OK" in done.output

"""A verifier node's tlog-witness ``add-checkpoint`` endpoint, status code by
status code, against a real ledger server."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.cosignature import verify_cosignature
from ledger.tlog.keys import NoteSignature, Signer
from ledger.tlog.signed_note import open_note, sign_note
from ledger.tlog.witness import format_add_checkpoint
from ledger.verifier_node.app import create_node_app
from ledger.verifier_node.node import VerifierNode
from tests.e2e.conftest import running_server
from tests.strategies import good_spec

ORIGIN = "ledger.test/witness"


def test_add_checkpoint_answers_as_the_witness_spec_says(
    sqlite_url: DatabaseURL, tmp_path: Path
) -> None:
    log = Signer.generate(ORIGIN)
    (tmp_path / "log.key").write_text(log.to_private_text() + "\n")
    cosigner = Signer.generate("witness-1", key_type=0x04)
    with (
        Ledger(sqlite_url) as ledger,
        running_server(sqlite_url.display(), tmp_path / "log.key") as base,
    ):
        ledger.register_channel("shop", "Shop", 500, idempotency_key="ch")
        good = ledger.mint(good_spec(), idempotency_key="m")["good_id"]
        ledger.sell(
            good,
            "own",
            buyer="b",
            channel="shop",
            quantity=2,
            unit_price=Money(10, "EUR"),
            idempotency_key="s",
        )
        events = int(ledger.event_store.recorder.max_notification_id() or 0)
        deadline = time.monotonic() + 20
        while True:
            response = httpx.get(f"{base}/log/checkpoint")
            if response.status_code == 200:
                note, _ = open_note(response.text, [log.verifier()])
                if Checkpoint.parse(note.text).size >= events:
                    break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        signed = response.text
        checkpoint = Checkpoint.parse(note.text)

        node = VerifierNode(
            ledger_url=base,
            signer=cosigner,
            log_keys=[log.verifier()],
            origin=ORIGIN,
            state_dir=tmp_path / "node",
        )
        client = TestClient(create_node_app(node))  # no lifespan: no polling

        def post(old: int, proof: list[bytes], note_text: str) -> httpx.Response:
            return client.post(
                "/add-checkpoint", content=format_add_checkpoint(old, proof, note_text)
            )

        assert client.post("/add-checkpoint", content="nonsense").status_code == 400
        stranger = sign_note(note.text, [Signer.generate(ORIGIN)])
        assert post(0, [], stranger).status_code == 403
        elsewhere = sign_note(
            Checkpoint("other.example/log", checkpoint.size, checkpoint.root).body(), [log]
        )
        assert post(0, [], elsewhere).status_code == 404
        wrong_old = post(5, [bytes(32)], signed)
        assert wrong_old.status_code == 409
        assert wrong_old.headers["content-type"].startswith("text/x.tlog.size")
        assert wrong_old.text == "0\n"

        accepted = post(0, [], signed)
        assert accepted.status_code == 200, accepted.text
        line = NoteSignature.parse_line(accepted.text.strip())
        assert verify_cosignature(note.text, line, cosigner.verifier()) > 0
        assert node.state.size == checkpoint.size
        persisted = (tmp_path / "node" / "state.json").read_text()
        assert base64.b64encode(checkpoint.root).decode() in persisted

        ledger.sell(
            good,
            "own",
            buyer="c",
            channel="shop",
            quantity=1,
            unit_price=Money(10, "EUR"),
            idempotency_key="s2",
        )
        grown = Checkpoint(ORIGIN, checkpoint.size + 1, bytes(32))
        forged = sign_note(grown.body(), [log])
        assert post(checkpoint.size, [bytes(32)], forged).status_code == 422
        assert client.get("/status").status_code == 200

        # An old checkpoint replayed is refused with the size the node holds.
        assert post(0, [], signed).status_code == 409
        # Another root for a size it cosigned is a split view: alarm, evidence, no more.
        fork = sign_note(Checkpoint(ORIGIN, checkpoint.size, bytes(32)).body(), [log])
        assert post(checkpoint.size, [], fork).status_code == 422
        status = client.get("/status")
        assert status.status_code == 503
        assert status.json()["alarm"]["check"] == "split-view"
        assert status.json()["alarm"]["expected"] == base64.b64encode(checkpoint.root).decode()
        assert post(checkpoint.size, [], signed).status_code == 503
        node.close()

"""The ledger pushes each checkpoint to the verifiers its policy lists (C2SP
tlog-witness); verifiers that do not poll still cosign, and the quorum comes."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.tlog.keys import Signer
from ledger.tlog.policy import parse_policy
from tests.e2e.conftest import free_port, running_process, running_server
from tests.strategies import open_shop_and_sell

ORIGIN = "ledger.test/pushed"
NAMES = ["push-a", "push-b", "push-c"]

pytestmark = pytest.mark.slow


def test_pushed_checkpoints_reach_quorum_without_polling(
    sqlite_url: DatabaseURL, tmp_path: Path
) -> None:
    log = Signer.generate(ORIGIN)
    (tmp_path / "log.key").write_text(log.to_private_text() + "\n")
    ports = {name: free_port() for name in NAMES}
    witnesses = {name: Signer.generate(name, key_type=0x04) for name in NAMES}
    for name, signer in witnesses.items():
        (tmp_path / f"{name}.key").write_text(signer.to_private_text() + "\n")
    policy_text = (
        f"log {log.verifier_key()}\n"
        + "".join(
            f"witness {n} {w.verifier_key()} http://127.0.0.1:{ports[n]}\n"
            for n, w in witnesses.items()
        )
        + f"group g 2 {' '.join(NAMES)}\nquorum g\n"
    )
    (tmp_path / "policy.txt").write_text(policy_text)
    policy = parse_policy(policy_text)
    with Ledger(sqlite_url) as ledger, ExitStack() as stack:
        base = stack.enter_context(
            running_server(
                sqlite_url.display(),
                tmp_path / "log.key",
                policy=tmp_path / "policy.txt",
                log_file=tmp_path / "ledger.log",
            )
        )
        for name in NAMES:  # --poll 60: they only act when pushed to
            stack.enter_context(
                running_process(
                    [
                        "verifier",
                        "run",
                        "--ledger",
                        base,
                        "--key",
                        str(tmp_path / f"{name}.key"),
                        "--log-key",
                        log.verifier_key(),
                        "--state",
                        str(tmp_path / name),
                        "--port",
                        str(ports[name]),
                        "--poll",
                        "60",
                    ],
                    f"http://127.0.0.1:{ports[name]}",
                    "/status",
                    log_file=tmp_path / f"{name}.log",
                )
            )
        open_shop_and_sell(ledger, 3)
        events = int(ledger.event_store.recorder.max_notification_id() or 0)
        deadline = time.monotonic() + 20
        while True:
            response = httpx.get(f"{base}/log/checkpoint")
            if response.status_code == 200:
                result = policy.check(response.text)
                if result.checkpoint.size >= events and len(result.cosigners) == 3:
                    break
            assert time.monotonic() < deadline, response.text
            time.sleep(0.1)
        assert result.quorum_met
        assert not result.invalid_cosigners

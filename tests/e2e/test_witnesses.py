"""``GET /witnesses`` and ``GET /alarms`` against a real server whose policy
names a live verifier node, one that refuses every push and one nobody
answers for: what each last cosigned, its lag, the last push to it, and the
alarms that follow (docs/pages.md, "Auditor console"); on both backends."""

from __future__ import annotations

from pathlib import Path

import httpx

from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from tests.browser.conftest import issue_key
from tests.e2e.witnessed import pushed_to_all, wait_for, witnessed_server
from tests.strategies import open_shop_and_sell


def test_the_verifiers_state_and_the_alarms_it_raises(
    store_url: DatabaseURL, tmp_path: Path
) -> None:
    db = store_url.display()
    Ledger(store_url).close()
    auditor = {"Authorization": f"Bearer {issue_key(db, 'auditor')}"}
    shop = {"Authorization": f"Bearer {issue_key(db, 'channel', 'shop')}"}
    with witnessed_server(tmp_path, db) as served, Ledger(store_url) as ledger:
        open_shop_and_sell(ledger, 3)
        size = int(ledger.event_store.recorder.max_notification_id() or 0)
        wait_for(pushed_to_all(served.base, auditor["Authorization"][7:], size), "the pushes")

        answer = httpx.get(f"{served.base}/witnesses", headers=auditor).json()
        assert answer["policy"] == {"quorum": "live", "quorum_met": True}
        assert answer["checkpoint"]["size"] == answer["log_size"] >= size
        verifiers = {v["name"]: v for v in answer["verifiers"]}
        assert list(verifiers) == ["live", "refusing", "gone"]
        live, refusing, gone = verifiers["live"], verifiers["refusing"], verifiers["gone"]
        assert live["cosigned_size"] >= size
        assert live["lag"] == answer["log_size"] - live["cosigned_size"]
        assert live["cosigned_at"].endswith("Z")
        assert live["vkey"].startswith("live+")
        assert (refusing["cosigned_size"], refusing["lag"]) == (0, answer["log_size"])
        assert refusing["last_push"]["outcome"] == "refused"
        assert refusing["last_push"]["detail"].startswith("HTTP 404")
        assert gone["last_push"]["outcome"] == "unreachable"
        assert gone["waiting_since"] is not None  # since the first checkpoint

        alarms = httpx.get(f"{served.base}/alarms", headers=auditor).json()
        kinds = {(a["kind"], a["subject"]) for a in alarms["alarms"]}
        # (Lagging only after VERIFIER_LAG_SECONDS: tests/unit/test_alarms.py.)
        assert kinds == {("verifier-refused", "refusing"), ("verifier-unreachable", "gone")}
        assert alarms["bounds"] == {"verifier_lag_seconds": 60.0, "views_stall_seconds": 10.0}

        for path in ("/witnesses", "/alarms"):
            refused = httpx.get(served.base + path, headers=shop)
            assert refused.status_code == 403
            assert refused.headers["content-type"] == "application/problem+json"
            assert httpx.get(served.base + path).status_code == 401

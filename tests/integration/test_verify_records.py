"""Command records are checked both ways: every effect that names its
record (a sale's ``sale_id``, a resale's ``resale_id``…) needs it
(``command-missing``), and every record of such a command needs an effect
that names it (``command-orphan``). The attacker here deletes the last
command's effects from the unsealed tail -- each was its aggregate's last
event, so every chain still holds -- and leaves its record.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ledger.domain.money import Money
from ledger.service import Ledger
from ledger.store.database import DatabaseURL
from ledger.verify import verify_store
from ledger.verify.classes import exit_code
from tests.integration.test_verify_ledger import Store, build_example, describe


@pytest.fixture(scope="module")
def example_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("records") / "ledger.db"
    build_example(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="module")
def resale_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose last command is a resale."""
    path = tmp_path_factory.mktemp("records") / "ledger.db"
    with Ledger(DatabaseURL.parse(f"sqlite:///{path}")) as ledger:
        ledger.register_channel("shop", "Shop", 500, idempotency_key="c1")
        from tests.strategies import good_spec

        good = ledger.mint(good_spec(tiers=[{"name": "own", "quota": 3}]), idempotency_key="m1")[
            "good_id"
        ]
        sold = ledger.sell(
            good,
            "own",
            buyer="carol",
            channel="shop",
            quantity=1,
            unit_price=Money(500, "EUR"),
            idempotency_key="s1",
        )
        ledger.resell(
            sold["units"][0]["unit_id"],
            seller="carol",
            buyer="dave",
            channel="shop",
            price=Money(900, "EUR"),
            idempotency_key="r1",
        )
    return path


def copy(template: Path, tmp_path: Path) -> Store:
    shutil.copy(template, tmp_path / "ledger.db")
    return Store(tmp_path / "ledger.db")


def delete_last_command_effects(store: Store) -> tuple[int, str]:
    """Delete every event after the second-to-last command record but the
    last record itself. Returns the record's position and command."""
    rows = store.rows()
    records = [r for r in rows if r.topic == "command.recorded"]
    last, before = records[-1], records[-2]
    for row in rows:
        if before.rowid < row.rowid < last.rowid:
            store.delete(row.rowid)
    return last.rowid, last.data["payload"]["command"]


@pytest.mark.parametrize("template", ["example_template", "resale_template"])
def test_a_record_whose_effects_were_deleted_is_an_orphan(
    template: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = copy(request.getfixturevalue(template), tmp_path)
    assert verify_store(store.url).ok
    position, command = delete_last_command_effects(store)
    assert command == ("sell" if template == "example_template" else "resell")
    report = verify_store(store.url)
    assert [f.check for f in report.findings] == ["command-orphan"], describe(report)
    finding = report.findings[0]
    assert finding.position == position
    assert finding.event_type == "command.recorded"
    assert command in finding.message
    assert exit_code(["command-orphan"]) == 4

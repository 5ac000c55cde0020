"""The verifier fed hand-made events: envelope, chain and garbage handling,
and rules that are awkward to reach through the service."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ledger.verify import CHECKS, Finding, Report, Verifier
from ledger.verify.codec import ZERO_HASH, derive_id, splice

TS = "2026-11-22T07:25:02.179930Z"


def encode(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


class Log:
    """Builds stored rows with correct chains (unless told otherwise)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, int, str, bytes]] = []
        self.heads: dict[str, tuple[int, str]] = {}

    def add(
        self,
        aggregate_id: str,
        event_type: str,
        payload: Any,
        *,
        timestamp: str = TS,
        version: int | None = None,
        prev_hash: str | None = None,
    ) -> int:
        last, head = self.heads.get(aggregate_id, (0, ZERO_HASH))
        version = last + 1 if version is None else version
        state = encode(
            {
                "payload": payload,
                "prev_hash": head if prev_hash is None else prev_hash,
                "timestamp": timestamp,
            }
        )
        record = splice(aggregate_id, version, event_type, state)
        self.heads[aggregate_id] = (version, hashlib.sha256(record).hexdigest())
        position = len(self.rows) + 1
        self.rows.append((position, aggregate_id, version, event_type, state))
        return position

    def command(self, key: str, command: str, scope: str = "") -> str:
        command_id = derive_id("command", scope, key)
        self.add(
            command_id,
            "command.recorded",
            {
                "scope": scope,
                "key": key,
                "command": command,
                "request_hash": "0" * 64,
                "result": {},
            },
        )
        return command_id

    def channel(self, name: str = "shop", fee_bps: int = 500) -> None:
        self.add(
            derive_id("channel", name),
            "channel.registered",
            {"channel": name, "name": name.title(), "fee_bps": fee_bps},
        )
        self.command(f"c-{name}", "register-channel")

    def verify(self) -> Report:
        verifier = Verifier()
        for row in self.rows:
            verifier.feed(*row)
        return verifier.finish("test")


def checks(report: Report) -> list[tuple[int | None, str]]:
    return [(f.position, f.check) for f in report.findings]


def test_codes_are_documented() -> None:
    import ledger.verify

    doc = ledger.verify.__doc__ or ""
    for code in CHECKS:
        assert f"``{code}``" in doc
    assert len(set(CHECKS)) == len(CHECKS)


def test_a_channel_and_its_command_verify() -> None:
    log = Log()
    log.channel()
    report = log.verify()
    assert report.ok, [str(f) for f in report.findings]
    assert (report.events, report.aggregates) == (2, 2)
    assert report.by_type == {"channel.registered": 1, "command.recorded": 1}
    assert report.elapsed_s >= 0


def test_channel_with_an_underived_id() -> None:
    log = Log()
    log.add(
        derive_id("channel", "other"),
        "channel.registered",
        {"channel": "shop", "name": "Shop", "fee_bps": 500},
    )
    log.command("c", "register-channel")
    report = log.verify()
    assert checks(report) == [(1, "bad-id")]
    finding = report.findings[0]
    assert finding.expected == derive_id("channel", "shop")
    assert finding.actual == derive_id("channel", "other")


def test_first_event_with_a_nonzero_prev_hash() -> None:
    log = Log()
    log.add(
        derive_id("channel", "shop"),
        "channel.registered",
        {"channel": "shop", "name": "Shop", "fee_bps": 500},
        prev_hash="1" * 64,
    )
    log.command("c", "register-channel")
    report = log.verify()
    assert checks(report) == [(1, "prev-hash-mismatch")]
    assert "64 zeros" in report.findings[0].message


def test_first_event_at_version_two() -> None:
    log = Log()
    log.add(
        derive_id("channel", "shop"),
        "channel.registered",
        {"channel": "shop", "name": "Shop", "fee_bps": 500},
        version=2,
    )
    log.command("c", "register-channel")
    assert checks(log.verify()) == [(1, "version-gap"), (1, "wrong-type")]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"channel": "shop", "name": "Shop"}, "lacks member(s) fee_bps"),
        ({"channel": "shop", "name": "Shop", "fee_bps": 500, "x": 1}, "unexpected member(s) x"),
        ({"channel": "shop", "name": "Shop", "fee_bps": "500"}, "fee_bps is not an integer"),
        ({"channel": "shop", "name": "Shop", "fee_bps": True}, "fee_bps is not an integer"),
        ({"channel": "shop", "name": "Shop", "fee_bps": 10001}, "outside 0…10000"),
        ({"channel": "a/b", "name": "Shop", "fee_bps": 1}, "contains '/'"),
        ({"channel": None, "name": "Shop", "fee_bps": 1}, "is not a string"),
        ([], "payload is not an object"),
    ],
)
def test_bad_payloads(payload: Any, problem: str) -> None:
    log = Log()
    log.add(derive_id("channel", "shop"), "channel.registered", payload)
    log.command("c", "register-channel")
    report = log.verify()
    found = [f for f in report.findings if f.check in {"bad-payload", "bad-envelope"}]
    assert len(found) == 1, [str(f) for f in report.findings]
    assert problem in found[0].message
    assert "unverifiable" not in {f.check for f in report.findings}


def test_unknown_and_misplaced_types() -> None:
    log = Log()
    log.channel()
    channel_id = derive_id("channel", "shop")
    log.add(channel_id, "channel.renamed", {"name": "x"})
    log.add(channel_id, "stock.restocked", {"quantity": 1, "supply": 1})
    log.command("c2", "restock")
    report = log.verify()
    assert checks(report) == [(3, "unknown-type"), (4, "wrong-type")]


def test_bad_timestamp_and_envelope_members() -> None:
    log = Log()
    log.add(
        derive_id("channel", "shop"),
        "channel.registered",
        {"channel": "shop", "name": "Shop", "fee_bps": 500},
        timestamp="2026-11-22T07:25:02Z",
    )
    log.command("c", "register-channel")
    position, aggregate_id, version, event_type, state = log.rows[1]
    data = orjson.loads(state)
    data["extra"] = 1
    log.rows[1] = (position, aggregate_id, version, event_type, encode(data))
    assert checks(log.verify()) == [(1, "bad-timestamp"), (2, "bad-envelope")]


def test_garbage_columns_never_crash() -> None:
    verifier = Verifier()
    bad_rows: list[tuple[Any, ...]] = [
        (1, None, 1, "channel.registered", b"{}"),
        (2, "NOT-A-UUID", 1, "channel.registered", b"{}"),
        (3, derive_id("x", 1), True, "channel.registered", b"{}"),
        (4, derive_id("x", 2), 0, "channel.registered", b"{}"),
        (5, derive_id("x", 3), 1, None, b"{}"),
        (6, derive_id("x", 4), 1, "channel.registered", None),
        (7, derive_id("x", 5), 1, "channel.registered", memoryview(b"[1]")),
        (8, derive_id("x", 6), 1, "channel.registered", b"\x00\x01"),
        (9, derive_id("x", 7), 1, "channel.registered", b""),
        (10, derive_id("x", 8), 1, "command.recorded", b'{"payload":null}'),
        (11, derive_id("x", 9), 2**60, "command.recorded", b"{}"),
    ]
    for row in bad_rows:
        verifier.feed(*row)
    report = verifier.finish("garbage")
    assert report.events == len(bad_rows)
    assert {f.position for f in report.findings} >= set(range(1, 12))
    assert "unverifiable" not in {f.check for f in report.findings}
    assert set(report.by_check()) <= set(CHECKS)


def test_garbage_records_never_crash() -> None:
    verifier = Verifier()
    for position, line in enumerate(
        [
            b"",
            b"{",
            b"null",
            b"1",
            b'"x"',
            b"{}",
            b'{"aggregate_id":1,"version":"2"}',
            encode(
                {
                    "aggregate_id": derive_id("x", 1),
                    "payload": {},
                    "prev_hash": ZERO_HASH,
                    "timestamp": TS,
                    "type": "stock.sold",
                    "version": 1,
                }
            ),
        ],
        1,
    ):
        verifier.feed_record(position, line)
    report = verifier.finish("garbage")
    assert report.events == 8
    assert "unverifiable" not in {f.check for f in report.findings}


# ---------------------------------------------------------------------------
# A group-committed batch, laid out as the writer stores one (section 6):
# events by aggregate in first-touch order, so one command's are not adjacent.
# ---------------------------------------------------------------------------
NOW = datetime(2026, 11, 22, 7, 25, 2, 179930, tzinfo=UTC)
PRICE = {"amount": 999, "currency": "EUR"}


def _record(key: str, command: str, result: dict[str, Any] | None = None) -> Any:
    from ledger.domain.command import CommandRecord

    return CommandRecord.record(
        scope="", key=key, command=command, request_hash="0" * 64, result=result or {}, now=NOW
    )


def batch_events() -> list[Any]:
    """Channel, mint, then one transaction holding two sales of one stock."""
    from ledger.domain.account import Account
    from ledger.domain.channel import Channel
    from ledger.domain.good import Good, GoodSpec
    from ledger.domain.ids import command_id_for
    from ledger.domain.model import format_timestamp
    from ledger.domain.money import split
    from ledger.domain.stock import BuyerAllowance, TierStock
    from ledger.domain.unit import Unit
    from tests.strategies import good_spec

    channel = Channel.register("shop", "Shop", 500, NOW)
    good = Good.mint(
        GoodSpec.from_json(good_spec(tiers=[{"name": "own", "quota": 10, "per_buyer_limit": 5}])),
        NOW,
    )
    stock = TierStock.open(good, "own", NOW)
    events = [
        *channel.collect_events(),
        *_record("c", "register-channel").collect_events(),
        *good.collect_events(),
        *stock.collect_events(),
        *_record("m", "mint").collect_events(),
    ]
    parts = split(PRICE["amount"], good.primary_shares("shop", 500))
    tail: list[Any] = []
    for key, buyer, quantity in (("s1", "carol", 2), ("s2", "dave", 1)):
        sale_id = str(command_id_for("", key))
        tail += Account.open(buyer, "shop", NOW).collect_events()
        allowance = BuyerAllowance.start(stock, buyer, NOW)
        allowance.count(quantity, sale_id, NOW)
        serials = stock.sell(
            sale_id=sale_id,
            buyer=buyer,
            channel="shop",
            quantity=quantity,
            unit_price=PRICE,
            split=parts,
            now=NOW,
        )
        tail += allowance.collect_events()
        units = []
        for serial in serials:
            unit = Unit.issue(
                good_id=good.id,
                tier="own",
                serial=serial,
                transferable=True,
                buyer=buyer,
                sale_id=sale_id,
                channel="shop",
                price=PRICE,
                split=parts,
                now=NOW,
            )
            tail += unit.collect_events()
            units.append({"unit_id": str(unit.id), "serial": serial})
        # The answer the service records for a sale (a retry gets it again).
        answer = {
            "sale_id": sale_id,
            "good_id": str(good.id),
            "tier": "own",
            "buyer": buyer,
            "channel": "shop",
            "quantity": quantity,
            "unit_price": PRICE,
            "split_per_unit": parts,
            "units": units,
            "sold_at": format_timestamp(NOW),
        }
        tail += _record(key, "sell", answer).collect_events()
    # The stock was touched first, so both stock.sold come before the rest.
    return [*events, *stock.collect_events(), *tail]


def feed_events(events: list[Any]) -> Report:
    verifier = Verifier()
    for position, event in enumerate(events, 1):
        verifier.feed(
            position, str(event.originator_id), event.originator_version, event.TYPE, event.state
        )
    return verifier.finish("batch")


def test_a_batch_of_interleaved_commands_verifies() -> None:
    events = batch_events()
    types = [e.TYPE for e in events]
    assert types[5:7] == ["stock.sold", "stock.sold"]
    report = feed_events(events)
    assert report.ok, [str(f) for f in report.findings]


def test_a_sale_without_its_command_record() -> None:
    events = batch_events()
    first_sale = events.index(next(e for e in events if e.TYPE == "stock.sold"))
    record = next(
        e for e in events if e.TYPE == "command.recorded" and e.payload()["command"] == "sell"
    )
    events.remove(record)
    report = feed_events(events)
    assert checks(report) == [(first_sale + 1, "command-missing")]
    assert "sale_id" in report.findings[0].message


def test_a_sale_recorded_as_another_command() -> None:
    events = batch_events()
    at = next(
        i
        for i, e in enumerate(events)
        if e.TYPE == "command.recorded" and e.payload()["key"] == "s2"
    )
    forged = _record("s2", "refund").collect_events()[0]
    events[at] = forged
    report = feed_events(events)
    assert checks(report) == [(at + 1, "command-mismatch")]
    assert (report.findings[0].expected, report.findings[0].actual) == (
        "sell or commit-hold",
        "refund",
    )


def test_a_unit_event_missing_from_the_batch() -> None:
    events = batch_events()
    sold = [i for i, e in enumerate(events) if e.TYPE == "stock.sold"]
    last_unit = max(i for i, e in enumerate(events) if e.TYPE == "unit.issued")
    del events[last_unit]
    report = feed_events(events)
    assert checks(report) == [(sold[1] + 1, "dangling-sale")]


def test_unit_events_before_their_sale() -> None:
    events = batch_events()
    sold = [i for i, e in enumerate(events) if e.TYPE == "stock.sold"]
    unit = next(i for i, e in enumerate(events) if e.TYPE == "unit.issued")
    events.insert(sold[0], events.pop(unit))
    report = feed_events(events)
    assert (sold[0] + 1, "unit-mismatch") in checks(report)
    assert {c for _, c in checks(report)} == {"unit-mismatch", "dangling-sale"}


def test_finding_str_and_json() -> None:
    finding = Finding(7, "a", 2, "stock.sold", "oversold", "too many", "<= 2", "3")
    assert str(finding) == "position 7 stock.sold v2 of a: [oversold] too many"
    assert finding.to_json()["expected"] == "<= 2"
    assert str(Finding(None, None, None, None, "x", "y")) == "end of log: [x] y"


def test_findings_sorted_by_position() -> None:
    verifier = Verifier()
    verifier.report_unreadable(None, "gone")
    verifier.report_line(5, "bad-line", "empty")
    verifier.report_line(2, "bad-line", "empty")
    report = verifier.finish("x")
    assert [f.position for f in report.findings] == [2, 5, None]
    assert report.first is not None
    assert report.first.position == 2
    assert not report.ok


def test_verify_imports_nothing_of_the_write_path() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ledger.verify; "
        "print(' '.join(m for m in sys.modules if m.startswith('ledger.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    forbidden = ("ledger.domain", "ledger.service", "ledger.api", "ledger.projections")
    assert not [m for m in loaded if m.startswith(forbidden)], loaded
